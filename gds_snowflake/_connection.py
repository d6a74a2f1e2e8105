"""A Snowflake connection that logs in again when its session or credentials expire.

:class:`VaultSnowflakeConnection` wraps a real ``snowflake.connector`` connection and
forwards everything to it. Its cursors catch the errors that mean "the session is gone"
(see ``_classify``), have the connection log in again (reading Vault again when Snowflake
rejects the credentials), and re-run the statement, a bounded number of times. A
statement is re-run only when it failed before executing: these errors come from the
session check that precedes execution.

In a transaction (autocommit off, statements since the last commit or rollback) the
connection is re-opened but the statement is not re-run, since the transaction's
earlier work is gone; :class:`SnowflakeTransactionLostError` says so.

After ``os.fork()`` the child does not touch the parent's session (closing it there
would log the parent out): on first use it opens its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from gds_snowflake._classify import errno_of, is_session_gone
from gds_snowflake._errors import SnowflakeTransactionLostError

logger = logging.getLogger(__name__)

MAX_STATEMENT_RERUNS = 2  # re-runs of one statement after re-authentication

# Forwarding stops at the connector's public API: its private attributes hold the
# password, the decrypted private key and tokens (``_password``, ``_private_key``...).
# The exceptions are the private names that the connector's own helpers and Snowpark use
# on the object they are given (snowflake.connector.pandas_tools.write_pandas, and
# snowflake.snowpark's ServerConnection and telemetry, for Session(connection=...)),
# none of which is a credential.
_CONNECTION_INTERNALS_FOR_HELPERS = frozenset({"_session_parameters", "_telemetry", "_paramstyle"})
_CURSOR_INTERNALS_FOR_HELPERS = frozenset(
    {
        "_upload",
        "_upload_stream",
        "_download",
        "_download_stream",
        "_log_telemetry_job_data",
        "_query_result_format",
        "_request_id",
    }
)


def _forwarded(name: str, allowed: frozenset[str]) -> bool:
    return not name.startswith("_") or name in allowed


class VaultSnowflakeConnection:
    """Behaves like ``snowflake.connector.SnowflakeConnection``; survives expiry.

    Made by :func:`get_snowflake_connection` / :class:`SnowflakeConnectionProvider`;
    ``opener`` opens a raw connection with current credentials from Vault. It forwards the
    connector's public API only (never ``_password`` or ``_private_key``) and refuses to
    be pickled.
    """

    def __init__(self, opener: Callable[[], Any], *, describe: str, autocommit: bool | None):
        self._open = opener
        self._describe = describe  # "user X from secret P", for logs and errors
        self._autocommit = autocommit
        self._autocommit_set = False  # autocommit() was called: re-apply to new sessions
        self._lock = threading.Lock()
        self._raw = opener()
        self._pid = os.getpid()
        self._generation = 0
        self._closed = False
        self._in_transaction = False
        self._orphans: list[Any] = []  # a parent's connections, kept alive after fork
        #: How many times this connection logged in again (diagnostics, tests).
        self.reconnects = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VaultSnowflakeConnection {self._describe}, {state}, reconnects={self.reconnects}>"

    # -- the live raw connection -----------------------------------------------------------
    @property
    def raw(self) -> Any:
        """The underlying snowflake.connector connection for this process."""
        if self._pid != os.getpid():
            self._after_fork()
        return self._raw

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._orphans.append(self._raw)  # never closed here: that would end the parent's session
        self._pid = os.getpid()
        logger.info("Forked process: opening its own Snowflake session for %s", self._describe)
        self._raw = self._open_session()
        self._generation += 1
        self._in_transaction = False

    def _open_session(self) -> Any:
        raw = self._open()
        if self._autocommit_set:  # the opener's arguments predate autocommit()
            raw.autocommit(self._autocommit)
        return raw

    def reconnect(
        self, cause: BaseException | None = None, *, seen_generation: int | None = None
    ) -> None:
        """Log in again, replacing the session; a no-op if another thread just did."""
        with self._lock:
            if seen_generation is not None and seen_generation != self._generation:
                return
            if cause is not None:
                logger.info(
                    "Snowflake session for %s is no longer valid (errno %s); logging in again",
                    self._describe,
                    errno_of(cause),
                )
            old = self._raw
            self._raw = self._open_session()
            self._generation += 1
            self.reconnects += 1
            lost_transaction = self._in_transaction
            self._in_transaction = False
        try:
            old.close(retry=False)
        except Exception:  # the old session is dead; closing is a courtesy
            logger.debug("Closing the expired Snowflake session failed; ignored")
        if lost_transaction and cause is not None:
            raise SnowflakeTransactionLostError(
                f"The Snowflake session for {self._describe} expired inside an open "
                "transaction. A new session was opened, but the transaction's earlier "
                "statements were lost, so the failed statement was not re-run: run the "
                "whole transaction again."
            ) from cause

    # -- DB-API ----------------------------------------------------------------------------
    def cursor(self, cursor_class: Any = None) -> ReauthCursor:
        """A cursor whose statements survive session expiry."""
        return ReauthCursor(self, cursor_class)

    def autocommit(self, mode: bool) -> None:
        """Switch autocommit; sessions opened after a re-login get the same mode."""
        self.raw.autocommit(mode)
        self._autocommit, self._autocommit_set = mode, True
        if mode:  # switching it on commits an open transaction
            self._in_transaction = False

    def commit(self) -> None:
        self.raw.commit()
        self._in_transaction = False

    def rollback(self) -> None:
        self.raw.rollback()
        self._in_transaction = False

    def close(self) -> None:
        """Log out and close. Idempotent. In a forked child, closes only the child's session."""
        self._closed = True
        if self._pid == os.getpid():
            self._raw.close()

    def is_closed(self) -> bool:
        return self._closed or bool(self.raw.is_closed())

    def execute_string(self, sql_text: str, *args: Any, **kwargs: Any) -> Any:
        """Run several statements (forwarded; each cursor it returns is the connector's)."""
        return self.raw.execute_string(sql_text, *args, **kwargs)

    def __enter__(self) -> VaultSnowflakeConnection:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # As the connector does: commit or roll back unless autocommit, then close.
        try:
            if self._autocommit is False and not self._closed:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else public (session_id, account, user, sfqid helpers...) is the
        # connector's; its private attributes are not forwarded (they hold credentials).
        if not _forwarded(name, _CONNECTION_INTERNALS_FOR_HELPERS):
            raise AttributeError(
                f"{type(self).__name__} forwards the connector's public API only, not {name!r}"
            )
        return getattr(self.raw, name)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled: it holds a live Snowflake session "
            "logged in with credentials from Vault. Pass the secret's path instead and "
            "connect where the connection is needed."
        )

    # -- used by cursors -------------------------------------------------------------------
    def _note_statement(self) -> None:
        if self._autocommit is False:
            self._in_transaction = True


