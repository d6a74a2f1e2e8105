"""Mutual TLS against a real OpenBao listener that requires client certificates.

The server is started with a second listener (``extra_config``) whose certificate and
trusted client CA are made at test time with ``cryptography``. The dev listener stays
plain HTTP for administration. (Verification on by default, VAULT_CACERT / VAULT_CAPATH
and VAULT_SKIP_VERIFY are pinned against ``-dev-tls`` in tests/vault/test_tls.py.)
"""

from __future__ import annotations

import pytest

from gds_vault import (
    RetryPolicy,
    VaultClient,
    VaultConfigError,
    VaultConnectionError,
    VaultTLSError,
)
from gds_vault.testing import OpenBaoServer, free_port
from tests.reliability.certs import CertificateAuthority

SECRET = {"user": "MTLS_USER", "password": "pw-mtls-1"}


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    """An OpenBao server with a listener requiring client certificates signed by ``ca``."""
    directory = tmp_path_factory.mktemp("mtls")
    ca = CertificateAuthority(directory)
    server_pair = ca.issue("server", server=True)
    port = free_port()
    listener = f"""
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_cert_file = "{server_pair.cert}"
  tls_key_file = "{server_pair.key}"
  tls_client_ca_file = "{ca.cert}"
  tls_require_and_verify_client_cert = true
}}
"""
    with OpenBaoServer(extra_config=listener) as server:
        server.kv_put("secret", "mtls/app", SECRET)
        yield {
            "server": server,
            "addr": f"https://127.0.0.1:{port}",
            "ca": ca,
            "client": ca.issue("client", server=False),
            "rogue": CertificateAuthority(directory / "rogue", "rogue CA").issue(
                "rogue", server=False
            ),
        }


def environ(mtls, **variables: str) -> dict[str, str]:
    return {
        "VAULT_ADDR": mtls["addr"],
        "VAULT_TOKEN": mtls["server"].root_token,
        "VAULT_CACERT": mtls["ca"].cert,
        **variables,
    }


def read(env: dict[str, str]) -> object:
    with VaultClient.from_env(env, retry=RetryPolicy.no_retries()) as client:
        return client.get_secret("secret/mtls/app")


def test_client_certificate_from_environment_is_accepted(mtls):
    """VAULT_CLIENT_CERT and VAULT_CLIENT_KEY give the client certificate the listener requires."""
    pair = mtls["client"]
    assert read(environ(mtls, VAULT_CLIENT_CERT=pair.cert, VAULT_CLIENT_KEY=pair.key)) == SECRET


def test_client_certificate_argument_is_accepted(mtls):
    """cert=(certificate, key) does the same in code."""
    pair = mtls["client"]
    with VaultClient(
        mtls["addr"],
        auth=VaultClient.from_env(environ(mtls)).auth,
        verify=mtls["ca"].cert,
        cert=(pair.cert, pair.key),
    ) as client:
        assert client.get_secret("secret/mtls/app") == SECRET


def test_missing_client_certificate_fails_clearly(mtls):
    """Without a client certificate the error says mutual TLS needs VAULT_CLIENT_CERT/KEY,
    not that the CA is wrong, and it is not retried."""
    with pytest.raises(VaultConnectionError) as info:
        read(environ(mtls))
    message = str(info.value)
    assert "client certificate" in message
    assert "VAULT_CLIENT_CERT" in message
    assert "VAULT_CLIENT_KEY" in message
    assert "VAULT_CACERT" not in message
    assert type(info.value) is VaultTLSError  # never retried: its type says so
    assert info.value.retryable is False


def test_untrusted_client_certificate_fails_clearly(mtls):
    """A client certificate from a CA the server does not trust is named as the problem."""
    pair = mtls["rogue"]
    with pytest.raises(VaultConnectionError, match="not one it trusts") as info:
        read(environ(mtls, VAULT_CLIENT_CERT=pair.cert, VAULT_CLIENT_KEY=pair.key))
    assert type(info.value) is VaultTLSError  # never retried: its type says so
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("cert", "key", "match"),
    [
        ("missing", "client", "VAULT_CLIENT_CERT"),
        ("client", "missing", "VAULT_CLIENT_KEY"),
        ("client", "server-key", "key must belong to the certificate"),
        ("client", None, "cannot be used"),
        ("ca-as-key", "ca-as-key", "cannot be used"),
    ],
    ids=[
        "cert-file-missing",
        "key-file-missing",
        "key-of-another-cert",
        "cert-without-key",
        "certificate-as-key",
    ],
)
def test_unusable_client_certificate_settings_are_config_errors(mtls, tmp_path, cert, key, match):
    """Client certificate settings that cannot work are a VaultConfigError naming the
    variable when the client is built, not an OSError or a TLS error at the first read."""
    files = {
        "missing": str(tmp_path / "missing.pem"),
        "client": mtls["client"].cert,
        "server-key": mtls["ca"].issue("other-server", server=True).key,
        "ca-as-key": mtls["ca"].cert,
    }
    variables = {"VAULT_CLIENT_CERT": files[cert]}
    if key == "client":
        variables["VAULT_CLIENT_KEY"] = mtls["client"].key
    elif key is not None:
        variables["VAULT_CLIENT_KEY"] = files[key]
    with pytest.raises(VaultConfigError, match=match):
        VaultClient.from_env(environ(mtls, **variables))


def test_encrypted_client_key_is_a_config_error_not_a_prompt(mtls, tmp_path):
    """An encrypted client key is refused by name instead of OpenSSL prompting on the terminal."""
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(mtls["client"].key).read_bytes(), None)
    encrypted = tmp_path / "client-key-encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"client-key-passphrase"),
        )
    )
    with pytest.raises(VaultConfigError, match="encrypted"):
        VaultClient.from_env(
            environ(mtls, VAULT_CLIENT_CERT=mtls["client"].cert, VAULT_CLIENT_KEY=str(encrypted))
        )
