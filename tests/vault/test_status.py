"""The client's public seams for tools: closed, stats, health(), token_status(), the default."""

from __future__ import annotations

import time

import pytest

import gds_vault
from gds_vault import (
    TokenAuth,
    VaultClient,
    VaultClientClosedError,
    VaultConnectionError,
    VaultResponseError,
    reset_default_client,
)
from gds_vault.testing import free_port


def test_closed_follows_close(make_client):
    """closed is False until close(), True after; a closed client refuses calls."""
    client = make_client()
    assert client.closed is False
    client.close()
    assert client.closed is True
    with pytest.raises(VaultClientClosedError):
        client.health()


def test_stats_count_logins_reads_and_hits(make_client):
    """stats counts one login, one KV read and the cache hits that followed it."""
    client = make_client()
    assert client.stats == gds_vault.VaultStats(logins=0, renewals=0, secret_reads=0, cache_hits=0)
    for _ in range(5):
        client.get_secret("secret/snowflake/etl")
    stats = client.stats
    assert (stats.logins, stats.secret_reads, stats.cache_hits) == (1, 1, 4)
    client.invalidate("secret/snowflake/etl")
    client.get_secret("secret/snowflake/etl")
    assert client.stats.secret_reads == 2


def test_health_of_the_dev_server(make_client, vault):
    """health() reports the real server: initialised, unsealed, active, its version and clock."""
    client = make_client()
    health = client.health()
    assert health.initialized and not health.sealed and not health.standby
    assert health.version[:1].isdigit()
    assert health.server_time is not None and abs(health.server_time - time.time()) < 5
    assert 0 < health.elapsed < 5
    assert client.stats.logins == 0  # health needs no token


def test_health_of_nothing_listening():
    """health() against a closed port is a VaultConnectionError naming the address."""
    addr = f"http://127.0.0.1:{free_port()}"
    with VaultClient(addr, auth=TokenAuth("t-" + "x" * 20)) as client:
        with pytest.raises(VaultConnectionError, match=addr):
            client.health()


def test_health_of_something_else(httpserver):
    """A web page where Vault should be is a VaultResponseError that says VAULT_ADDR is wrong."""
    httpserver.expect_request("/v1/sys/health").respond_with_data("<html/>", 200, content_type="text/html")
    with VaultClient(httpserver.url_for("").rstrip("/"), auth=TokenAuth("t-" + "x" * 20)) as client:
        with pytest.raises(VaultResponseError, match="VAULT_ADDR must point at Vault itself"):
            client.health()


def test_token_status_describes_without_the_token(make_client, vault):
    """token_status() logs in and names method, mount, TTL and policies; no token in it."""
    auth = vault.role(token_ttl="10m")
    client = make_client(auth)
    status = client.token_status()
    assert (status.method, status.mount, status.lookup_allowed) == ("approle", "approle", True)
    assert "reader" in status.policies and status.renewable
    assert 500 < status.ttl <= 600 and status.ttl_text.endswith(("m", "s"))
    assert client.stats.logins == 1
    # The secret-hygiene fixture fails the test if the token shows in this repr.
    assert "TokenStatus(method='approle'" in repr(status)


def test_token_status_when_lookup_is_denied(make_client, vault):
    """A token whose policies deny lookup-self still logs in; the status says lookup is denied."""
    vault.server.write_policy("only-read", 'path "secret/data/*" { capabilities = ["read"] }')
    auth = vault.role(policies=("only-read",), token_no_default_policy=True)
    status = make_client(auth).token_status()
    assert status.lookup_allowed is False and status.policies == ()


def test_reset_default_client_closes_and_forgets(vault, monkeypatch):
    """reset_default_client() closes the shared client; the next use builds a new one."""
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_TOKEN", vault.server.create_token(policies=["reader"]))
    first = gds_vault.get_default_client()
    reset_default_client()
    assert first.closed
    second = gds_vault.get_default_client()
    assert second is not first and not second.closed
    reset_default_client()
