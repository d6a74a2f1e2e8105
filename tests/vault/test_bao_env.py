"""OpenBao's BAO_* variables as aliases of VAULT_* (a shell set up for `bao` just works).

Read only when the VAULT_* name is absent, without a warning (unlike the deprecated
HVAULT_* names); messages name the variable that was actually read.
"""

from __future__ import annotations

import pytest

from gds_vault import VaultClient, VaultConfigError, VaultInsecureWarning
from gds_vault import cli

ALIASES = {
    "VAULT_ADDR": "BAO_ADDR",
    "VAULT_TOKEN": "BAO_TOKEN",
    "VAULT_NAMESPACE": "BAO_NAMESPACE",
    "VAULT_CACERT": "BAO_CACERT",
    "VAULT_CAPATH": "BAO_CAPATH",
    "VAULT_CLIENT_CERT": "BAO_CLIENT_CERT",
    "VAULT_CLIENT_KEY": "BAO_CLIENT_KEY",
    "VAULT_SKIP_VERIFY": "BAO_SKIP_VERIFY",
    "VAULT_CLIENT_TIMEOUT": "BAO_CLIENT_TIMEOUT",
    "VAULT_MAX_RETRIES": "BAO_MAX_RETRIES",
}


def test_the_alias_table_is_what_the_library_reads():
    """The documented aliases are exactly the ones read (README lists the same)."""
    from gds_vault._env import BAO_ALIASES

    assert BAO_ALIASES == ALIASES


def test_bao_addr_and_token_read_a_secret(openbao):
    """BAO_ADDR and BAO_TOKEN alone (what `bao` uses) log in and read, with no warning
    (pytest runs with -W error)."""
    openbao.kv_put("secret", "bao/app", {"user": "BAO"})
    environ = {"BAO_ADDR": openbao.addr, "BAO_TOKEN": openbao.root_token}
    with VaultClient.from_env(environ) as client:
        assert client.get_secret("secret/bao/app") == {"user": "BAO"}
        assert client.auth.source == "BAO_TOKEN"


def test_vault_names_win_over_bao_names(openbao):
    """With both set, VAULT_* is read and BAO_* ignored."""
    environ = {
        "VAULT_ADDR": openbao.addr,
        "BAO_ADDR": "http://127.0.0.1:1",
        "VAULT_TOKEN": openbao.root_token,
        "BAO_TOKEN": "hvs.ignored-bao-token-00000000",
        "VAULT_CLIENT_TIMEOUT": "7",
        "BAO_CLIENT_TIMEOUT": "oops",
    }
    with VaultClient.from_env(environ) as client:
        assert client.addr == openbao.addr
        assert client.auth.source == "VAULT_TOKEN"
        assert client.settings.timeout == 7.0


def test_bao_names_win_over_legacy_hvault_names_without_warning(openbao):
    """BAO_ADDR is a supported alias: it is read before HVAULT_ADDR, and nothing warns."""
    environ = {"BAO_ADDR": openbao.addr, "HVAULT_ADDR": "http://127.0.0.1:1", "BAO_TOKEN": "t0ken-bao"}
    with VaultClient.from_env(environ) as client:
        assert client.addr == openbao.addr


def test_every_setting_alias_is_read(tmp_path):
    """Namespace, timeout, retries and client certificate come from their BAO_* names."""
    from tests.reliability.certs import CertificateAuthority

    pair = CertificateAuthority(tmp_path).issue("client", server=False)
    environ = {
        "BAO_ADDR": "http://127.0.0.1:8200",
        "BAO_TOKEN": "t0ken-bao",
        "BAO_NAMESPACE": "team-a",
        "BAO_CLIENT_TIMEOUT": "4s",
        "BAO_MAX_RETRIES": "2",
        "BAO_CLIENT_CERT": pair.cert,
        "BAO_CLIENT_KEY": pair.key,
    }
    with VaultClient.from_env(environ) as client:
        assert client.settings.namespace == "team-a"
        assert client.settings.timeout == 4.0
        assert client.settings.retry.attempts == 3
        assert client.settings.cert == (pair.cert, pair.key)


def test_bao_cacert_trusts_the_tls_server(openbao_tls):
    """BAO_CACERT is the CA file, as for `bao`."""
    environ = {"BAO_ADDR": openbao_tls.addr, "BAO_TOKEN": openbao_tls.root_token, "BAO_CACERT": openbao_tls.ca_cert}
    with VaultClient.from_env(environ) as client:
        assert client.health().sealed is False


def test_bao_capath_and_skip_verify(openbao_tls, tmp_path):
    """BAO_CAPATH (a directory) and BAO_SKIP_VERIFY (with the usual loud warning) work too."""
    import shutil

    shutil.copy(openbao_tls.ca_cert, tmp_path / "ca.pem")
    environ = {"BAO_ADDR": openbao_tls.addr, "BAO_TOKEN": openbao_tls.root_token}
    with VaultClient.from_env({**environ, "BAO_CAPATH": str(tmp_path)}) as client:
        assert client.health().sealed is False
    with pytest.warns(VaultInsecureWarning):
        client = VaultClient.from_env({**environ, "BAO_SKIP_VERIFY": "true"})
    with client:
        assert client.settings.verify is False
        assert client.health().sealed is False


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"BAO_ADDR": "http://vault:8200/v1", "BAO_TOKEN": "t0ken-bao"}, "BAO_ADDR='http://vault:8200/v1' has a path"),
        ({"BAO_ADDR": "http://vault:8200", "BAO_TOKEN": "t0ken-bao", "BAO_CLIENT_TIMEOUT": "soon"}, "BAO_CLIENT_TIMEOUT='soon'"),
        ({"BAO_ADDR": "http://vault:8200", "BAO_TOKEN": "t0ken-bao", "BAO_SKIP_VERIFY": "maybe"}, "BAO_SKIP_VERIFY='maybe'"),
        ({"BAO_ADDR": "http://vault:8200", "BAO_TOKEN": "t0ken-bao", "BAO_MAX_RETRIES": "x"}, "BAO_MAX_RETRIES='x'"),
    ],
)
def test_messages_name_the_bao_variable_that_was_read(environ, named):
    """A bad value read from a BAO_* name is reported under that name, not VAULT_*."""
    with pytest.raises(VaultConfigError, match=named.replace("?", r"\?")) as info:
        VaultClient.from_env(environ)
    assert named in str(info.value)


def test_gds_vault_cli_reads_bao_variables(openbao, monkeypatch, capsys):
    """`gds-vault get` in a shell set up for `bao` reads the secret."""
    openbao.kv_put("secret", "bao/cli", {"user": "BAO_CLI"})
    monkeypatch.setenv("BAO_ADDR", openbao.addr)
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    assert cli.main(["get", "secret/bao/cli", "user", "--reveal"]) == 0
    assert capsys.readouterr().out.strip() == "BAO_CLI"
