"""Review finding 5: what holds a secret, for how long, and where it can travel.

Before the fix, after ``close()`` the client still held the secret_id (its auth) and the
token stayed valid; ``TokenAuth``, the token state, ``LoginResult`` and the Snowflake
credentials pickled with the secret in clear (a pickle is a file, a queue message, a
cache entry); and the Snowflake connection forwarded every attribute to the connector,
``_private_key`` and ``_password`` included. Now ``close()`` drops every reference to a
secret and can revoke the token (``revoke_on_close``, off by default); objects holding
secrets refuse to pickle; the connection forwards only the connector's public API.
(The pytest plugins being opt-in is pinned by tests/snowflake/test_plugin.py.)
"""

from __future__ import annotations

import gc
import os
import pickle
import types
import warnings

import pytest

from gds_snowflake import SecretLayout, get_snowflake_connection
from gds_snowflake._credentials import _stores, parse_secret, read_fields, store_for
from gds_snowflake._keys import load_private_key
from gds_vault import (
    AppRoleAuth,
    AWSIAMAuth,
    CertAuth,
    JWTAuth,
    LDAPAuth,
    Lease,
    TokenAuth,
    UserpassAuth,
    VaultClient,
    VaultConfigError,
)
from gds_vault._auth import LoginResult
from gds_vault._token import _TokenState
from tests.snowflake.conftest import pem, rsa_key, world, world_servers  # noqa: F401

pytestmark = pytest.mark.timeout(90)

POLICY = 'path "secret/data/lifetime/*" { capabilities = ["read"] }'


@pytest.fixture
def lifetime(openbao):
    openbao.write_policy("lifetime", POLICY)
    openbao.kv_put("secret", "lifetime/app", {"user": "LIFE", "password": "pw-lifetime-1"})
    return openbao


def strings_reachable_from(root: object) -> set[str]:
    """Every str reachable from ``root`` through object references, without following
    modules, classes or functions' globals (which reach everything)."""
    seen: set[int] = set()
    found: set[str] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.add(obj)
        elif isinstance(obj, bytes):
            found.add(obj.decode("latin-1"))
        elif isinstance(obj, types.ModuleType | type):
            continue
        elif isinstance(obj, types.FunctionType):
            stack.extend(cell.cell_contents for cell in obj.__closure__ or ())
            stack.extend(obj.__defaults__ or ())
        else:
            stack.extend(gc.get_referents(obj))
    return found


def test_close_drops_every_reference_to_a_secret(lifetime):
    """While open the client holds the secret_id, the token and the secret read (the
    walk finds them); after close() none of them is reachable from it."""
    role_id, secret_id = lifetime.approle("lifetime-a", policies=["lifetime"])
    client = VaultClient(lifetime.addr, auth=AppRoleAuth(role_id, secret_id))
    assert client.get_secret("secret/lifetime/app", key="password") == "pw-lifetime-1"
    token = client._tokens.current()
    assert token is not None
    held = strings_reachable_from(client)
    assert {secret_id, token, "pw-lifetime-1"} <= held  # the walk sees them while open
    client.close()
    left = strings_reachable_from(client)
    assert {secret_id, token, "pw-lifetime-1"} & left == set()
    assert "closed" in repr(client)


def lookup_status(server, token: str) -> int:
    response = server.session.get(
        f"{server.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}, timeout=10
    )
    return int(response.status_code)


def test_token_outlives_close_by_default(lifetime):
    """revoke_on_close is off by default: the token stays valid after close()."""
    role_id, secret_id = lifetime.approle("lifetime-b", policies=["lifetime"])
    client = VaultClient(lifetime.addr, auth=AppRoleAuth(role_id, secret_id))
    client.login()
    token = client._tokens.current()
    client.close()
    assert lookup_status(lifetime, token) == 200


