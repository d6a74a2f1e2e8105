"""The token cache shared by processes (GDS_VAULT_TOKEN_CACHE), against a real OpenBao.

Clients in one test process share nothing in memory: each has its own token manager and
mount table, so a second client stands for a second process (tests/vault/
test_token_cache_processes.py runs real ones). The audit log counts the requests. What
happens on disk (modes, bad files, permissions, locks) is in test_token_cache_disk.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings

import pytest

from gds_vault import AppRoleAuth, JWTAuth, TokenAuth, VaultClient, VaultConfigError
from gds_vault._token_cache import open_shared
from tests.vault.test_auth import jwt_signer  # noqa: F401 - a fixture: OpenBao's JWT method
from tests.vault.token_cache_support import (
    LOGIN,
    SECRET,
    SECRET_PATH,
    paths_since,
    token_file,
)


@pytest.fixture
def cache(tmp_path):
    """A token cache directory that does not exist yet (the client creates it)."""
    return tmp_path / "vault-cache"


# -- sharing --------------------------------------------------------------------------------


def test_second_client_takes_the_token_and_the_mount_table(vault, make_client, cache):
    """The first client logs in, looks the mount up and reads; the next costs one read."""
    auth = vault.role()
    mark = vault.server.mark()
    assert make_client(auth, token_cache=cache).get_secret(SECRET_PATH) == SECRET
    assert paths_since(vault, mark) == [
        LOGIN,
        f"sys/internal/ui/mounts/{SECRET_PATH}",
        "secret/data/snowflake/etl",
    ]
    mark = vault.server.mark()
    second = make_client(auth, token_cache=cache)
    assert second.get_secret(SECRET_PATH) == SECRET
    assert paths_since(vault, mark) == ["secret/data/snowflake/etl"]
    assert second.stats.logins == 0


def test_without_a_cache_nothing_is_shared(vault, make_client, cache):
    """Off by default: each client logs in and looks the mount up itself."""
    auth = vault.role()
    make_client(auth).get_secret(SECRET_PATH)
    mark = vault.server.mark()
    make_client(auth).get_secret(SECRET_PATH)
    assert paths_since(vault, mark)[0] == LOGIN
    assert len(paths_since(vault, mark)) == 3
    assert not cache.exists()


def test_renewal_is_written_back(vault, make_client, cache):
    """A client that renews the shared token writes the new expiry; the next client takes
    the renewed token without logging in or renewing."""
    auth = vault.role(token_ttl="3s", token_max_ttl="1m")
    first = make_client(auth, token_cache=cache, cache_ttl=0)
    first.get_secret(SECRET_PATH)
    written = json.loads(token_file(cache).read_text())
    time.sleep(2.1)  # past two thirds of the TTL: due for renewal
    mark = vault.server.mark()
    first.get_secret(SECRET_PATH)
    assert paths_since(vault, mark).count("auth/token/renew-self") == 1
    renewed = json.loads(token_file(cache).read_text())
    assert renewed["token"] == written["token"]
    assert renewed["expires_at"] >= written["expires_at"] + 2
    mark = vault.server.mark()
    second = make_client(auth, token_cache=cache, cache_ttl=0)
    second.get_secret(SECRET_PATH)
    assert paths_since(vault, mark) == ["secret/data/snowflake/etl"]


def test_due_token_found_in_the_cache_is_renewed_by_whoever_finds_it(vault, make_client, cache):
    """A client that starts when the cached token is due renews it (no login) and writes
    it back."""
    auth = vault.role(token_ttl="3s", token_max_ttl="1m")
    make_client(auth, token_cache=cache, cache_ttl=0).get_secret(SECRET_PATH)
    time.sleep(2.1)
    mark = vault.server.mark()
    late = make_client(auth, token_cache=cache, cache_ttl=0)
    late.get_secret(SECRET_PATH)
    assert paths_since(vault, mark) == ["auth/token/renew-self", "secret/data/snowflake/etl"]
    assert late.stats.renewals == 1
    assert json.loads(token_file(cache).read_text())["refresh_at"] > time.time()


def test_expired_token_in_the_file_is_not_taken(vault, make_client, cache):
    """A token the file says has expired costs one login, quietly, and is replaced."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    content = json.loads(token_file(cache).read_text())
    content["expires_at"] = content["refresh_at"] = time.time() - 10
    token_file(cache).write_text(json.dumps(content))
    mark = vault.server.mark()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    assert paths_since(vault, mark) == [LOGIN, "secret/data/snowflake/etl"]
    assert json.loads(token_file(cache).read_text())["expires_at"] > time.time()


