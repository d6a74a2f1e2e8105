"""Programmatic access tokens and OAuth tokens from Vault, end to end on both connector lines.

Parsing is checked without servers; logins, rotation, revocation and expiry against
OpenBao and the Snowflake double with the real connector. The suite-wide hygiene fixture
fails any of these tests if a token shows in a log record, an error or a repr.
"""

from __future__ import annotations

import logging

import pytest

from gds_snowflake import (
    SecretLayout,
    SnowflakeAuthenticationError,
    SnowflakeConnectionProvider,
    SnowflakeSecretError,
    get_snowflake_connection,
)
from gds_snowflake._credentials import parse_secret, read_fields
from gds_vault import redact
from tests.reliability.hygiene import register

from .conftest import pem

pytestmark = pytest.mark.timeout(60)

PATH = "secret/snowflake/etl"
TOKEN = "pat-tokens-test-0123456789abcdefghijklmnop"  # made up; a PAT is one line of text
OTHER = "pw-tokens-test-do-not-show"
register(TOKEN, OTHER)


def _one(conn) -> object:
    return conn.cursor().execute("select 1").fetchall()


# -- the secret's fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("authenticator", "sent", "method"),
    [
        (None, "PROGRAMMATIC_ACCESS_TOKEN", "programmatic access token"),
        ("programmatic_access_token", "PROGRAMMATIC_ACCESS_TOKEN", "programmatic access token"),
        ("oauth", "OAUTH", "OAuth token"),
        ("OAuth", "OAUTH", "OAuth token"),
    ],
)
def test_token_becomes_authenticator_and_token(authenticator, sent, method):
    """A token is sent as token= with the authenticator its kind needs; no password."""
    secret = {"user": "ETL", "account": "acme", "token": TOKEN, "password": OTHER}
    if authenticator is not None:
        secret["authenticator"] = authenticator
    credentials = parse_secret(secret, PATH, SecretLayout())
    assert credentials.method == method
    kwargs = credentials.connect_kwargs()
    assert kwargs["authenticator"] == sent
    assert kwargs["token"] == TOKEN
    assert "password" not in kwargs
    assert credentials.password is None
    assert TOKEN not in repr(credentials)


def test_key_pair_wins_over_token_and_token_over_password(rsa_key):
    """The order is key pair, then token, then password; an unused token is not checked."""
    key = pem(rsa_key)
    with_key = parse_secret(
        {"user": "ETL", "private_key": key, "token": "two words", "password": OTHER},
        PATH,
        SecretLayout(),
    )
    assert with_key.method == "key pair"
    assert with_key.token is None
    assert "token" not in with_key.connect_kwargs()
    assert "authenticator" not in with_key.connect_kwargs()
    with_token = parse_secret({"user": "ETL", "token": TOKEN, "password": OTHER}, PATH, SecretLayout())
    assert with_token.method == "programmatic access token"
    password_only = parse_secret({"user": "ETL", "password": OTHER}, PATH, SecretLayout())
    assert password_only.method == "password"
    assert password_only.token_kind is None


def test_field_names_follow_the_layout():
    """SecretLayout renames the token and authenticator fields as it does the others."""
    layout = SecretLayout(token="snowflake_pat", authenticator="auth_kind")
    credentials = parse_secret(
        {"user": "ETL", "snowflake_pat": TOKEN, "auth_kind": "oauth", "token": "ignored"},
        PATH,
        layout,
    )
    assert credentials.method == "OAuth token"
    assert credentials.connect_kwargs()["token"] == TOKEN


def test_surrounding_whitespace_is_dropped_and_the_token_registered():
    """The newline `token=@pat.txt` keeps from a file is dropped, as for every field; the
    token is registered with gds_vault's redaction filter when read."""
    token = "pat-tokens-registered-0f1e2d3c4b5a69788796a5b4"
    register(token)
    fields = read_fields({"user": "ETL", "token": f"  {token}\n"}, PATH, SecretLayout())
    assert fields.token == token
    assert token not in redact(f"login with {token} failed")


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ({"token": ""}, "Field 'token' of secret secret/snowflake/etl is empty"),
        ({"token": " \n "}, "is empty"),
        ({"token": "", "password": OTHER}, "or remove the field to log in with a key pair or"),
        ({"token": TOKEN[:20] + "\n" + TOKEN[20:]}, "contains a line break at character 21"),
        ({"token": "Bearer " + TOKEN}, "contains a space at character 7"),
        ({"token": TOKEN[:5] + "\t" + TOKEN[5:]}, "contains whitespace at character 6"),
        ({"token": TOKEN[:3] + "\x1b" + TOKEN[3:]}, "a control or non-ASCII character"),
        ({"token": TOKEN[:3] + "é" + TOKEN[3:]}, "a control or non-ASCII character"),
        ({"token": TOKEN, "authenticator": "externalbrowser"}, "says 'externalbrowser'"),
        ({"token": TOKEN, "authenticator": "snowflake_jwt"}, "takes 'oauth'"),
        ({"authenticator": "oauth", "password": OTHER}, "says 'oauth' but the secret has no"),
        ({"token": ["a", "list"]}, "store it as a string"),
    ],
)
def test_unusable_token_fields_are_typed_errors(secret, says):
    """An empty token, whitespace or odd characters in it, an unknown authenticator or one
    without a token: a SnowflakeSecretError that says what to fix, never the token."""
    with pytest.raises(SnowflakeSecretError) as info:
        parse_secret({"user": "ETL", **secret}, PATH, SecretLayout())
    message = str(info.value)
    assert says in message
    assert "vault kv patch secret/snowflake/etl" in message
    assert TOKEN[5:25] not in message
    assert OTHER not in message


