"""TLS against a real ``bao server -dev-tls``: what the client trusts, and nothing ambient.

``openbao_tls.ca_cert`` is the CA that signed the dev server's certificate; it is in no
system or certifi bundle, so a client trusts the server only when told to. Mutual TLS
(VAULT_CLIENT_CERT / VAULT_CLIENT_KEY) is covered elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
from urllib3.exceptions import InsecureRequestWarning

from gds_vault import (
    RetryPolicy,
    TokenAuth,
    VaultClient,
    VaultConfigError,
    VaultConnectionError,
    VaultInsecureWarning,
    VaultTLSError,
)

SECRET_PATH = "secret/tls/app"
SECRET = {"user": "TLS_USER"}


@pytest.fixture(scope="module")
def tls(openbao_tls):
    """The -dev-tls server with one KV v2 secret on it."""
    openbao_tls.kv_put("secret", "tls/app", SECRET)
    return openbao_tls


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def build(tls, sleeps):
    """Make clients for the TLS server (root token, recording retry); closed afterwards."""
    made: list[VaultClient] = []
    retry = RetryPolicy(attempts=3, initial_wait=0.01, jitter=0.0, sleep=sleeps.append)

    def make(environ: dict[str, str] | None = None, **kwargs: object) -> VaultClient:
        kwargs.setdefault("retry", retry)
        if environ is None:
            kwargs.setdefault("auth", TokenAuth(tls.root_token))
            client = VaultClient(tls.addr, **kwargs)  # type: ignore[arg-type]
        else:
            environ = {"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token, **environ}
            client = VaultClient.from_env(environ, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# -- rejected unless told ----------------------------------------------------------------------


def test_untrusted_server_is_rejected_with_advice_and_not_retried(build, sleeps, caplog):
    """Without the CA the server is refused with advice to set VAULT_CACERT, and not retried."""
    caplog.set_level("WARNING", logger="gds_vault.retry")
    client = build()
    with pytest.raises(VaultConnectionError) as info:
        client.get_secret(SECRET_PATH)
    message = str(info.value)
    assert "VAULT_CACERT" in message
    assert "TLS" in message
    assert type(info.value) is VaultTLSError  # never retried: its type says so
    assert info.value.retryable is False
    assert sleeps == []
    assert not caplog.records


def test_ambient_ca_variables_do_not_make_the_server_trusted(build, tls, monkeypatch):
    """REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and SSL_CERT_FILE naming the dev CA change nothing."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, tls.ca_cert)
    monkeypatch.setenv("SSL_CERT_DIR", str(tls.workdir / "tls"))
    with pytest.raises(VaultConnectionError, match="VAULT_CACERT"):
        build().get_secret(SECRET_PATH)
    monkeypatch.setenv("VAULT_ADDR", tls.addr)
    monkeypatch.setenv("VAULT_TOKEN", tls.root_token)
    with VaultClient.from_env(retry=RetryPolicy.no_retries()) as client, \
            pytest.raises(VaultConnectionError, match="VAULT_CACERT"):
        client.get_secret(SECRET_PATH)


# -- trusted when told --------------------------------------------------------------------------


def test_verify_with_ca_file(build, tls):
    """verify=<CA file> trusts the dev server."""
    assert build(verify=tls.ca_cert).get_secret(SECRET_PATH) == SECRET


def test_vault_cacert(build, tls):
    """VAULT_CACERT names the CA file to trust."""
    client = build({"VAULT_CACERT": tls.ca_cert})
    assert client.get_secret(SECRET_PATH) == SECRET


def test_vault_capath_directory_without_rehash(build, tls, tmp_path):
    """VAULT_CAPATH works with a plain directory of PEM files (no c_rehash links)."""
    capath = tmp_path / "cas"
    capath.mkdir()
    shutil.copy(tls.ca_cert, capath / "dev-vault-ca.pem")
    (capath / "README.txt").write_text("not a certificate\n")
    (capath / "nested").mkdir()
    client = build({"VAULT_CAPATH": str(capath)})
    assert client.get_secret(SECRET_PATH) == SECRET


def test_verify_with_ca_directory(build, tls, tmp_path):
    """verify=<directory> behaves like VAULT_CAPATH."""
    shutil.copy(tls.ca_cert, tmp_path / "ca.crt")
    assert build(verify=str(tmp_path)).get_secret(SECRET_PATH) == SECRET