def test_revoke_on_close_revokes_the_token_it_logged_in_with(lifetime):
    """With revoke_on_close=True, close() revokes the token the client obtained."""
    role_id, secret_id = lifetime.approle("lifetime-c", policies=["lifetime"])
    client = VaultClient.from_env(
        {"VAULT_ADDR": lifetime.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
        revoke_on_close=True,
    )
    client.get_secret("secret/lifetime/app")
    token = client._tokens.current()
    client.close()
    assert lookup_status(lifetime, token) == 403


def test_revoke_on_close_never_revokes_a_token_it_was_given(lifetime):
    """A token given to the client (VAULT_TOKEN, ~/.vault-token) is the user's: close()
    leaves it valid even with revoke_on_close=True."""
    token = lifetime.create_token(policies=["lifetime"])
    client = VaultClient(lifetime.addr, auth=TokenAuth(token), revoke_on_close=True)
    client.get_secret("secret/lifetime/app")
    client.close()
    assert lookup_status(lifetime, token) == 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_revoke_on_close_in_a_forked_child_leaves_the_parents_token(lifetime):
    """A forked child closing its copy of the client does not revoke the parent's token."""
    role_id, secret_id = lifetime.approle("lifetime-d", policies=["lifetime"])
    client = VaultClient(lifetime.addr, auth=AppRoleAuth(role_id, secret_id), revoke_on_close=True)
    client.login()
    token = client._tokens.current()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            client.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert lookup_status(lifetime, token) == 200
    client.close()
    assert lookup_status(lifetime, token) == 403


def test_revoke_on_close_with_a_shared_token_cache_is_refused(tmp_path):
    """Revoking a token other processes share would log them all out: refused."""
    with pytest.raises(VaultConfigError, match="revoke_on_close"):
        VaultClient(
            "https://vault.example.com:8200",
            auth=AppRoleAuth("role-id", "secret-id-x"),
            token_cache=tmp_path,
            revoke_on_close=True,
        )


def secret_holders(rsa_key) -> dict[str, object]:  # noqa: F811
    password = "pw-pickle-test-1"
    key_text = pem(rsa_key)
    layout = SecretLayout()
    return {
        "TokenAuth": TokenAuth("hvs.pickle-test-token-123456"),
        "AppRoleAuth": AppRoleAuth("role-id", "secret-id-pickle-1"),
        "JWTAuth": JWTAuth("role", jwt="header.payload.signature"),
        "UserpassAuth": UserpassAuth("alice", password),
        "LDAPAuth": LDAPAuth("alice", password),
        "CertAuth": CertAuth("role"),
        "AWSIAMAuth": AWSIAMAuth("role"),
        "LoginResult": LoginResult(token="hvs.pickle-test-token-123456", ttl=60, renewable=True),
        "_TokenState": _TokenState(
            token="hvs.pickle-test-token-123456",
            ttl=60,
            login_ttl=60,
            renewable=True,
            token_type="service",
            refresh_at=40,
            expires_at=60,
        ),
        "VaultClient": VaultClient("https://vault.example.com", auth=TokenAuth("hvs.pickle-x1")),
        "Lease": Lease(
            lease_id="database/creds/etl/pickle-test",
            path="database/creds/etl",
            data={"username": "v-etl-1", "password": password},
            renewable=True,
            duration=60,
            expires_at=60,
            token_expires_at=120,
        ),
        "SecretFields": read_fields({"user": "U", "password": password}, "secret/x", layout),
        "SnowflakeCredentials": parse_secret({"user": "U", "password": password}, "secret/x", layout),
        "LoadedKey": load_private_key(key_text),
    }


def test_objects_holding_secrets_refuse_to_pickle(rsa_key):  # noqa: F811
    """Each object that holds a credential refuses pickling with a TypeError that names
    it and says what to do instead; no pickle with the secret in it is ever made."""
    for name, obj in secret_holders(rsa_key).items():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            with pytest.raises(TypeError, match="cannot be pickled") as info:
                pickle.dumps(obj, protocol)
            assert type(obj).__name__ in str(info.value), name
        if isinstance(obj, VaultClient):
            obj.close()


def test_connection_forwards_only_the_connectors_public_api(world, rsa_key):  # noqa: F811
    """The connection answers the connector's public attributes, and refuses its private
    ones (the decrypted key, the password), except the two or three the connector's own
    write_pandas uses; its cursor does the same. It refuses to pickle."""
    user, path = world.user(key=rsa_key)
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    try:
        assert conn.user == user
        assert conn.session_id
        for private in ("_private_key", "_password", "_rest", "_token", "__dict__x"):
            with pytest.raises(AttributeError):
                getattr(conn, private)
        cursor = conn.cursor()
        assert cursor.execute("select 1").fetchall() == [(1,)]
        with pytest.raises(AttributeError):
            cursor._total_rowcount  # noqa: B018 - one of the raw cursor's internals
        # What the connector's own write_pandas reaches for is still there (no secret).
        # (a dict on connector 4.x, a proxy with get() on 5.x; write_pandas calls get())
        assert callable(conn._session_parameters.get)
        assert callable(cursor._upload)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(conn)
    finally:
        conn.close()


def test_parsed_credentials_of_a_closed_client_are_dropped(world, rsa_key):  # noqa: F811
    """The decrypted key gds_snowflake parsed for a client is dropped once that client is
    closed (at the next connection made with any client), not kept while it lives."""
    _, path = world.user(key=rsa_key)
    client = world.client()
    get_snowflake_connection(path, vault_client=client, **world.connect_kwargs()).close()
    assert client in _stores
    client.close()
    store_for(world.client(), SecretLayout())
    assert client not in _stores
