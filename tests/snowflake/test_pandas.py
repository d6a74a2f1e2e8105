"""pandas with Vault-backed connections and engines, against the Snowflake double.

Works against the double, and tested here: ``pandas.read_sql`` with the engine and with
the connection, ``cursor.fetch_pandas_all()``, ``DataFrame.to_sql`` with the engine, and
``write_pandas`` into an existing table (PUT to a temporary stage, then COPY INTO), also
on a connection whose session expired.

Not supported by the double (fakesnow 0.12), so not shown working here:

- ``write_pandas(..., auto_create_table=True)`` and ``overwrite=True``: both ask
  Snowflake to ``INFER_SCHEMA`` from the staged Parquet file, which fakesnow cannot
  parse (pinned below, so a fakesnow that learns it makes the test say so);
- ``write_pandas(..., database=..., schema=...)``: fakesnow answers a PUT to a
  fully qualified stage without the upload instructions, and the connector fails with
  ``KeyError: 'command'``. Write into the session's current database and schema.

Every write_pandas call here passes ``use_logical_type=True`` (Snowflake's advice for
timestamps): without it, connector 4.x calls pandas' deprecated
``is_datetime64tz_dtype``, whose DeprecationWarning is an error under ``-W error``.

The double adapts two things for write_pandas (see ``gds_snowflake/testing/_double.py``):
the COPY's stage source ``FROM '@"STAGE"'`` becomes ``FROM @"STAGE"``, the form fakesnow
reads, and the PUT's stage info gets the region and signed-header list connector 5.x
requires; the connector and write_pandas run unchanged, on either line.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from snowflake.connector.errors import ProgrammingError
from snowflake.connector.pandas_tools import write_pandas

from gds_snowflake import VaultSnowflakeConnection, get_snowflake_engine
from gds_snowflake.testing import SnowflakeTestUser

pytestmark = pytest.mark.timeout(60)

ORDERS = pd.DataFrame({"ID": [1, 2, 3], "NAME": ["a", "b", "c"], "AMOUNT": [10.5, 99.99, 5.25]})


@pytest.fixture
def user(make_snowflake_user) -> SnowflakeTestUser:
    return make_snowflake_user(database="PANDAS_TESTS", schema="PUBLIC")


@pytest.fixture
def conn(user) -> Iterator[VaultSnowflakeConnection]:
    with user.connect() as connection:
        yield connection


@pytest.fixture
def engine(user) -> Iterator[sa.Engine]:
    engine = get_snowflake_engine(
        user.secret_path, vault_client=user.vault_client, **user.connect_kwargs()
    )
    yield engine
    engine.dispose()


def _create_orders(conn: VaultSnowflakeConnection) -> None:
    conn.cursor().execute(
        "create or replace table orders (id int, name varchar, amount number(10, 2))"
    )


def test_read_sql_with_engine(engine, user):
    """pandas.read_sql with the engine returns a DataFrame (SQLAlchemy lower-cases the names)."""
    frame = pd.read_sql("select 1 as id, 'a' as name", engine)
    assert frame.to_dict("records") == [{"id": 1, "name": "a"}]


def test_read_sql_with_engine_after_idle_expiry(engine, user):
    """read_sql checks a connection out per call, so pre-ping hides an expired session."""
    pd.read_sql("select 1 as x", engine)
    user.expire_sessions()
    assert pd.read_sql("select 2 as x", engine)["x"].tolist() == [2]
    assert user.login_count == 2


def test_read_sql_with_connection(conn):
    """read_sql with the connection works; pandas warns it tests SQLAlchemy and sqlite3 only."""
    with pytest.warns(UserWarning, match="pandas only supports SQLAlchemy connectable"):
        frame = pd.read_sql("select 1 as id, 'a' as name", conn)
    assert frame.to_dict("records") == [{"ID": 1, "NAME": "a"}]


def test_fetch_pandas_all_without_warning(conn):
    """cursor.execute(...).fetch_pandas_all() is the warning-free way with a plain connection."""
    frame = conn.cursor().execute("select 1 as id, 'a' as name").fetch_pandas_all()
    assert frame.to_dict("records") == [{"ID": 1, "NAME": "a"}]


def test_write_pandas_then_read_back(conn, user, engine):
    """write_pandas loads a DataFrame into an existing table; read_sql reads it back."""
    _create_orders(conn)
    success, chunks, rows, _ = write_pandas(conn, ORDERS, "ORDERS", use_logical_type=True)
    assert (success, chunks, rows) == (True, 1, 3)
    back = pd.read_sql("select id, name, amount from orders order by id", engine)
    assert back["id"].tolist() == [1, 2, 3]
    assert back["name"].tolist() == ["a", "b", "c"]
    assert [float(a) for a in back["amount"]] == [10.5, 99.99, 5.25]


def test_write_pandas_after_idle_expiry(conn, user):
    """write_pandas on a connection whose session expired logs in again and loads."""
    _create_orders(conn)
    user.expire_sessions()
    assert write_pandas(conn, ORDERS, "ORDERS", use_logical_type=True)[2] == 3
    assert conn.reconnects == 1
    assert conn.cursor().execute("select count(*) from orders").fetchone() == (3,)


def test_to_sql_with_engine(engine):
    """DataFrame.to_sql through the engine appends rows with SQLAlchemy inserts."""
    with engine.begin() as connection:
        connection.execute(sa.text("create or replace table to_sql_orders (id int, name varchar)"))
    ORDERS[["ID", "NAME"]].rename(columns=str.lower).to_sql(
        "to_sql_orders", engine, if_exists="append", index=False
    )
    assert pd.read_sql("select count(*) as n from to_sql_orders", engine)["n"].tolist() == [3]


def test_write_pandas_auto_create_table_is_not_supported_by_the_double(conn):
    """Pins a limit of the double: auto_create_table needs INFER_SCHEMA, which fakesnow lacks."""
    with pytest.raises(ProgrammingError, match="INFER_SCHEMA"):
        write_pandas(conn, ORDERS, "NEW_ORDERS", auto_create_table=True, use_logical_type=True)
