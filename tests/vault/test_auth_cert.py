"""TLS certificate auth (``auth/cert``) against a real ``bao server -dev-tls``.

The client certificates and their CA are made at test time (tests/reliability/certs.py);
the CA is registered on OpenBao's cert method, which then accepts certificates it signed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gds_vault import CertAuth, RetryPolicy, VaultAuthError, VaultClient, VaultConfigError
from tests.reliability.certs import CertificateAuthority
from tests.vault.test_fork import _in_child

SECRET = {"user": "CERT_USER", "password": "pw-cert-auth-1"}
LOGIN = "auth/cert/login"
RENEW = "auth/token/renew-self"
FAST = RetryPolicy(attempts=2, initial_wait=0.01, jitter=0.0)


@pytest.fixture(scope="module")
def pki(openbao_tls, tmp_path_factory):
    """A CA registered on auth/cert as role 'etl' (and one as 'short' with a 3 s TTL),
    a client certificate it signed, and one from a CA OpenBao does not know."""
    directory = tmp_path_factory.mktemp("cert-auth")
    ca = CertificateAuthority(directory, "cert auth CA")
    ca_pem = Path(ca.cert).read_text()
    openbao_tls.write_policy("cert-reader", 'path "secret/data/cert/*" { capabilities = ["read"] }')
    openbao_tls.kv_put("secret", "cert/app", SECRET)
    openbao_tls.cert_role("etl", ca_pem, policies=["cert-reader"], token_ttl="1h")
    openbao_tls.cert_role(
        "short", ca_pem, policies=["cert-reader"], token_ttl="3s", token_max_ttl="1m"
    )
    rogue = CertificateAuthority(directory / "rogue", "rogue CA")
    return {
        "server": openbao_tls,
        "client": ca.issue("client", server=False),
        "rogue": rogue.issue("rogue-client", server=False),
    }


@pytest.fixture
def make(pki):
    made: list[VaultClient] = []

    def build(auth: CertAuth, pair=None, **kwargs) -> VaultClient:
        pair = pair or pki["client"]
        kwargs.setdefault("retry", FAST)
        client = VaultClient(
            pki["server"].addr,
            auth=auth,
            verify=pki["server"].ca_cert,
            cert=(pair.cert, pair.key),
            **kwargs,
        )
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def test_cert_login_reads_a_secret(make):
    """The client certificate of the TLS connection logs in at auth/cert/login."""
    client = make(CertAuth("etl"))
    assert client.get_secret("secret/cert/app") == SECRET
    assert client.token_status().policies == ("cert-reader", "default")


def test_without_a_role_vault_picks_the_matching_one(make, pki):
    """Without a role name, Vault picks a role whose certificate matches."""
    client = make(CertAuth())
    assert client.get_secret("secret/cert/app", key="user") == "CERT_USER"


def test_from_env_with_client_certificate(pki):
    """VAULT_AUTH_METHOD=cert with VAULT_CLIENT_CERT/KEY and VAULT_CERT_ROLE logs in; the
    status says the credentials are the client certificate."""
    pair = pki["client"]
    environ = {
        "VAULT_ADDR": pki["server"].addr,
        "VAULT_CACERT": pki["server"].ca_cert,
        "VAULT_AUTH_METHOD": "cert",
        "VAULT_CERT_ROLE": "etl",
        "VAULT_CLIENT_CERT": pair.cert,
        "VAULT_CLIENT_KEY": pair.key,
    }
    with VaultClient.from_env(environ, retry=FAST) as client:
        assert client.get_secret("secret/cert/app", key="user") == "CERT_USER"
        status = client.token_status()
    assert (status.method, status.mount) == ("cert", "cert")
    assert status.source == "the client certificate (VAULT_CLIENT_CERT), role 'etl'"


def test_cert_auth_without_a_client_certificate_is_a_config_error(pki):
    """cert auth with no client certificate configured fails when the client is built,
    naming VAULT_CLIENT_CERT and VAULT_CLIENT_KEY."""
    environ = {
        "VAULT_ADDR": pki["server"].addr,
        "VAULT_CACERT": pki["server"].ca_cert,
        "VAULT_AUTH_METHOD": "cert",
    }
    with pytest.raises(VaultConfigError, match="VAULT_CLIENT_CERT and VAULT_CLIENT_KEY"):
        VaultClient.from_env(environ)


def test_certificate_from_an_unknown_ca_is_refused_clearly(make, pki):
    """A certificate no registered CA signed is a VaultAuthError saying how to register it
    (not retried: one login request)."""
    server = pki["server"]
    mark = server.mark()
    with pytest.raises(VaultAuthError) as info:
        make(CertAuth("etl"), pair=pki["rogue"]).login()
    message = str(info.value)
    assert "not accepted by role 'etl' on auth/cert" in message
    assert "vault write auth/cert/certs/<role> certificate=@ca.pem" in message
    assert len(server.requests_since(mark, LOGIN)) == 1


def test_unknown_role_is_refused(make):
    """A role name that does not exist on the mount is a VaultAuthError."""
    with pytest.raises(VaultAuthError, match="role 'nobody'"):
        make(CertAuth("nobody")).login()


def test_threads_cause_one_cert_login(make, pki):
    """16 threads needing a token at once cause one certificate login."""
    client = make(CertAuth("etl"), cache_ttl=0)
    server = pki["server"]
    mark = server.mark()
    barrier = threading.Barrier(16)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        results.append(client.get_secret("secret/cert/app", key="user"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["CERT_USER"] * 16
    assert len(server.requests_since(mark, LOGIN)) == 1


def test_forked_child_reuses_the_token(make, pki):
    """A child forked after the login reads with the parent's token: no login in the child."""
    client = make(CertAuth("etl"), cache_ttl=0)
    client.login()
    mark = pki["server"].mark()
    assert _in_child(lambda: client.get_secret("secret/cert/app", key="user") == "CERT_USER") == 0
    assert pki["server"].requests_since(mark, LOGIN) == []


def test_short_token_is_renewed_then_replaced_by_a_new_cert_login(make, pki):
    """A 3 s token is renewed at two thirds of its TTL; once revoked, the next call logs in
    again with the certificate."""
    server = pki["server"]
    client = make(CertAuth("short"), cache_ttl=0)
    client.get_secret("secret/cert/app")
    mark = server.mark()
    time.sleep(2.1)
    assert client.get_secret("secret/cert/app", key="user") == "CERT_USER"
    assert len(server.requests_since(mark, RENEW)) == 1
    assert server.requests_since(mark, LOGIN) == []
    server.revoke_token(client._tokens.current())
    assert client.get_secret("secret/cert/app", key="user") == "CERT_USER"
    assert len(server.requests_since(mark, LOGIN)) == 1
