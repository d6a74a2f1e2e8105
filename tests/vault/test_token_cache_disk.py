"""The token cache on disk: private modes, bad files, permissions, locks; never a failure.

Each case runs against the real OpenBao server; the audit log counts the logins that a
cache that is not used (or a file that is ignored) costs, and caplog the WARNINGs.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time

import pytest

from gds_vault import AppRoleAuth
from tests.vault.token_cache_support import (
    IS_ROOT,
    LOGIN,
    SECRET,
    SECRET_PATH,
    mounts_file,
    paths_since,
    token_file,
    warnings_of,
)


@pytest.fixture
def cache(tmp_path):
    """A token cache directory that does not exist yet (the client creates it)."""
    return tmp_path / "vault-cache"


# -- what is written ----------------------------------------------------------------------


def test_files_are_private_and_hold_no_secret_id(vault, make_client, cache):
    """Directory 0700, files 0600; the token file holds the token and what judges it, and
    no file holds the secret_id, the role_id or a secret's value."""
    role_id, secret_id = vault.server.approle("cache-files", policies=["reader"])
    client = make_client(AppRoleAuth(role_id, secret_id), token_cache=cache)
    before = time.time()
    client.get_secret(SECRET_PATH)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert sorted(stat.S_IMODE(f.stat().st_mode) for f in cache.iterdir()) == [0o600] * 4
    content = json.loads(token_file(cache).read_text())
    info = vault.server.api("GET", "auth/token/lookup-self", token=content["token"])["data"]
    assert content["token"] == client._tokens.current()
    assert content["accessor"] == info["accessor"]
    assert content["policies"] == ["default", "reader"]
    assert content["renewable"] is True
    assert content["token_type"] == "service"
    assert before + info["ttl"] - 5 <= content["expires_at"] <= time.time() + info["ttl"] + 5
    assert content["method"] == "approle"
    assert content["addr"] == vault.addr
    everything = "".join(f.read_text() for f in cache.iterdir())
    for secret in (secret_id, role_id, SECRET["password"]):
        assert secret not in everything
    assert json.loads(mounts_file(cache).read_text())["mounts"]["secret/"]["version"] == 2


def test_directory_is_0700_whatever_the_umask(vault, make_client, tmp_path):
    """A directory the client creates is 0700 even under umask 000, parents included."""
    cache = tmp_path / "a" / "b"
    old = os.umask(0)
    try:
        make_client(token_cache=cache).get_secret(SECRET_PATH)
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in cache.iterdir()} == {0o600}


def test_symlink_to_a_private_directory_is_used_by_its_real_path(vault, make_client, tmp_path):
    """A cache path that is a symlink to a directory of ours (0700) is followed once, at
    the check, and the files land in the real directory."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    auth = vault.role()
    make_client(auth, token_cache=tmp_path / "link").get_secret(SECRET_PATH)
    assert make_client(auth, token_cache=tmp_path / "link").get_secret(SECRET_PATH) == SECRET
    assert len(list(real.glob("token-*.json"))) == 1


# -- bad files ------------------------------------------------------------------------------

BAD_CONTENTS = {
    "empty": b"",
    "truncated": None,  # the first half of the real file
    "not JSON": b"hvs.this is not json",
    "binary": b"\xff\xfe\x00\x01garbage",
    "a JSON list": b"[1, 2, 3]",
    "foreign format": b'{"token": "abc", "expires": 12}',
    "our header, a token that is a number": None,  # the real file with "token": 12345
    "another version": None,  # the real file with "version": 99
}


@pytest.mark.parametrize("kind", list(BAD_CONTENTS))
def test_bad_token_file_is_ignored_with_a_warning_and_replaced(
    vault, make_client, cache, caplog, kind
):
    """A corrupted, truncated, empty or foreign token file: one WARNING, one login, the
    file replaced by a good one; never an exception."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    path = token_file(cache)
    real = path.read_bytes()
    content = json.loads(real)
    bad = {
        "truncated": real[: len(real) // 2],
        "our header, a token that is a number": json.dumps({**content, "token": 12345}).encode(),
        "another version": json.dumps({**content, "version": 99}).encode(),
    }.get(kind, BAD_CONTENTS[kind])
    path.write_bytes(bad)
    caplog.set_level(logging.WARNING, logger="gds_vault")
    mark = vault.server.mark()
    client = make_client(auth, token_cache=cache, cache_ttl=0)
    for _ in range(3):
        assert client.get_secret(SECRET_PATH) == SECRET
    assert paths_since(vault, mark).count(LOGIN) == 1
    (warning,) = warnings_of(caplog)
    assert "not a valid cache file" in warning
    assert str(path) in warning
    mark = vault.server.mark()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)  # the replacement serves
    assert paths_since(vault, mark) == ["secret/data/snowflake/etl"]


