"""The secret cache: hits without HTTP, expiry, invalidation, single-flight misses."""

from __future__ import annotations

import threading
import time

from gds_vault._cache import SecretCache

PATH = "secret/data/snowflake/etl"


def test_hit_makes_no_request(vault, make_client):
    """A second read within the TTL is served without any request to Vault."""
    client = make_client()
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    for _ in range(100):
        client.get_secret("secret/snowflake/etl", key="user")
    assert vault.server.requests_since(mark) == []


def test_entry_expires_after_ttl(vault, make_client):
    """After cache_ttl seconds the secret is read again."""
    now = [1000.0]
    client = make_client(cache_ttl=60, clock=lambda: now[0])
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    now[0] += 59
    client.get_secret("secret/snowflake/etl")
    assert vault.server.requests_since(mark, PATH) == []
    now[0] += 2
    client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, PATH)) == 1


def test_rotation_seen_after_invalidate(vault, make_client):
    """invalidate(path) drops the cached copy, so a rotated value is read."""
    vault.server.kv_put("secret", "rotating", {"password": "one"})
    client = make_client()
    assert client.get_secret("secret/rotating", key="password") == "one"
    vault.server.kv_put("secret", "rotating", {"password": "two"})
    assert client.get_secret("secret/rotating", key="password") == "one"
    client.invalidate("/secret/rotating/")
    assert client.get_secret("secret/rotating", key="password") == "two"


def test_invalidate_drops_every_version(vault, make_client):
    """invalidate drops cached versions as well as the latest."""
    vault.server.kv_put("secret", "inv-versions", {"v": "1"})
    client = make_client()
    client.get_secret("secret/inv-versions", version=1)
    client.get_secret("secret/inv-versions")
    client.invalidate("secret/inv-versions")
    mark = vault.server.mark()
    client.get_secret("secret/inv-versions", version=1)
    client.get_secret("secret/inv-versions")
    assert len(vault.server.requests_since(mark, "secret/data/inv-versions")) == 2


def test_clear_cache(vault, make_client):
    """clear_cache drops everything."""
    client = make_client()
    client.get_secret("secret/snowflake/etl")
    client.clear_cache()
    mark = vault.server.mark()
    client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, PATH)) == 1


def test_ttl_zero_disables_cache(vault, make_client):
    """With cache_ttl=0 every call reads from Vault."""
    client = make_client(cache_ttl=0)
    mark = vault.server.mark()
    for _ in range(3):
        client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, PATH)) == 3


def test_concurrent_misses_cause_one_read(vault, make_client):
    """32 threads missing the same cold path together cause one read."""
    client = make_client()
    client.login()
    client.get_secret("secret/team-a/app")  # mount detected; only the read is left
    barrier = threading.Barrier(32)
    mark = vault.server.mark()
    results = []

    def run() -> None:
        barrier.wait()
        results.append(client.get_secret("secret/snowflake/etl", key="user"))

    threads = [threading.Thread(target=run) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["ETL"] * 32
    assert len(vault.server.requests_since(mark, PATH)) == 1


def test_failed_load_is_shared_and_not_cached():
    """Waiters see the leader's error, and a failure is not cached."""
    cache = SecretCache(60, clock=lambda: 0.0)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def failing_load():
        calls.append(1)
        started.set()
        release.wait(5)
        raise RuntimeError("boom")

    errors = []

    def follower():
        try:
            cache.get_or_load("k", "p", lambda: calls.append("follower-loaded"))
        except RuntimeError as exc:
            errors.append(exc)

    leader_errors = []

    def leader():
        try:
            cache.get_or_load("k", "p", failing_load)
        except RuntimeError as exc:
            leader_errors.append(exc)

    lead = threading.Thread(target=leader)
    lead.start()
    started.wait(5)
    follow = threading.Thread(target=follower)
    follow.start()
    flight = cache._inflight["k"]
    for _ in range(500):  # until the follower is waiting on the leader's flight
        if flight.done._cond._waiters:  # type: ignore[attr-defined]
            break
        time.sleep(0.01)
    release.set()
    lead.join(5)
    follow.join(5)
    assert len(leader_errors) == 1
    assert len(errors) == 1
    assert calls == [1]
    assert cache.get("k") is None
    assert cache.get_or_load("k", "p", lambda: "fresh") == "fresh"


def test_invalidate_during_load_prevents_stale_store():
    """A read that started before invalidate() does not store its (stale) result."""
    cache = SecretCache(60, clock=lambda: 0.0)

    def load():
        cache.invalidate("p")
        return "stale"

    assert cache.get_or_load("k", "p", load) == "stale"
    assert cache.get("k") is None