def test_revoked_token_costs_the_finder_one_login_which_it_writes_back(vault, make_client, cache):
    """A cached token Vault refuses: the client finding it logs in once and writes the new
    token back; later clients, and the one still holding the dead token, take the new one."""
    auth = vault.role()
    holder = make_client(auth, token_cache=cache, cache_ttl=0)
    holder.get_secret(SECRET_PATH)
    dead = holder._tokens.current()
    vault.server.revoke_token(dead)
    mark = vault.server.mark()
    finder = make_client(auth, token_cache=cache, cache_ttl=0)
    assert finder.get_secret(SECRET_PATH) == SECRET
    assert paths_since(vault, mark).count(LOGIN) == 1
    assert finder.stats.logins == 1
    fresh = json.loads(token_file(cache).read_text())["token"]
    assert fresh not in (dead, None)
    mark = vault.server.mark()
    assert holder.get_secret(SECRET_PATH) == SECRET  # finds its token dead, takes the new one
    assert make_client(auth, token_cache=cache).get_secret(SECRET_PATH) == SECRET
    assert paths_since(vault, mark).count(LOGIN) == 0
    assert holder._tokens.current() == fresh
    assert holder.stats.logins == 1


# -- identities -----------------------------------------------------------------------------


def test_two_roles_never_share_a_token(vault, make_client, cache):
    """Two AppRoles with one cache directory: two files, two logins, two tokens."""
    first, second = vault.role(), vault.role(("narrow",))
    a = make_client(first, token_cache=cache)
    b = make_client(second, token_cache=cache)
    a.get_secret(SECRET_PATH)
    b.get_secret("secret/team-a/app")
    assert a.stats.logins == b.stats.logins == 1
    assert a._tokens.current() != b._tokens.current()
    assert len(list(cache.glob("token-*.json"))) == 2
    assert b.token_status().policies == ("default", "narrow")


def test_two_secret_ids_of_one_role_share_its_token(vault, make_client, cache):
    """The key is the role_id, not the secret_id: a second secret_id of the role logs in
    no more."""
    role_id, secret_id = vault.server.approle("cache-shared-role", policies=["reader"])
    other_secret_id = vault.server.secret_id("cache-shared-role")
    make_client(AppRoleAuth(role_id, secret_id), token_cache=cache).get_secret(SECRET_PATH)
    second = make_client(AppRoleAuth(role_id, other_secret_id), token_cache=cache)
    second.get_secret(SECRET_PATH)
    assert second.stats.logins == 0


def _namespaced(server, namespace: str, method: str, path: str, body=None) -> dict:
    response = server.session.request(
        method,
        f"{server.addr}/v1/{path}",
        json=body,
        headers={"X-Vault-Token": server.root_token, "X-Vault-Namespace": namespace},
        timeout=10,
    )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.content else {}


def test_two_namespaces_never_share_a_token(vault, make_client, cache):
    """The same role name and role_id in two OpenBao namespaces: two tokens, each working
    only in its own namespace, and two token files."""
    server = vault.server
    suffix = os.urandom(3).hex()
    role_id = f"cache-role-id-{suffix}"
    clients = {}
    for namespace in (f"ns-a-{suffix}", f"ns-b-{suffix}"):
        server.api("POST", f"sys/namespaces/{namespace}", {})
        _namespaced(server, namespace, "POST", "sys/auth/approle", {"type": "approle"})
        _namespaced(
            server,
            namespace,
            "POST",
            "sys/mounts/secret",
            {"type": "kv", "options": {"version": "2"}},
        )
        _namespaced(
            server,
            namespace,
            "PUT",
            "sys/policies/acl/reader",
            {"policy": 'path "secret/data/*" { capabilities = ["read"] }'},
        )
        _namespaced(server, namespace, "POST", "secret/data/app", {"data": {"ns": namespace}})
        _namespaced(
            server,
            namespace,
            "POST",
            "auth/approle/role/etl",
            {"token_policies": ["reader"], "role_id": role_id},
        )
        secret_id = _namespaced(server, namespace, "POST", "auth/approle/role/etl/secret-id")[
            "data"
        ]["secret_id"]
        from tests.reliability.hygiene import register

        register(secret_id)
        clients[namespace] = make_client(
            AppRoleAuth(role_id, secret_id), namespace=namespace, token_cache=cache
        )
    for namespace, client in clients.items():
        assert client.get_secret("secret/app") == {"ns": namespace}
        assert client.stats.logins == 1
    first, second = (client._tokens.current() for client in clients.values())
    assert first != second
    assert len(list(cache.glob("token-*.json"))) == 2
    assert len(list(cache.glob("mounts-*.json"))) == 2


