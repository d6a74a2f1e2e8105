"""get_snowflake_connection end to end: real OpenBao, real connector, the double."""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
import warnings

import pytest

from gds_snowflake import (
    PrivateKeyPassphraseError,
    SnowflakeAuthenticationError,
    SnowflakeConfigError,
    SnowflakeConnectionProvider,
    SnowflakeForkError,
    SnowflakeSecretError,
    SnowflakeTransactionLostError,
    get_snowflake_connection,
)

from .conftest import FORK_SAFE_CONNECTOR, pem

pytestmark = pytest.mark.timeout(60)


def _one(conn) -> object:
    return conn.cursor().execute("select 1").fetchall()


def test_password_login(world):
    """A user and password from Vault open a working connection."""
    user, path = world.user(password="pw-1")
    with get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs()) as conn:
        assert _one(conn) == [(1,)]
    assert world.snowflake.login_count(user) == 1


@pytest.mark.parametrize(
    "form",
    ["pkcs8", "pkcs1", "encrypted", "escaped-newlines", "base64-pem", "base64-der", "ec"],
)
def test_key_pair_login_in_every_stored_form(world, rsa_key, ec_key, form):
    """A private key stored in any common form logs in with key-pair auth."""
    key = ec_key if form == "ec" else rsa_key
    fields: dict[str, str] = {}
    if form == "pkcs1":
        fields["private_key"] = pem(key, fmt="pkcs1")
    elif form == "encrypted":
        fields["private_key"] = pem(key, b"s3cret-phrase")
        fields["private_key_passphrase"] = "s3cret-phrase"
    elif form == "escaped-newlines":
        fields["private_key"] = pem(key).replace("\n", "\\n")
    elif form == "base64-pem":
        fields["private_key"] = base64.b64encode(pem(key).encode()).decode()
    elif form == "base64-der":
        body = "".join(line for line in pem(key).splitlines() if "-----" not in line)
        fields["private_key"] = body
    user, path = world.user(key=key, **fields)
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    assert _one(conn) == [(1,)]
    conn.close()
    assert world.snowflake.login_count(user) == 1


def test_wrong_passphrase_is_typed_error_without_secret(world, rsa_key):
    """A wrong passphrase in Vault is a PrivateKeyPassphraseError naming the path only."""
    _, path = world.user(
        key=rsa_key,
        private_key=pem(rsa_key, b"right-phrase"),
        private_key_passphrase="wrong-phrase",
    )
    with pytest.raises(PrivateKeyPassphraseError) as info:
        get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    assert path in str(info.value) and "wrong-phrase" not in str(info.value)


def test_idle_expiry_reconnects_transparently(world, renewal_failure_body):
    """After an idle-notebook expiry the next statement just works: one extra login, no Vault read."""
    user, path = world.user(password="pw-idle")
    client = world.client()
    conn = get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    cursor = conn.cursor()
    assert cursor.execute("select 1").fetchall() == [(1,)]
    mark = world.vault.mark()
    world.snowflake.expire_sessions(user)
    assert cursor.execute("select 2").fetchall() == [(2,)]
    assert conn.cursor().execute("select 3").fetchall() == [(3,)]
    assert world.snowflake.login_count(user) == 2
    assert conn.reconnects == 1
    assert world.secret_reads(mark, path) == 0
    conn.close()


def test_password_rotated_in_vault_and_snowflake(world, renewal_failure_body):
    """A password rotated in both places is picked up after the session expires."""
    user, path = world.user(password="pw-old")
    client = world.client()
    conn = get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    _one(conn)
    world.snowflake.set_password(user, "pw-new")
    world.vault.kv_put("secret", path.split("/", 1)[1], {"account": world.snowflake.account, "user": user, "password": "pw-new"})
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    assert _one(conn) == [(1,)]
    assert world.secret_reads(mark, path) == 1
    assert world.snowflake.failed_login_count(user) == 1
    assert world.snowflake.login_count(user) == 2
    conn.close()


def test_new_connection_after_rotation_reads_vault_again(world):
    """A new connection whose cached password was rotated reads Vault once and succeeds."""
    user, path = world.user(password="pw-a")
    client = world.client()
    get_snowflake_connection(path, vault_client=client, **world.connect_kwargs()).close()
    world.snowflake.set_password(user, "pw-b")
    world.vault.kv_put("secret", path.split("/", 1)[1], {"account": world.snowflake.account, "user": user, "password": "pw-b"})
    conn = get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    assert _one(conn) == [(1,)]
    conn.close()


