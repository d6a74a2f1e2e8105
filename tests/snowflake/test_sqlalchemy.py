"""get_snowflake_engine: SQLAlchemy's pool, credentials from Vault per connection, the double."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from gds_snowflake import SnowflakeConfigError, SnowflakeForkError, get_snowflake_engine
from gds_snowflake.testing import SnowflakeTestUser

from .conftest import FORK_SAFE_CONNECTOR, expired_statement_errno

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def engine_for(make_snowflake_user) -> Iterator[Callable[..., tuple[sa.Engine, SnowflakeTestUser]]]:
    """Make (engine, user) pairs against the double; every engine is disposed afterwards."""
    engines: list[sa.Engine] = []

    def make(
        user: SnowflakeTestUser | None = None, **engine_options
    ) -> tuple[sa.Engine, SnowflakeTestUser]:
        user = user or make_snowflake_user(database="SA_TESTS", schema="PUBLIC")
        engine = get_snowflake_engine(
            user.secret_path,
            vault_client=user.vault_client,
            engine_options=engine_options,
            **user.connect_kwargs(),
        )
        engines.append(engine)
        return engine, user

    yield make
    for engine in engines:
        engine.dispose()


def _reads(user: SnowflakeTestUser, mark: int) -> int:
    mount, path = user.secret_path.split("/", 1)
    return len(user.vault.requests_since(mark, f"{mount}/data/{path}"))


def _scalar(engine: sa.Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_engine_connects_lazily_without_credentials_in_url(engine_for):
    """Making the engine logs in nowhere; the first connect reads Vault and logs in once."""
    engine, user = engine_for()
    assert user.login_count == 0
    assert str(engine.url) == "snowflake://"
    assert user.secret["password"] not in repr(engine) + str(engine.url)
    assert _scalar(engine, "select 41 + 1") == 42
    assert _scalar(engine, "select 1") == 1  # the pooled connection again: no new login
    assert user.login_count == 1


def test_key_pair_user(engine_for, make_snowflake_user):
    """A key-pair secret works through the engine too (the key goes to the connector as DER)."""
    engine, _ = engine_for(make_snowflake_user(key="ec"))
    assert _scalar(engine, "select 1") == 1


def test_pre_ping_replaces_a_connection_whose_session_expired(engine_for, renewal_failure_body):
    """A pooled connection whose session expired in the pool is replaced at checkout, unseen."""
    engine, user = engine_for()
    assert _scalar(engine, "select 1") == 1
    user.expire_sessions()
    mark = user.vault.mark()
    assert _scalar(engine, "select 2") == 2
    assert user.login_count == 2
    assert _reads(user, mark) == 0  # credentials still valid: the Vault client's cache served them


def test_expiry_while_checked_out_invalidates_only_that_connection(
    engine_for, renewal_failure_body
):
    """On a checked-out connection an expired session is a disconnect; the next checkout works."""
    engine, user = engine_for()
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
        user.expire_sessions()
        with pytest.raises(sa.exc.DBAPIError) as info:
            conn.execute(sa.text("select 2"))
        assert info.value.connection_invalidated
        assert info.value.orig.errno == expired_statement_errno(renewal_failure_body)
    assert _scalar(engine, "select 3") == 3
    assert user.login_count == 2


def test_rotated_password_is_used_by_the_next_new_pooled_connection(engine_for):
    """After a rotation a new pooled connection is rejected once, reads Vault again, logs in."""
    engine, user = engine_for()
    with engine.connect() as first:
        first.execute(sa.text("select 1"))
        user.rotate_password()
        mark = user.vault.mark()
        with engine.connect() as second:  # the pool opens a second connection
            assert second.execute(sa.text("select 2")).scalar() == 2
        assert first.execute(sa.text("select 3")).scalar() == 3  # its session is unaffected
    assert (user.login_count, user.failed_login_count) == (2, 1)
    assert _reads(user, mark) == 1


def test_rotation_then_expiry_is_handled_at_checkout(engine_for):
    """Rotation, then expiry: pre-ping replaces the connection, which uses the new password."""
    engine, user = engine_for(pool_size=1)
    assert _scalar(engine, "select 1") == 1
    user.rotate_password()
    user.expire_sessions()
    assert _scalar(engine, "select 2") == 2
    assert (user.login_count, user.failed_login_count) == (2, 1)


def test_transactions_are_sqlalchemys(engine_for):
    """Connections run with autocommit off, as snowflake-sqlalchemy's: rollback undoes."""
    engine, _ = engine_for()
    with engine.begin() as conn:
        conn.execute(sa.text("create or replace table sa_tx (id int)"))
    with engine.connect() as conn:
        conn.execute(sa.text("insert into sa_tx values (1)"))
        conn.rollback()
        conn.execute(sa.text("insert into sa_tx values (2)"))
        conn.commit()
    assert _scalar(engine, "select listagg(id, ',') from sa_tx") == "2"


def test_engine_options_pass_through(engine_for):
    """engine_options reach create_engine; pool_pre_ping is on unless turned off."""
    engine, _ = engine_for()
    assert engine.pool._pre_ping is True
    engine, _ = engine_for(pool_pre_ping=False, pool_size=2)
    assert engine.pool._pre_ping is False
    assert engine.pool.size() == 2


def test_configuration_errors_are_raised_when_the_engine_is_made():
    """A password argument or a missing path fails at create time, before any connection."""
    with pytest.raises(SnowflakeConfigError, match="password"):
        get_snowflake_engine("secret/snowflake/etl", password="nope")
    with pytest.raises(SnowflakeConfigError, match="SNOWFLAKE_VAULT_PATH"):
        get_snowflake_engine()


def test_missing_extra_names_it(monkeypatch):
    """Without snowflake-sqlalchemy the ImportError says which extra to install."""
    monkeypatch.setitem(sys.modules, "snowflake.sqlalchemy", None)
    with pytest.raises(ImportError, match=r"gds-vault-snowflake\[sqlalchemy\]"):
        get_snowflake_engine("secret/snowflake/etl")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(not FORK_SAFE_CONNECTOR, reason="connector 5.x cannot run after fork")
def test_forked_child_opens_its_own_connection(engine_for):
    """A child forked with a pooled connection opens its own; the parent's session lives on."""
    engine, user = engine_for(pool_size=1)
    with engine.connect() as conn:
        parent_session = conn.connection.dbapi_connection.session_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the case here
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            with engine.connect() as conn:
                own = conn.connection.dbapi_connection.session_id != parent_session
                code = 0 if own and conn.execute(sa.text("select 5")).scalar() == 5 else 2
            engine.dispose()  # closes the child's connection only
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert user.login_count == 2
    with engine.connect() as conn:  # the parent's pooled session was not logged out
        assert conn.connection.dbapi_connection.session_id == parent_session
        assert conn.execute(sa.text("select 6")).scalar() == 6
    assert user.login_count == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(FORK_SAFE_CONNECTOR, reason="connector 4.x works after fork (test above)")
def test_forked_child_is_refused_at_once_on_connector_5(engine_for):
    """On 5.x the child's checkout fails at once with SnowflakeForkError (no ping of the
    parent's session, no hang); the parent's pooled session lives on."""
    engine, user = engine_for(pool_size=1)
    with engine.connect() as conn:
        parent_session = conn.connection.dbapi_connection.session_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the case here
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            with engine.connect():
                code = 2
        except SnowflakeForkError:
            code = 0
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.session_id == parent_session
        assert conn.execute(sa.text("select 6")).scalar() == 6
    assert user.login_count == 1