def test_keys_never_hold_a_secret(tmp_path):
    """Identities name the role, never the secret_id or JWT; token auth has none."""
    approle = AppRoleAuth("role-id-1", "secret-id-value-1")
    assert approle.cache_identity() == "role_id=role-id-1"
    assert AppRoleAuth("role-id-1", "secret-id-value-2").cache_identity() == "role_id=role-id-1"
    assert JWTAuth("etl", jwt_file="/run/jwt").cache_identity() == "role=etl jwt_file=/run/jwt"
    assert JWTAuth("etl", jwt="header.payload.signature").cache_identity() is None
    assert TokenAuth("hvs.not-a-real-token-value").cache_identity() is None

    def key(auth, addr="http://127.0.0.1:1", namespace=None):
        token, _ = open_shared(
            tmp_path, addr=addr, namespace=namespace, auth=auth, clock=time.monotonic
        )
        return token.name if token else None

    assert key(approle) == key(AppRoleAuth("role-id-1", "secret-id-value-2"))
    assert key(approle) != key(AppRoleAuth("role-id-1", "x-secret-id", mount="other"))
    assert key(approle) != key(approle, namespace="team-a")
    assert key(approle) != key(approle, addr="http://127.0.0.1:2")
    assert key(TokenAuth("hvs.not-a-real-token-value")) is None


def test_token_auth_shares_the_mount_table_but_not_the_token(vault, make_client, cache):
    """A given token needs no login; the mount table is still shared."""
    token = vault.server.create_token(policies=["reader"])
    make_client(TokenAuth(token), token_cache=cache).get_secret(SECRET_PATH)
    mark = vault.server.mark()
    make_client(TokenAuth(token), token_cache=cache).get_secret(SECRET_PATH)
    assert paths_since(vault, mark) == ["auth/token/lookup-self", "secret/data/snowflake/etl"]
    assert list(cache.glob("token-*")) == []


def test_jwt_logins_are_shared(vault, make_client, cache, jwt_signer, tmp_path):  # noqa: F811
    """Two clients with the same JWT role and file: one login."""
    jwt_path = tmp_path / "jwt"
    jwt_path.write_text(jwt_signer())
    first = make_client(JWTAuth("etl", jwt_file=jwt_path), token_cache=cache)
    first.get_secret(SECRET_PATH)
    second = make_client(JWTAuth("etl", jwt_file=jwt_path), token_cache=cache)
    second.get_secret(SECRET_PATH)
    assert (first.stats.logins, second.stats.logins) == (1, 0)


# -- configuration --------------------------------------------------------------------------


def test_from_env_reads_gds_vault_token_cache(vault, monkeypatch, tmp_path):
    """GDS_VAULT_TOKEN_CACHE turns the cache on, '~' expanded; unset or empty leaves it off."""
    role_id, secret_id = vault.server.approle("cache-env", policies=["reader"])
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert VaultClient.from_env().settings.token_cache is None
    monkeypatch.setenv("GDS_VAULT_TOKEN_CACHE", " ")
    assert VaultClient.from_env().settings.token_cache is None
    monkeypatch.setenv("GDS_VAULT_TOKEN_CACHE", "~/.cache/gds-vault")
    with VaultClient.from_env() as client:
        assert client.settings.token_cache == str(tmp_path / ".cache" / "gds-vault")
        client.get_secret(SECRET_PATH)
    assert len(list((tmp_path / ".cache" / "gds-vault").glob("token-*.json"))) == 1
    with VaultClient.from_env(token_cache=None) as client:
        assert client.settings.token_cache is None