def test_key_rotated(world, rsa_key, other_rsa_key):
    """A key rotated in Snowflake and Vault is picked up after the session expires."""
    user, path = world.user(key=rsa_key)
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    _one(conn)
    world.snowflake.set_public_key(user, other_rsa_key.public_key())
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "private_key": pem(other_rsa_key)},
    )
    world.snowflake.expire_sessions(user)
    assert _one(conn) == [(1,)]
    assert world.snowflake.failed_login_count(user) == 1
    conn.close()


def test_vault_token_expired_meanwhile(world):
    """When the Vault token and the cache expired while idle, reconnecting logs in to Vault again."""
    user, path = world.user(password="pw-tok")
    client = world.client(token_ttl="2s", token_max_ttl="2s", cache_ttl=1)
    conn = get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    _one(conn)
    time.sleep(2.2)
    world.snowflake.set_password(user, "pw-tok-2")
    world.vault.kv_put("secret", path.split("/", 1)[1], {"account": world.snowflake.account, "user": user, "password": "pw-tok-2"})
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    assert _one(conn) == [(1,)]
    assert len(world.vault.requests_since(mark, "auth/approle/login")) == 1
    conn.close()


def test_revoked_for_good_is_clear_bounded_error(world):
    """Credentials revoked for good give a clear error after at most two login attempts."""
    user, path = world.user(password="pw-revoked")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    _one(conn)
    world.snowflake.set_password(user, "nobody-knows-this")
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    with pytest.raises(SnowflakeAuthenticationError) as info:
        _one(conn)
    message = str(info.value)
    assert path in message and user in message
    assert "pw-revoked" not in message and "nobody-knows-this" not in message
    assert 1 <= world.snowflake.failed_login_count(user) <= 2
    assert world.secret_reads(mark, path) == 1
    # A further attempt is again bounded: no retry storm against a locked account.
    with pytest.raises(SnowflakeAuthenticationError):
        _one(conn)
    assert world.snowflake.failed_login_count(user) <= 4
    conn.close()


def test_transient_login_failures_are_retried(world, caplog):
    """503s at login are retried with the shared RetryPolicy, logging a WARNING."""
    caplog.set_level("WARNING", logger="gds_vault.retry")
    user, path = world.user(password="pw-503")
    client = world.client()
    world.snowflake.fail_next_logins(3)
    conn = get_snowflake_connection(path, vault_client=client, **world.connect_kwargs())
    assert _one(conn) == [(1,)]
    assert "Retrying snowflake.login" in caplog.text
    conn.close()