def test_bad_mounts_file_is_ignored_with_a_warning_and_replaced(vault, make_client, cache, caplog):
    """A corrupt mount table costs one lookup and one WARNING, and is rewritten."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    mounts_file(cache).write_text('{"format": "gds-vault-token-cache", "mounts": ')
    caplog.set_level(logging.WARNING, logger="gds_vault")
    mark = vault.server.mark()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    assert paths_since(vault, mark) == [
        f"sys/internal/ui/mounts/{SECRET_PATH}",
        "secret/data/snowflake/etl",
    ]
    assert len(warnings_of(caplog)) == 1
    assert json.loads(mounts_file(cache).read_text())["mounts"]["secret/"]["version"] == 2


def test_a_mount_changed_since_it_was_cached_is_found_again(vault, make_client, cache):
    """A mount re-enabled as KV v1 after the table cached it as v2: the next client's read
    finds it again and rewrites the table, and the client after that trusts the new one."""
    server = vault.server
    server.enable_kv("cache-kv", version=2)
    server.kv_put("cache-kv", "app", {"user": "V2"})
    server.write_policy("cache-kv", 'path "cache-kv/*" { capabilities = ["read"] }')
    auth = vault.role(("reader", "cache-kv"))
    try:
        make_client(auth, token_cache=cache).get_secret("cache-kv/app")
        server.api("DELETE", "sys/mounts/cache-kv")
        server.enable_kv("cache-kv", version=1)
        server.kv_put("cache-kv", "app", {"user": "V1"}, version=1)
        assert make_client(auth, token_cache=cache).get_secret("cache-kv/app") == {"user": "V1"}
        mark = server.mark()
        assert make_client(auth, token_cache=cache).get_secret("cache-kv/app") == {"user": "V1"}
        assert paths_since(vault, mark) == ["cache-kv/app"]
    finally:
        server.api("DELETE", "sys/mounts/cache-kv")


# -- permissions ----------------------------------------------------------------------------


def assert_works_without_the_cache(vault, make_client, cache, caplog, auth=None, *, why: str):
    """Two clients each log in (nothing shared), with one WARNING each naming ``why``."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    auth = auth or vault.role()
    mark = vault.server.mark()
    for _ in range(2):
        client = make_client(auth, token_cache=cache, cache_ttl=0)
        client.get_secret(SECRET_PATH)
        client.get_secret(SECRET_PATH)
    assert paths_since(vault, mark).count(LOGIN) == 2
    found = warnings_of(caplog)
    assert len(found) == 2, found  # one per client, however many calls it made
    assert all(why in text and "is not used" in text for text in found), found


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777])
def test_directory_open_to_group_or_others_is_not_used(vault, make_client, cache, caplog, mode):
    """A directory group or others can reach is not used, and not changed."""
    cache.mkdir()
    cache.chmod(mode)
    assert_works_without_the_cache(
        vault, make_client, cache, caplog, why="accessible to group or others"
    )
    assert list(cache.iterdir()) == []
    assert stat.S_IMODE(cache.stat().st_mode) == mode


def test_token_file_readable_by_group_is_not_used(vault, make_client, cache, caplog):
    """A token file that became group-readable is neither read nor rewritten."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    token_file(cache).chmod(0o640)
    before = token_file(cache).read_bytes()
    assert_works_without_the_cache(
        vault, make_client, cache, caplog, auth, why="accessible to group or others"
    )
    assert token_file(cache).read_bytes() == before


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to another user")
@pytest.mark.parametrize("what", ["directory", "token file", "lock file"])
def test_directory_or_file_of_another_user_is_not_used(vault, make_client, cache, caplog, what):
    """A directory or file owned by another user (uid 65534 here) is not used."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    target = {
        "directory": cache,
        "token file": token_file(cache),
        "lock file": next(cache.glob("token-*.lock")),
    }[what]
    os.chown(target, 65534, 65534)
    if what == "lock file":
        token_file(cache).unlink()  # so that the next clients need the lock
    assert_works_without_the_cache(
        vault, make_client, cache, caplog, auth, why="owned by another user (uid 65534)"
    )


def test_symlinked_token_file_is_not_followed(vault, make_client, cache, caplog, tmp_path):
    """A token file replaced by a symlink (to a good token file, even) is not followed."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    path = token_file(cache)
    elsewhere = tmp_path / "elsewhere.json"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert_works_without_the_cache(vault, make_client, cache, caplog, auth, why="cannot be opened")


@pytest.mark.parametrize("where", ["below a file", "a file"])
def test_unusable_directory_costs_one_warning_then_no_cache(
    vault, make_client, tmp_path, caplog, where
):
    """A path that cannot be a directory: one WARNING per client, then no cache."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    cache = blocker / "cache" if where == "below a file" else blocker
    why = "cannot be created or reached" if where == "below a file" else "not a directory"
    assert_works_without_the_cache(vault, make_client, cache, caplog, why=why)


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only directories")
def test_read_only_directory_costs_one_warning_then_no_cache(vault, make_client, cache, caplog):
    """A directory of ours that we may not write: one WARNING per client, then no cache."""
    cache.mkdir(mode=0o500)
    assert_works_without_the_cache(vault, make_client, cache, caplog, why="cannot be")


# -- locks --------------------------------------------------------------------------------


def _hold_lock(cache, seconds: float, held: threading.Event) -> threading.Thread:
    """Hold the token lock of the cache's only identity in a thread for ``seconds``."""
    import fcntl

    (lock,) = cache.glob("token-*.lock")

    def hold() -> None:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.set()
            time.sleep(seconds)
            fcntl.flock(handle, fcntl.LOCK_UN)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread


def test_a_lock_held_too_long_is_waited_for_a_bounded_time(
    vault, make_client, cache, caplog, monkeypatch
):
    """A process stuck holding the lock delays the others by LOCK_WAIT, then they log in
    on their own (one WARNING) rather than hang."""
    monkeypatch.setattr("gds_vault._token_cache.LOCK_WAIT", 0.3)
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    token_file(cache).unlink()
    holder = _hold_lock(cache, 3.0, threading.Event())
    caplog.set_level(logging.WARNING, logger="gds_vault")
    started = time.monotonic()
    try:
        client = make_client(auth, token_cache=cache)
        assert client.get_secret(SECRET_PATH) == SECRET
        seconds = time.monotonic() - started
    finally:
        holder.join(8)
    # Waited LOCK_WAIT, not the holder's 3 s; the margin is for a login on a loaded machine.
    assert 0.3 <= seconds < 2.5
    assert client.stats.logins == 1
    (warning,) = warnings_of(caplog)
    assert "going on without waiting" in warning