# -- against the double ----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "method"), [("pat", "programmatic access token"), ("oauth", "OAuth token")])
def test_token_login_logs_which_credential(world, caplog, kind, method):
    """A PAT or OAuth token from Vault logs in; the INFO line names the kind, not the value."""
    caplog.set_level(logging.INFO, logger="gds_snowflake")
    user, path, token = world.token_user(kind)
    with get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs()) as conn:
        assert _one(conn) == [(1,)]
    assert f"Connected to Snowflake as {user} ({method}) with credentials from {path}" in caplog.text
    assert token not in caplog.text
    assert world.snowflake.login_count(user) == 1


def test_idle_expiry_reconnects_with_the_cached_token(world):
    """An expired session logs in again with the token from the Vault cache: no Vault read,
    no refused login, the statement re-run."""
    user, path, _ = world.token_user("pat")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    cursor = conn.cursor()
    assert cursor.execute("select 1").fetchall() == [(1,)]
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    assert cursor.execute("select 2").fetchall() == [(2,)]
    assert conn.reconnects == 1
    assert world.secret_reads(mark, path) == 0
    assert world.snowflake.failed_login_count(user) == 0
    conn.close()


def test_rotated_pat_is_read_again_from_vault(world):
    """PAT rotated in Snowflake and Vault, session expired: the cached token is refused once,
    Vault is read once, the new token logs in, the statement is re-run."""
    user, path, _ = world.token_user("pat")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    assert _one(conn) == [(1,)]
    new = world.snowflake.rotate_pat(user)
    world.vault.kv_put(
        "secret", path.split("/", 1)[1], {"account": world.snowflake.account, "user": user, "token": new}
    )
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    assert conn.cursor().execute("select 3").fetchall() == [(3,)]
    assert world.secret_reads(mark, path) == 1
    assert world.snowflake.failed_login_count(user) == 1
    conn.close()


@pytest.mark.parametrize("fault", ["revoked", "expired", "rotated-in-snowflake-only"])
def test_refused_pat_is_an_authentication_error_with_pat_advice(world, fault):
    """A PAT Snowflake no longer takes, while Vault still holds it: one refused login, one
    fresh Vault read, then SnowflakeAuthenticationError naming what to check."""
    user, path, token = world.token_user("pat")
    {
        "revoked": world.snowflake.revoke_pat,
        "expired": world.snowflake.expire_pat,
        "rotated-in-snowflake-only": world.snowflake.rotate_pat,
    }[fault](user)
    client = world.client()
    with pytest.raises(SnowflakeAuthenticationError) as info:
        get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    message = str(info.value)
    assert f"Snowflake rejected the programmatic access token credentials of user {user}" in message
    assert "errno 394400" in message
    assert "expired, been rotated or removed" in message
    assert "network policy" in message
    assert f"SHOW USER PROGRAMMATIC ACCESS TOKENS FOR USER {user}" in message
    assert f"vault kv patch {path} token=@pat.txt" in message
    assert token not in message
    assert world.snowflake.failed_login_count(user) == 1
    assert client.stats.secret_reads == 2  # the first read and the one fresh read


def test_oauth_token_refreshed_in_vault_is_picked_up(world):
    """The OAuth token expired and its refresher wrote a new one to Vault: one refused
    login, one Vault read, and the connection goes on with the new token."""
    user, path, _ = world.token_user("oauth")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    assert _one(conn) == [(1,)]
    world.snowflake.expire_oauth_tokens(user)
    new = world.snowflake.issue_oauth_token(user)
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "token": new, "authenticator": "oauth"},
    )
    world.snowflake.expire_sessions(user)
    assert conn.cursor().execute("select 4").fetchall() == [(4,)]
    assert world.snowflake.failed_login_count(user) == 1
    conn.close()


@pytest.mark.parametrize(
    ("fault", "errno", "state"),
    [("expired", 390318, "has expired"), ("revoked", 390303, "is not valid for this account")],
)
def test_refused_oauth_token_says_whether_it_expired(world, fault, errno, state):
    """An OAuth token nothing refreshed: SnowflakeAuthenticationError saying it expired (or
    is not valid) and that its refresher, not this library, keeps it fresh."""
    user, path, token = world.token_user("oauth")
    if fault == "expired":
        world.snowflake.expire_oauth_tokens(user)
    else:
        world.snowflake.revoke_oauth_tokens(user)
    with pytest.raises(SnowflakeAuthenticationError) as info:
        get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    message = str(info.value)
    assert f"errno {errno}" in message
    assert f"The OAuth access token in {path} {state}" in message
    assert "whatever refreshes it in Vault" in message
    assert token not in message


def test_sqlalchemy_style_open_raw_logs_in_with_a_pat(world):
    """open_raw (what pools use) logs in with the token too."""
    user, path, _ = world.token_user("pat")
    provider = SnowflakeConnectionProvider(path, vault_client=world.client(), **world.connect_kwargs())
    raw = provider.open_raw()
    try:
        assert raw.cursor().execute("select 5").fetchall() == [(5,)]
    finally:
        raw.close()
    assert world.snowflake.login_count(user) == 1
