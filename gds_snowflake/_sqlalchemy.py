"""get_snowflake_engine(): a SQLAlchemy engine whose connections log in with Vault credentials.

The engine is snowflake-sqlalchemy's dialect with an empty URL (``snowflake://``): no
credential is in the URL, the engine's repr or its logs. Every time the pool opens a
DBAPI connection, a ``do_connect`` listener asks a :class:`SnowflakeConnectionProvider`
for one, so each new pooled connection takes its credentials from Vault (from the Vault
client's cache while it is fresh; read again when Snowflake rejects them, as after a
rotation) and its logins follow the shared ``RetryPolicy``.

Pooled connections are the connector's own ``SnowflakeConnection`` objects, not the
re-authenticating wrapper: SQLAlchemy manages transactions on them (autocommit off, as
snowflake-sqlalchemy does), and the pool replaces a connection whose session is gone.

- ``pool_pre_ping`` is on by default: at checkout a ``select 1`` finds a session that
  expired while the connection sat in the pool, and the pool replaces it (and the
  connections pooled before it, which have usually expired alike) before the caller
  runs anything.
- A ``handle_error`` listener tells SQLAlchemy that Snowflake's "session gone" errors
  (390112, 390114, ...; see ``_classify``) are disconnects. A statement that meets one
  on a checked-out connection still fails (SQLAlchemy cannot know whether a
  transaction's earlier statements are lost), with ``connection_invalidated`` true, and
  the next checkout gets a new session. Only that connection is dropped.
- After ``os.fork()`` (Airflow, multiprocessing) a pooled connection made in the parent
  is not used in the child: right after the fork, in the child, every engine made here
  gets a new, empty pool with ``engine.dispose(close=False)``, as SQLAlchemy's pooling
  guide recommends (the parent's connections are left alone: closing them would log
  the parent's sessions out), so the child's first checkout opens its own connection.
  That happens before the pool's pre-ping, which would otherwise ping the parent's
  session from the child (and hang there with connector 5.x, whose native core cannot
  run after a fork: the child's own login then raises ``SnowflakeForkError`` at once).

``pandas.read_sql(sql, engine)`` and ``DataFrame.to_sql(..., engine)`` check a
connection out per call, so with pre-ping they survive idle expiry without any retry
in user code.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gds_snowflake._classify import errno_of, is_session_gone
from gds_snowflake._provider import SnowflakeConnectionProvider

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gds_vault import VaultClient

logger = logging.getLogger(__name__)

ENGINE_URL = "snowflake://"  # no account, user or password: they come from Vault per connection
_INSTALL_HINT = "pip install 'gds-vault-snowflake[sqlalchemy]'"
_engines: weakref.WeakSet[Any] = weakref.WeakSet()  # for the fork hook below


def get_snowflake_engine(
    secret_path: str | None = None,
    *,
    vault_client: VaultClient | None = None,
    account: str | None = None,
    user: str | None = None,
    role: str | None = None,
    warehouse: str | None = None,
    database: str | None = None,
    schema: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
    **connect_kwargs: Any,
) -> Engine:
    """A SQLAlchemy engine for Snowflake whose pooled connections get credentials from Vault.

    Creating the engine opens no connection and reads nothing from Vault; the first
    ``engine.connect()`` does. Configuration errors (no secret path, a password passed
    as an argument) are raised here, at once.

    Args:
        secret_path: The Vault secret (default: SNOWFLAKE_VAULT_PATH).
        vault_client: A VaultClient; None means the process-wide default client.
        account, user, role, warehouse, database, schema: Override the secret's fields
            (and the SNOWFLAKE_* variables), as for get_snowflake_connection.
        engine_options: Keyword arguments for ``sqlalchemy.create_engine`` (pool_size,
            pool_recycle, echo, isolation_level, ...). ``pool_pre_ping`` defaults to True.
        **connect_kwargs: Passed to snowflake.connector.connect for every new connection.

    Returns:
        A ``sqlalchemy.engine.Engine`` using snowflake-sqlalchemy's dialect.

    Raises:
        ImportError: SQLAlchemy or snowflake-sqlalchemy is not installed (install the
            ``sqlalchemy`` extra).
        SnowflakeConfigError: No secret path, or a credential passed as an argument.
    """
    try:
        import sqlalchemy  # optional and heavy: only when an engine is made
        from snowflake.sqlalchemy import snowdialect  # noqa: F401 - the dialect
        from sqlalchemy import event
    except ImportError as missing:
        raise ImportError(
            f"get_snowflake_engine needs SQLAlchemy and snowflake-sqlalchemy: {_INSTALL_HINT} "
            f"({missing})"
        ) from missing

    provider = SnowflakeConnectionProvider(
        secret_path,
        vault_client=vault_client,
        account=account,
        user=user,
        role=role,
        warehouse=warehouse,
        database=database,
        schema=schema,
        **connect_kwargs,
    )
    options = {"pool_pre_ping": True, **(engine_options or {})}
    engine = sqlalchemy.create_engine(ENGINE_URL, **options)

    @event.listens_for(engine, "do_connect")
    def _connect_with_vault_credentials(
        dialect: Any, connection_record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> Any:
        # cparams is what the dialect derived from the URL: {"autocommit": False}, so
        # SQLAlchemy, not the session default, decides when to commit.
        return _open(provider, cparams)

    @event.listens_for(engine, "handle_error")
    def _session_gone_is_a_disconnect(context: Any) -> None:
        if is_session_gone(context.original_exception):
            logger.info(
                "Snowflake session for %s is gone (errno %s); the pool replaces the connection",
                provider.secret_path,
                errno_of(context.original_exception),
            )
            context.is_disconnect = True
            # A session expires on its own; the other pooled sessions may be fine (and the
            # pre-ping checks them at checkout anyway).
            context.invalidate_pool_on_disconnect = False

    _engines.add(engine)
    return engine


def _open(provider: SnowflakeConnectionProvider, cparams: Mapping[str, Any]) -> Any:
    """A plain connector connection with current credentials (Vault read again if rejected)."""
    return provider.open_raw(**cparams)


def _fresh_pools_in_child() -> None:
    # The parent's pooled connections stay the parent's (see the module docstring).
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pools_in_child)