class ReauthCursor:
    """A cursor that re-runs a statement after the connection logs in again."""

    def __init__(self, connection: VaultSnowflakeConnection, cursor_class: Any) -> None:
        self._connection = connection
        self._cursor_class = cursor_class
        self._generation = connection._generation
        self._cursor = self._new_raw_cursor()

    def _new_raw_cursor(self) -> Any:
        raw = self._connection.raw
        self._generation = self._connection._generation
        return raw.cursor(self._cursor_class) if self._cursor_class else raw.cursor()

    def _current(self) -> Any:
        if self._generation != self._connection._generation or self._connection._pid != os.getpid():
            self._cursor = self._new_raw_cursor()
        return self._cursor

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        reruns = 0
        while True:
            cursor = self._current()
            try:
                result = getattr(cursor, method)(*args, **kwargs)
            except Exception as exc:
                if not is_session_gone(exc) or reruns >= MAX_STATEMENT_RERUNS:
                    raise
                reruns += 1
                self._connection.reconnect(exc, seen_generation=self._generation)
                continue
            self._connection._note_statement()
            return result

    # The arguments are passed on as given: their names differ between the connector
    # lines (4.x: ``command, params``; 5.x: ``operation, parameters``), and the
    # connector's own helpers (write_pandas) pass them by name.
    def execute(self, *args: Any, **kwargs: Any) -> ReauthCursor:
        """Execute a statement; re-run after re-authentication if the session expired.

        Takes the installed connector's ``cursor.execute`` arguments (SQL text, then its
        parameters). Returns this cursor, so ``cursor.execute(sql).fetchall()`` works.
        """
        self._run("execute", *args, **kwargs)
        return self

    def executemany(self, *args: Any, **kwargs: Any) -> ReauthCursor:
        """Execute a statement for each parameter set (re-run as ``execute`` is)."""
        self._run("executemany", *args, **kwargs)
        return self

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("execute_async", *args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __enter__(self) -> ReauthCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> Any:
        return self._cursor.close()

    @property
    def connection(self) -> VaultSnowflakeConnection:
        return self._connection

    def __getattr__(self, name: str) -> Any:
        # fetchone/fetchall/fetch_pandas_all/description/rowcount/sfqid... from the connector;
        # not its private attributes (``_connection`` is the raw connection).
        if not _forwarded(name, _CURSOR_INTERNALS_FOR_HELPERS):
            raise AttributeError(
                f"{type(self).__name__} forwards the connector's public API only, not {name!r}"
            )
        return getattr(self._cursor, name)
