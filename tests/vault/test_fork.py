"""A client made before os.fork() works in the child (Airflow and multiprocessing fork)."""

from __future__ import annotations

import os
import threading
import warnings

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(work) -> int:
    """Run ``work`` in a forked child; return its exit status (0 means it passed)."""
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads running; forking such a process is
        # exactly the situation under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if work() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_child_reads_with_its_own_session(vault, make_client):
    """The child gets a fresh HTTP session and reads an uncached secret."""
    client = make_client()
    client.get_secret("secret/snowflake/etl")
    parent_session = client._transport.session()

    def work() -> bool:
        session_is_new = client._transport.session() is not parent_session
        return session_is_new and client.get_secret("secret/team-a/app") == {"token": "abc"}

    assert _in_child(work) == 0
    # The parent's session still works after the child exited.
    assert client.get_secret("kv1/snowflake/etl", key="user") == "ETL_V1"


def test_child_keeps_the_token_so_no_extra_login(vault, make_client):
    """A token obtained before the fork is reused by the child: no login in the child."""
    client = make_client()
    client.login()
    mark = vault.server.mark()

    def work() -> bool:
        return client.get_secret("secret/team-a/app", key="token") == "abc"

    assert _in_child(work) == 0
    assert vault.server.requests_since(mark, "auth/approle/login") == []


def test_lock_held_at_fork_does_not_deadlock_child(vault, make_client):
    """A lock held by another parent thread at fork time is not inherited locked."""
    client = make_client(cache_ttl=0)
    client.login()
    held = threading.Event()
    release = threading.Event()

    def hold_locks() -> None:
        with client._tokens._lock, client._cache._lock, client._transport._session_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    held.wait(5)
    try:
        # The child must read without waiting for the parent's thread (absent there).
        client._tokens._state.refresh_at = 0  # force the child through the token lock
        status = _in_child(lambda: client.get_secret("secret/snowflake/etl", key="user") == "ETL")
    finally:
        release.set()
        holder.join(5)
    assert status == 0