def test_many_threads_one_provider(world):
    """16 threads sharing a provider all connect; Vault is logged in to and read once."""
    user, path = world.user(password="pw-threads")
    client = world.client()
    provider = SnowflakeConnectionProvider(path, vault_client=client, **world.connect_kwargs())
    mark = world.vault.mark()
    barrier = threading.Barrier(16)
    results, errors = [], []

    def work() -> None:
        barrier.wait()
        try:
            with provider.connect() as conn:
                results.append(conn.cursor().execute("select 7").fetchone())
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == [(7,)] * 16
    assert len(world.vault.requests_since(mark, "auth/approle/login")) == 1
    assert world.secret_reads(mark, path) == 1
    assert world.snowflake.login_count(user) == 16


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(not FORK_SAFE_CONNECTOR, reason="connector 5.x cannot run after fork")
def test_forked_child_gets_its_own_session(world):
    """A connection used in a forked child opens its own session; the parent's keeps working."""
    user, path = world.user(password="pw-fork")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    _one(conn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the case under test
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            code = 0 if conn.cursor().execute("select 5").fetchall() == [(5,)] else 2
            conn.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert world.snowflake.login_count(user) == 2
    assert _one(conn) == [(1,)]  # the child did not log the parent out
    assert conn.reconnects == 0
    conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(FORK_SAFE_CONNECTOR, reason="connector 4.x works after fork (test above)")
def test_forked_child_is_refused_at_once_on_connector_5(world):
    """On 5.x a forked child's login fails at once with SnowflakeForkError instead of hanging."""
    from gds_snowflake._connector import NATIVE_CORE_MODULE

    user, path = world.user(password="pw-fork5")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    _one(conn)
    assert NATIVE_CORE_MODULE in sys.modules  # what the fork check looks for
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the case under test
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            conn.cursor().execute("select 5")
        except SnowflakeForkError as exc:
            code = 0 if "spawn" in str(exc) else 3
        except BaseException:
            code = 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert world.snowflake.login_count(user) == 1  # the child never reached Snowflake
    assert _one(conn) == [(1,)]
    conn.close()
    conn.close()


def test_transaction_lost_is_not_rerun(world):
    """With autocommit off, an expiry mid-transaction reconnects but does not re-run."""
    user, path = world.user(password="pw-txn")
    conn = get_snowflake_connection(
        path, vault_client=world.client(), autocommit=False, **world.connect_kwargs()
    )
    cursor = conn.cursor()
    cursor.execute("select 1")
    world.snowflake.expire_sessions(user)
    with pytest.raises(SnowflakeTransactionLostError, match="run the whole transaction again"):
        cursor.execute("select 2")
    assert cursor.execute("select 3").fetchall() == [(3,)]
    conn.close()


def test_autocommit_switched_off_later_is_a_transaction_too(world):
    """After conn.autocommit(False), expiry in a transaction is not re-run; new sessions keep it."""
    user, path = world.user(password="pw-autocommit", database="AC_DB", schema="PUBLIC")
    conn = get_snowflake_connection(path, vault_client=world.client(), **world.connect_kwargs())
    cursor = conn.cursor()
    cursor.execute("create or replace table ac_rows (id int)")
    conn.autocommit(False)
    cursor.execute("insert into ac_rows values (1)")
    world.snowflake.expire_sessions(user)
    with pytest.raises(SnowflakeTransactionLostError):
        cursor.execute("insert into ac_rows values (2)")
    cursor.execute("insert into ac_rows values (3)")  # the new session: autocommit still off
    conn.rollback()
    assert cursor.execute("select count(*) from ac_rows").fetchall() == [(0,)]
    conn.close()


def test_explicit_arguments_override_secret_and_environment(world, monkeypatch):
    """Explicit arguments beat SNOWFLAKE_* variables, which beat the secret's fields."""
    _, path = world.user(password="pw-args", warehouse="SECRET_WH", role="SECRET_ROLE", database="SECRET_DB")
    monkeypatch.setenv("SNOWFLAKE_WAREHOUSE", "ENV_WH")
    monkeypatch.setenv("SNOWFLAKE_ROLE", "ENV_ROLE")
    provider = SnowflakeConnectionProvider(path, vault_client=world.client(), role="ARG_ROLE")
    kwargs = provider.connect_arguments(provider.credentials())
    assert kwargs["role"] == "ARG_ROLE"
    assert kwargs["warehouse"] == "ENV_WH"
    assert kwargs["database"] == "SECRET_DB"
    assert kwargs["password"] == "pw-args"


def test_secret_path_from_environment(world, monkeypatch):
    """SNOWFLAKE_VAULT_PATH names the secret when no path is passed."""
    _, path = world.user(password="pw-env")
    monkeypatch.setenv("SNOWFLAKE_VAULT_PATH", path)
    with get_snowflake_connection(vault_client=world.client(), **world.connect_kwargs()) as conn:
        assert _one(conn) == [(1,)]


def test_no_secret_path_is_config_error():
    """Without a path or SNOWFLAKE_VAULT_PATH the error says how to give one."""
    with pytest.raises(SnowflakeConfigError, match="SNOWFLAKE_VAULT_PATH"):
        get_snowflake_connection()


def test_password_argument_is_refused():
    """Credentials passed as arguments are refused: they belong in Vault."""
    with pytest.raises(SnowflakeConfigError, match="Vault"):
        get_snowflake_connection("secret/snowflake/x", password="pw")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"password": "pw"}, "no 'user'"),
        ({"user": "U"}, "none of .private_key., .token. or .password."),
        ({"user": "U", "password": "pw", "warehouse": "x" * 70000}, "characters long"),
    ],
)
def test_incomplete_secret_is_typed_error(world, fields, match):
    """A secret without a user or credential, or with absurd values, is a clear error."""
    path = f"snowflake/bad-{abs(hash(str(fields))) % 10**8}"
    world.vault.kv_put("secret", path, fields)
    with pytest.raises(SnowflakeSecretError, match=match) as info:
        get_snowflake_connection(f"secret/{path}", vault_client=world.client(), **world.connect_kwargs())
    assert "pw" not in str(info.value).replace("password", "")


def test_reprs_show_no_secret(world):
    """Connection, provider and credential reprs show the user and path, never the password."""
    user, path = world.user(password="pw-repr-secret")
    provider = SnowflakeConnectionProvider(path, vault_client=world.client(), **world.connect_kwargs())
    conn = provider.connect()
    for text in (repr(conn), repr(provider), repr(provider.credentials())):
        assert "pw-repr-secret" not in text
    assert user in repr(conn)
    conn.close()
