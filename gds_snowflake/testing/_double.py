"""A Snowflake double for the tests and the demo: fakesnow behind real authentication.

fakesnow's server app answers the real ``snowflake.connector`` over HTTP with DuckDB
behind, but lets anyone log in. ``SnowflakeDouble`` puts a layer of ours in front of it
and runs both with uvicorn in a background thread on a free loopback port::

    with SnowflakeDouble() as sf:
        sf.register_user("etl", password="pw", public_key=pem)
        conn = snowflake.connector.connect(user="etl", password="pw", **sf.connect_kwargs())

``gds_snowflake.testing._app`` is that layer: it checks passwords and key-pair JWTs
(RS256 and ES256/384/512) against the users registered here, which
``gds_snowflake.testing._registry`` keeps, and answers failures with Snowflake's own error
bodies (390100 for a password, 390144 for a key pair, which the connector raises as
``DatabaseError`` and does not retry; that module's docstring has the details). On top of
that, what the double lets a test do, and what the real connector 4.8.1 then raises to
the caller (all checked against the connector by ``tests/snowflake/test_double.py``):

- ``fail_next_logins(n, status=503)`` answers the next ``n`` login requests with a bare
  HTTP error. The connector does not retry a login inside its HTTP layer; its
  authenticator does: it sleeps one backoff step (``backoff_policy``, by default
  exponential with full jitter: 1 s, then 0-2 s, 0-4 s, ... capped at 16 s) and tries
  again, up to ``MAX_CON_RETRY_ATTEMPTS`` retries for a password (environment variable,
  default 1, so 2 attempts in all) or ``JWT_CNXN_RETRY_ATTEMPTS`` for key-pair (default
  10), and never beyond ``login_timeout`` seconds (default 120). When they run out it
  raises ``snowflake.connector.errors.OperationalError`` with ``errno == 250001`` and
  message ``"Could not connect to Snowflake backend after 2 attempt(s).Aborting"``.
  Pass ``backoff_policy`` (a generator function yielding seconds) to make that fast.
- ``expire_sessions()`` makes every later request carrying those session tokens answer
  390112 ("Your session has expired. Please login again."). The connector then posts
  ``/session/token-request`` with its master token in the ``Authorization`` header and
  ``{"oldSessionToken": ..., "requestType": "RENEW"}``; the double answers 390114
  ("Authentication token has expired.  The user must authenticate again.") and the
  connector marks the connection ``expired`` and raises to the caller of
  ``cursor.execute``: ``snowflake.connector.errors.ProgrammingError`` with
  ``errno == 390114``, ``sqlstate == "08001"`` and that message as ``raw_msg``. Every
  later execute on that connection does the same; ``is_closed()`` stays False. A new
  connection works.
  ``expire_sessions(renewable=True)`` instead answers the renewal with a new session
  token, so the connector renews silently and the caller sees nothing.
- ``drop_user()`` expires the user's sessions (not renewably) as well.
- Per-user counts of successful and failed logins. Injected transient failures count in
  neither.
- fakesnow errors that it answers with HTTP 500 (an unsupported statement, a bug) are
  answered as a Snowflake SQL error (HTTP 200, ``success: false``, code 261000) so that
  the connector raises ``ProgrammingError`` at once instead of retrying for ever.
- ``write_pandas`` (snowflake.connector.pandas_tools) loads with
  ``COPY INTO t (...) FROM (SELECT $1:"A", ... FROM '@"STAGE"')``: Snowflake takes the
  stage there as a quoted string, fakesnow 0.12 only as a bare ``@"STAGE"`` (it answers
  "invalid URL prefix"). The double rewrites that one form, in COPY statements only, to
  the bare one; the PUT before it works as it is.

Limits worth knowing:

- ``select current_user()`` returns ``'duckdb'`` (DuckDB's own function, which fakesnow
  passes through), not the logged-in user; ``current_account()`` does not exist.
- fakesnow keeps every session's data in one in-memory DuckDB per process (module
  globals), so all doubles in a process share tables, and so do all users.
- duckdb 2.0 warns ("Arrow output on a DB-API result makes an extra copy ...") from
  fakesnow's cursor on every query. The warning is raised in the server's threads, but
  warning filters are process-wide: under ``-W error`` it turns every query into an
  error (fakesnow's "Unhandled exception", raised as ``ProgrammingError`` 261000 thanks
  to the 500 mapping above; the ``fakesnow.server`` log has the traceback). ``start()``
  adds a precise ignore filter for it, which is enough for the demo; pytest restores the
  filters around every test, so test suites need the same filter in their
  ``filterwarnings`` configuration:
  ``"ignore:Arrow output on a DB-API result:UserWarning:fakesnow"``.
- The connector honours ``HTTP_PROXY``/``http_proxy`` even for 127.0.0.1 unless
  ``NO_PROXY`` covers it; ``connect_kwargs()`` cannot switch that off.
- Unless told otherwise, every connector login probes cloud metadata endpoints
  (``metadata.google.internal``, 169.254.169.254, ...) from six threads; without DNS,
  16 concurrent logins then stall about 5 s in ``getaddrinfo``. ``connect_kwargs()``
  therefore sets ``platform_detection_timeout_seconds=0.0``, which skips the network
  probes (``SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true`` does the same process-wide).

No password or key appears in any repr or log line: passwords are kept only as SHA-256
digests, and the logs name users, never credentials.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
import warnings
from types import TracebackType
from typing import Any

from gds_snowflake.testing._app import AuthApp, fakesnow_server
from gds_snowflake.testing._registry import (
    Registry,
    User,
    digest,
    load_key,
    norm,
    public_key_fingerprint,
)

__all__ = ["SnowflakeDouble", "public_key_fingerprint"]

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "testaccount"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0  # seconds to wait for the server to answer
STOP_TIMEOUT = 5.0  # seconds to wait for the server thread to finish
_DUCKDB_ARROW_WARNING = r"Arrow output on a DB-API result"


class SnowflakeDouble:
    """fakesnow behind password and key-pair authentication, served on 127.0.0.1.

    Args:
        account: the account name clients pass to ``connect``; JWTs must name it.
    """

    def __init__(self, *, account: str = DEFAULT_ACCOUNT) -> None:
        self._account = account
        self._registry = Registry()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        state = f"http://{HOST}:{self._port}" if self.running else "stopped"
        return f"<SnowflakeDouble account={self._account!r} {state}>"

    @property
    def account(self) -> str:
        """The account name, e.g. ``"testaccount"``."""
        return self._account

    @property
    def host(self) -> str:
        """The loopback address the server listens on."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port; only known once started.

        Raises:
            RuntimeError: the double was never started.
        """
        if self._port is None:
            raise RuntimeError("the Snowflake double has not been started")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def connect_kwargs(self) -> dict[str, Any]:
        """``snowflake.connector.connect`` arguments that reach this double.

        Returns:
            ``account``, ``host``, ``port`` and ``protocol`` ("http"), and, where the
            connector knows it, ``platform_detection_timeout_seconds=0.0``; add the user
            and the credentials.
        """
        from snowflake.connector.connection import DEFAULT_CONFIGURATION

        kwargs: dict[str, Any] = {
            "account": self._account,
            "host": HOST,
            "port": self.port,
            "protocol": "http",
        }
        # Otherwise every login probes cloud metadata endpoints (AWS, Azure, GCP); on a
        # machine without DNS, concurrent logins then stall for seconds in getaddrinfo.
        if "platform_detection_timeout_seconds" in DEFAULT_CONFIGURATION:
            kwargs["platform_detection_timeout_seconds"] = 0.0
        return kwargs

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> SnowflakeDouble:
        """Serves in a background thread; returns once the server answers HTTP.

        Returns:
            The double itself.

        Raises:
            RuntimeError: already running, or the server did not come up within
                ``STARTUP_TIMEOUT`` (10 s).
        """
        import uvicorn

        if self.running:
            raise RuntimeError("the Snowflake double is already running")
        logging.getLogger("fakesnow.server").setLevel(logging.WARNING)
        warnings.filterwarnings(
            "ignore", message=_DUCKDB_ARROW_WARNING, category=UserWarning, module="fakesnow"
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            AuthApp(self._registry, self._account),
            interface="asgi3",
            lifespan="off",
            log_config=None,  # leave the process's logging configuration alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"snowflake-double-{self._port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_serving()
        logger.info("Snowflake double serving account %s on %s:%s", self._account, HOST, self._port)
        return self

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError("the Snowflake double's server thread exited during startup")
            if self._server.started:
                # http.client, not requests/urllib: no proxy variables apply.
                conn = http.client.HTTPConnection(HOST, self.port, timeout=STARTUP_TIMEOUT)
                try:
                    conn.request("GET", "/")
                    conn.getresponse().read()
                    return
                except OSError:
                    pass
                finally:
                    conn.close()
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"the Snowflake double did not answer within {STARTUP_TIMEOUT} s")

    def stop(self) -> None:
        """Stops the server and ends its fakesnow sessions; a no-op when not running."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        self._server, self._thread = None, None
        with self._registry.lock:
            tokens = list(self._registry.sessions)
            self._registry.sessions.clear()
        self._drop_fakesnow_sessions(tokens)

    def __enter__(self) -> SnowflakeDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- users -------------------------------------------------------------------

    def register_user(
        self, name: str, *, password: str | None = None, public_key: Any = None
    ) -> None:
        """Creates a user (names are case-insensitive, as unquoted Snowflake names).

        Args:
            name: the login name.
            password: the password, or None for a user without one.
            public_key: PEM (bytes or str), bare base64 DER as Snowflake's
                ``RSA_PUBLIC_KEY`` takes it, or a cryptography RSA/EC public key; goes to
                slot 1.

        Raises:
            ValueError: the user exists already.
            TypeError: the key is not an RSA or supported EC public key.
        """
        user = User(None if password is None else digest(password))
        if public_key is not None:
            user.keys[1] = load_key(public_key)
        with self._registry.lock:
            if norm(name) in self._registry.users:
                raise ValueError(f"user {name!r} is already registered with the Snowflake double")
            self._registry.users[norm(name)] = user

    def set_password(self, name: str, password: str | None) -> None:
        """Replaces the password (None removes it); the old one stops working at once.

        Raises:
            KeyError: no such user.
        """
        with self._registry.lock:
            self._registry.user(name).password_digest = (
                None if password is None else digest(password)
            )

    def set_public_key(self, name: str, key: Any, *, slot: int = 1) -> None:
        """Sets RSA_PUBLIC_KEY (slot 1) or RSA_PUBLIC_KEY_2 (slot 2); either may sign.

        Raises:
            KeyError: no such user.
            ValueError: slot is not 1 or 2.
            TypeError: the key is not an RSA or supported EC public key.
        """
        _check_slot(slot)
        loaded = load_key(key)
        with self._registry.lock:
            self._registry.user(name).keys[slot] = loaded

    def unset_public_key(self, name: str, *, slot: int = 1) -> None:
        """Removes the key in a slot; JWTs signed with it are refused from then on.

        Raises:
            KeyError: no such user.
            ValueError: slot is not 1 or 2.
        """
        _check_slot(slot)
        with self._registry.lock:
            self._registry.user(name).keys.pop(slot, None)

    def drop_user(self, name: str) -> None:
        """Removes the user and expires its sessions (not renewably).

        Raises:
            KeyError: no such user.
        """
        with self._registry.lock:
            self._registry.user(name)
            del self._registry.users[norm(name)]
        self.expire_sessions(name)

    # -- faults and counters -------------------------------------------------------

    def expire_sessions(self, user: str | None = None, *, renewable: bool = False) -> int:
        """Expires the open sessions of one user, or of everyone.

        Args:
            user: whose sessions; None for all.
            renewable: if True the connector's master-token renewal succeeds (it renews
                silently); if False it gets 390114 and raises to its caller.

        Returns:
            How many sessions were expired.
        """
        count, dead = self._registry.expire(
            None if user is None else norm(user), renewable=renewable
        )
        self._drop_fakesnow_sessions(dead)
        return count

    def fail_next_logins(self, n: int, *, status: int = 503) -> None:
        """Answers the next ``n`` login requests, whoever sends them, with HTTP ``status``.

        Args:
            n: how many; 0 cancels pending failures.
            status: the HTTP status, 503 by default.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, not {n}")
        with self._registry.lock:
            self._registry.pending_failures, self._registry.failure_status = n, status

    def login_count(self, user: str) -> int:
        """Successful logins of ``user`` since the double was created."""
        with self._registry.lock:
            return self._registry.logins.get(norm(user), 0)

    def failed_login_count(self, user: str) -> int:
        """Refused logins (wrong credentials) for ``user``; injected failures excluded."""
        with self._registry.lock:
            return self._registry.failed.get(norm(user), 0)

    def _drop_fakesnow_sessions(self, tokens: list[str]) -> None:
        sessions = fakesnow_server().sessions
        # Dropped, not closed: a query may still be running on one in the server's
        # threads; the DuckDB cursor closes when the last reference goes.
        for token in tokens:
            sessions.pop(token, None)


def _check_slot(slot: int) -> None:
    if slot not in (1, 2):
        raise ValueError(f"slot must be 1 (RSA_PUBLIC_KEY) or 2 (RSA_PUBLIC_KEY_2), not {slot}")