def test_bogus_ambient_ca_variables_do_not_break_vault_cacert(build, tls, monkeypatch, tmp_path):
    """Broken REQUESTS_CA_BUNDLE / SSL_CERT_FILE do not disturb a client given VAULT_CACERT."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(garbage))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    assert build({"VAULT_CACERT": tls.ca_cert}).get_secret(SECRET_PATH) == SECRET
    monkeypatch.setenv("VAULT_ADDR", tls.addr)
    monkeypatch.setenv("VAULT_TOKEN", tls.root_token)
    monkeypatch.setenv("VAULT_CACERT", tls.ca_cert)
    with VaultClient.from_env() as client:
        assert client.get_secret(SECRET_PATH) == SECRET


# -- CA settings that cannot work -----------------------------------------------------------


def test_missing_ca_file_is_config_error(tls, tmp_path):
    """A VAULT_CACERT that does not exist is a VaultConfigError naming the variable."""
    with pytest.raises(VaultConfigError, match="VAULT_CACERT"):
        VaultClient.from_env({"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token,
                              "VAULT_CACERT": str(tmp_path / "nope.pem")})


def test_ca_directory_without_certificates_is_config_error(tls, tmp_path):
    """A VAULT_CAPATH directory with no PEM certificate is a VaultConfigError naming it."""
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(VaultConfigError, match="VAULT_CAPATH"):
        VaultClient.from_env({"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token,
                              "VAULT_CAPATH": str(tmp_path)})


def test_cacert_and_capath_together_are_refused(tls, tmp_path):
    """Setting both VAULT_CACERT and VAULT_CAPATH is ambiguous and refused."""
    with pytest.raises(VaultConfigError, match="not both"):
        VaultClient.from_env({"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token,
                              "VAULT_CACERT": tls.ca_cert, "VAULT_CAPATH": str(tmp_path)})


def test_bad_skip_verify_value_is_config_error(tls):
    """A VAULT_SKIP_VERIFY that is not a boolean is refused by name rather than guessed."""
    with pytest.raises(VaultConfigError, match="VAULT_SKIP_VERIFY"):
        VaultClient.from_env({"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token,
                              "VAULT_SKIP_VERIFY": "maybe"})


# -- VAULT_SKIP_VERIFY -----------------------------------------------------------------------


def test_skip_verify_warns_for_every_client_and_reads(build):
    """VAULT_SKIP_VERIFY=true warns once per client built, and reads without urllib3 warnings."""
    with pytest.warns(VaultInsecureWarning, match="VAULT_CACERT") as record:
        clients = [build({"VAULT_SKIP_VERIFY": value}) for value in ("true", "1")]
    insecure = [w for w in record if issubclass(w.category, VaultInsecureWarning)]
    assert len(insecure) == 2
    assert {w.filename for w in insecure} == {__file__}  # the user's line, not gds_vault's
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureRequestWarning)
        for client in clients:
            assert client.get_secret(SECRET_PATH) == SECRET
        clients[0].clear_cache()
        assert clients[0].get_secret(SECRET_PATH) == SECRET


def test_verify_false_argument_warns_on_the_callers_line(tls):
    """verify=False in code warns like VAULT_SKIP_VERIFY, naming the caller's line."""
    line = sys._getframe().f_lineno + 2
    with pytest.warns(VaultInsecureWarning) as record:
        client = VaultClient(tls.addr, auth=TokenAuth(tls.root_token), verify=False)
    with client:
        # Used after the pytest.warns block, whose warning filters are gone by now.
        assert client.get_secret(SECRET_PATH) == SECRET
    assert [(w.filename, w.lineno) for w in record] == [(__file__, line)]


def test_skip_verify_warns_every_time_under_default_filters(tls):
    """In a plain interpreter (default filters) two insecure clients give two warnings and no
    InsecureRequestWarning, even with that warning turned into an error."""
    script = textwrap.dedent(
        f"""
        import warnings
        from urllib3.exceptions import InsecureRequestWarning
        warnings.simplefilter("error", InsecureRequestWarning)
        from gds_vault import VaultClient
        for _ in range(2):
            with VaultClient.from_env() as client:
                assert client.get_secret({SECRET_PATH!r}) == {SECRET!r}
        print("read twice")
        """
    )
    env = {"VAULT_ADDR": tls.addr, "VAULT_TOKEN": tls.root_token, "VAULT_SKIP_VERIFY": "true",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "read twice"
    assert done.stderr.count("VaultInsecureWarning") == 2
    assert "InsecureRequestWarning" not in done.stderr