def test_relative_directory_is_made_absolute(vault, monkeypatch, tmp_path):
    """A relative token_cache is resolved when the client is made (a later chdir is moot)."""
    monkeypatch.chdir(tmp_path)
    client = VaultClient(vault.addr, auth=vault.role(), token_cache="cache")
    assert client.settings.token_cache == str(tmp_path / "cache")
    client.close()


def test_token_cache_of_the_wrong_type_is_a_config_error(vault):
    """token_cache=<not a path> fails when the client is made, naming the setting."""
    with pytest.raises(VaultConfigError, match="token_cache must be a directory path"):
        VaultClient(vault.addr, auth=vault.role(), token_cache=3)  # type: ignore[arg-type]


# -- fork ----------------------------------------------------------------------------------


def _in_child(work) -> int:
    """Run ``work`` in a forked child; its exit status (0: it returned true)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: under test
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if work() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_client_made_before_fork_uses_the_cache_in_the_child(vault, make_client, cache):
    """A client made (unused) before fork takes the cached token in the child; the child's
    login, when it needs one, reaches the parent through the file."""
    auth = vault.role()
    make_client(auth, token_cache=cache).get_secret(SECRET_PATH)
    unused = make_client(auth, token_cache=cache)
    mark = vault.server.mark()
    assert _in_child(lambda: unused.get_secret(SECRET_PATH) == SECRET) == 0
    assert paths_since(vault, mark) == ["secret/data/snowflake/etl"]

    token_file(cache).unlink()
    fresh = make_client(auth, token_cache=cache)
    assert _in_child(lambda: fresh.get_secret(SECRET_PATH) == SECRET) == 0
    mark = vault.server.mark()
    fresh.get_secret("secret/team-a/app")
    assert fresh.stats.logins == 0
    assert paths_since(vault, mark) == ["secret/data/team-a/app"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_lock_held_at_fork_is_released_for_the_child(vault, make_client, cache, monkeypatch):
    """A child forked while a parent thread holds the token lock gets it as soon as the
    parent lets go (the child's copy of the open lock file does not keep it held)."""
    monkeypatch.setattr("gds_vault._token_cache.LOCK_WAIT", 10.0)
    auth = vault.role()
    parent = make_client(auth, token_cache=cache)
    parent.get_secret(SECRET_PATH)
    token_file(cache).unlink()
    child_client = make_client(auth, token_cache=cache)
    entered, release = threading.Event(), threading.Event()

    def refresh_slowly() -> None:
        with parent._tokens._shared.exclusive(ready=lambda: False) as held:
            assert held
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=refresh_slowly)
    holder.start()
    entered.wait(5)

    def child_work() -> bool:
        started = time.monotonic()
        ok = child_client.get_secret(SECRET_PATH) == SECRET
        return ok and time.monotonic() - started < 5.0

    threading.Timer(0.3, release.set).start()
    try:
        status = _in_child(child_work)
    finally:
        release.set()
        holder.join(5)
    assert status == 0


def test_userpass_users_share_per_user_and_never_across_users(vault, make_client, cache):
    """A userpass token is shared by clients of the same user, never with another user."""
    from gds_vault import CertAuth, UserpassAuth

    vault.server.userpass("cache-alice", "alice-pw-1234", policies=["reader"])
    vault.server.userpass("cache-bob", "bob-pw-123456", policies=["reader"])
    alice = UserpassAuth("cache-alice", "alice-pw-1234")
    make_client(alice, token_cache=cache).get_secret(SECRET_PATH)
    again = make_client(UserpassAuth("cache-alice", "alice-pw-1234"), token_cache=cache)
    again.get_secret(SECRET_PATH)
    bob = make_client(UserpassAuth("cache-bob", "bob-pw-123456"), token_cache=cache)
    bob.get_secret(SECRET_PATH)
    assert (again.stats.logins, bob.stats.logins) == (0, 1)
    assert again.token_status().display_name == "userpass-cache-alice"
    assert bob.token_status().display_name == "userpass-cache-bob"
    # Methods whose identity only the credentials tell are never shared.
    assert CertAuth().cache_identity() is None
    assert CertAuth(role="web").cache_identity() == "role=web"
