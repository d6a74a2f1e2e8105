"""Users the Snowflake double takes from a PostgreSQL server (leased credentials in tests).

OpenBao ships no Snowflake database plugin, so the lease tests run OpenBao's database
secrets engine with its PostgreSQL plugin against a real PostgreSQL, and the double
accepts exactly the user/password pairs that PostgreSQL accepts
(``SnowflakeDouble.accept_postgres_users``):

- a password login of a user the double does not know is tried on PostgreSQL, with the
  same name and password (a login, at once closed): accepted if PostgreSQL accepts it;
- every later request of such a user's session first asks PostgreSQL whether the role
  still exists (one query over a connection kept for it, as ``monitor_user``, a role
  ``pg_hba.conf`` lets in without a password); when Vault revoked the lease (at its end,
  or on demand) the role is gone, so the double expires the user's sessions, not
  renewably, as when a Snowflake user is dropped.

The check runs on each request, not on a timer, so that once a revocation returned the
next statement sees it: tests need no waiting. Runs in the double's server process;
needs ``pg8000`` (pure Python, in the ``double`` extra), imported on first use.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

__all__ = ["PostgresUsers"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10  # seconds for one PostgreSQL login or query


class PostgresUsers:
    """Password checks and role look-ups against one PostgreSQL server."""

    def __init__(self, host: str, port: int, database: str, monitor_user: str) -> None:
        self.host, self.port, self.database = host, port, database
        self.monitor_user = monitor_user
        self._monitor: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PostgresUsers {self.host}:{self.port}/{self.database}>"

    def check_password(self, name: str, password: object) -> bool:
        """Whether PostgreSQL lets ``name`` log in with ``password`` now."""
        import pg8000.native

        if not isinstance(password, str) or not name:
            return False
        try:
            pg8000.native.Connection(
                name,
                host=self.host,
                port=self.port,
                password=password,
                database=self.database,
                timeout=CONNECT_TIMEOUT,
            ).close()
        except pg8000.native.DatabaseError:  # wrong password, no such role, expired
            return False
        except (pg8000.native.InterfaceError, OSError) as exc:
            logger.warning("Snowflake double: PostgreSQL unreachable for a login (%s)", exc)
            return False
        return True

    def exists(self, name: str) -> bool:
        """Whether the role still exists (False also when PostgreSQL cannot be asked)."""
        import pg8000.native

        with self._lock:
            for _ in range(2):  # a connection PostgreSQL closed is opened again once
                try:
                    if self._monitor is None:
                        self._monitor = pg8000.native.Connection(
                            self.monitor_user,
                            host=self.host,
                            port=self.port,
                            database=self.database,
                            timeout=CONNECT_TIMEOUT,
                        )
                    rows = self._monitor.run("SELECT 1 FROM pg_roles WHERE rolname = :n", n=name)
                    return bool(rows)
                except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
                    self._monitor = None
            logger.warning("Snowflake double: PostgreSQL unreachable; taking %s as gone", name)
            return False

    def close(self) -> None:
        with self._lock:
            if self._monitor is not None:
                with contextlib.suppress(Exception):  # closing at shutdown, best effort
                    self._monitor.close()
                self._monitor = None
