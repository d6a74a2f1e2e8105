"""Token caching, renewal, re-login and single flight, against a real OpenBao server.

Short TTLs (seconds) make the server expire tokens during the test; the audit log shows
which requests the client made.
"""

from __future__ import annotations

import threading
import time

import pytest

from gds_vault._token import refresh_delay

LOGIN = "auth/approle/login"
RENEW = "auth/token/renew-self"


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [(3600.0, 3300.0), (900.0, 600.0), (600.0, 400.0), (3.0, 2.0), (0.0, None)],
)
def test_refresh_delay(ttl, expected):
    """Long tokens refresh 5 minutes early, short ones at two thirds; TTL 0 never."""
    assert refresh_delay(ttl) == expected


def test_token_is_cached_between_requests(vault, make_client):
    """Many requests with a valid token cause one login."""
    client = make_client(vault.role(token_ttl="1h"), cache_ttl=0)
    mark = vault.server.mark()
    for _ in range(5):
        client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, LOGIN)) == 1


def test_token_renewed_before_expiry(vault, make_client):
    """At two thirds of a short TTL the token is renewed, not replaced."""
    client = make_client(vault.role(token_ttl="3s", token_max_ttl="1m"), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    time.sleep(2.1)
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert len(vault.server.requests_since(mark, RENEW)) == 1
    assert vault.server.requests_since(mark, LOGIN) == []


def test_relogin_when_renewal_is_capped_by_max_ttl(vault, make_client):
    """When a renewal comes back shorter (max TTL near), the client logs in afresh."""
    client = make_client(vault.role(token_ttl="3s", token_max_ttl="4s"), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    time.sleep(2.1)
    client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, RENEW)) == 1
    assert len(vault.server.requests_since(mark, LOGIN)) == 1


def test_batch_tokens_are_never_renewed(vault, make_client):
    """Batch tokens cannot be renewed, so the client logs in again instead."""
    client = make_client(vault.role(token_ttl="3s", token_type="batch"), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    time.sleep(2.1)
    client.get_secret("secret/snowflake/etl")
    assert vault.server.requests_since(mark, RENEW) == []
    assert len(vault.server.requests_since(mark, LOGIN)) == 1


def test_expired_token_is_replaced_by_login(vault, make_client):
    """A token past its TTL is not renewed (it is gone); a new login replaces it."""
    client = make_client(vault.role(token_ttl="1s", token_max_ttl="1m"), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    time.sleep(1.1)
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert vault.server.requests_since(mark, RENEW) == []
    assert len(vault.server.requests_since(mark, LOGIN)) == 1


def test_revoked_token_causes_one_login_and_one_retry(vault, make_client):
    """A 403 from a revoked token leads to exactly one new login and a successful retry."""
    client = make_client(vault.role(token_ttl="1h"), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    vault.server.revoke_token(client._tokens.current())
    mark = vault.server.mark()
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert len(vault.server.requests_since(mark, LOGIN)) == 1
    assert len(vault.server.requests_since(mark, "secret/data/snowflake/etl")) == 2


def _run_in_threads(count: int, work) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_threads_cause_one_login(vault, make_client):
    """32 threads needing a token at once cause exactly one login."""
    client = make_client(vault.role(), cache_ttl=0)
    mark = vault.server.mark()
    errors = _run_in_threads(32, lambda: client.get_secret("secret/snowflake/etl"))
    assert errors == []
    assert len(vault.server.requests_since(mark, LOGIN)) == 1


def test_thousand_reads_from_32_threads_cost_one_login_and_one_read(vault, make_client):
    """1,024 cached reads from 32 threads cost one login and one read of the secret."""
    client = make_client(vault.role())
    mark = vault.server.mark()
    results: list[str] = []

    def work() -> None:
        for _ in range(32):
            results.append(client.get_secret("secret/snowflake/etl", key="user"))

    assert _run_in_threads(32, work) == []
    assert results == ["ETL"] * 1024
    assert len(vault.server.requests_since(mark, LOGIN)) == 1
    assert len(vault.server.requests_since(mark, "secret/data/snowflake/etl")) == 1
