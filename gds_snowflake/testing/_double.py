"""A Snowflake double for the tests and the demo: fakesnow behind real authentication.

fakesnow's server app answers the real ``snowflake.connector`` over HTTP with DuckDB
behind, but lets anyone log in. ``SnowflakeDouble`` runs it behind a layer of ours, in a
process of its own on a free loopback port, and drives that process::

    with SnowflakeDouble() as sf:
        sf.register_user("etl", password="pw", public_key=pem)
        conn = snowflake.connector.connect(user="etl", password="pw", **sf.connect_kwargs())

The process runs fakesnow 0.12, which imports connector internals that connector 5.x
removed, so it runs with connector 4.x from an environment of its own whatever this
process has (``gds_snowflake.testing._environment``: this interpreter when it can import
fakesnow, else a virtual environment built with pip on first use and cached);
``gds_snowflake.testing._process`` starts and stops it, ``gds_snowflake.testing._server``
is what runs there, ``gds_snowflake.testing._app`` is our layer (passwords, key-pair
JWTs, RS256 and ES256/384/512, programmatic access tokens and OAuth access tokens,
checked against the users ``_registry`` keeps, failures answered with Snowflake's own
error bodies). This class changes users and faults through the server's control API;
only SHA-256 digests of passwords and tokens, and public keys, cross it.

What the double lets a test do, and what the real connector then raises to the caller,
on each line (tests/snowflake/test_double.py pins all of it; the same table, by error,
is in ``gds_snowflake._classify``):

- Wrong password or unknown user: ``DatabaseError`` 390100, sqlstate 28000, "Incorrect
  username or password was specified."; a refused key pair: 390144, "JWT token is
  invalid.". Neither line retries them.
- Programmatic access tokens (:meth:`add_pat`, :meth:`rotate_pat`, :meth:`revoke_pat`,
  :meth:`expire_pat`) and OAuth access tokens (:meth:`issue_oauth_token`,
  :meth:`expire_oauth_tokens`, :meth:`revoke_oauth_tokens`), from
  ``gds_snowflake.testing._double_tokens``: a refused PAT answers 394400
  "Programmatic access token is invalid.", a refused OAuth token 390303 (390318 when
  expired); ``DatabaseError`` with that errno on both lines. A PAT also works as the
  password, as in Snowflake.
- ``fail_next_logins(n, status=503)`` answers the next ``n`` login requests with a bare
  HTTP error. The connector retries a login itself: 4.x twice in all for a password
  (``MAX_CON_RETRY_ATTEMPTS``) and 11 times for a key pair (``JWT_CNXN_RETRY_ATTEMPTS``),
  sleeping ``backoff_policy`` between tries (1 s, then full jitter up to 16 s); 5.x six
  times (``retry_max_attempts``), sleeping ``retry_backoff_base_ms`` (250 ms) growing to
  ``retry_backoff_cap_ms``; both give up at ``login_timeout``. When they run out: 4.x
  ``OperationalError`` 250001 "Could not connect to Snowflake backend after 2
  attempt(s)", 5.x ``DatabaseError`` 250001, sqlstate 08001, "HTTP request failed after
  retries"; 5.x at ``login_timeout``: ``OperationalError`` 14, sqlstate HYT00.
- ``expire_sessions()`` makes every later request with those session tokens answer
  390112 ("Your session has expired"). The connector then posts
  ``/session/token-request`` with its master token; the double refuses with 390114 and,
  as :meth:`set_renewal_failure_body` chose, a ``data`` object (the default, as
  Snowflake's other error answers carry) or ``"data": null``. 4.x raises
  ``ProgrammingError`` 390114, sqlstate 08001, either way, on this and every later
  execute. 5.x raises ``DatabaseError`` 390114 then ``ReauthenticationRequest`` 390114
  for ``null``, and for a ``data`` object, which it cannot parse, ``DatabaseError``
  250001, sqlstate 08001, "Failed to refresh session: ... missing field
  `sessionToken`". ``is_closed()`` stays False; a new connection works.
  ``expire_sessions(renewable=True)`` instead renews (new session and master tokens,
  same session id), and the caller sees nothing.
- ``drop_user()`` expires the user's sessions (not renewably) as well.
- ``accept_postgres_users()`` takes the users the double does not know from a
  PostgreSQL server (what OpenBao's database secrets engine creates there), and expires
  their sessions once their role is dropped: leases in tests (``_postgres``).
- Per-user counts of successful and refused logins; injected failures count in neither.
- fakesnow errors that it answers with HTTP 500 (an unsupported statement, a bug) are
  answered as a Snowflake SQL error (HTTP 200, ``success: false``, code 261000) so that
  the connector raises ``ProgrammingError`` at once instead of retrying.
- ``write_pandas`` works on both lines: its COPY's stage, quoted as Snowflake takes it
  (``FROM '@"STAGE"'``), is unquoted for fakesnow 0.12, and a PUT's GCS-style stage
  gets the region and signed-header list connector 5.x insists on.

Limits worth knowing:

- ``select current_user()`` returns ``'duckdb'`` (DuckDB's own function, which fakesnow
  passes through), not the logged-in user; ``current_account()`` does not exist.
- All sessions of one double share one in-memory DuckDB, so all users share tables.
- The connector honours ``HTTP_PROXY``/``http_proxy`` even for 127.0.0.1 unless
  ``NO_PROXY`` covers it; ``connect_kwargs()`` cannot switch that off.
- Unless told otherwise, every login probes cloud metadata endpoints
  (``169.254.169.254``, ``metadata.google.internal``, ...). ``connect_kwargs()`` sets
  ``platform_detection_timeout_seconds=0.0``, which stops 4.x's probes; 5.x ignores it,
  and only ``SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true`` in the environment stops its
  probes (the project's tests, the demo and the benchmarks set it).
- The first start on a machine may build the double's environment first (about half a
  minute, from PyPI).

No password, token or key appears in any repr or log line: passwords and tokens are
kept only as SHA-256 digests, and the logs (here and in the server's log file) name
users, never credentials.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from gds_snowflake.testing._app import RENEWAL_FAILURE_BODIES  # cheap: no starlette yet
from gds_snowflake.testing._double_tokens import TokenControl
from gds_snowflake.testing._process import HOST, ServerProcess
from gds_snowflake.testing._registry import public_key_fingerprint

__all__ = ["RENEWAL_FAILURE_BODIES", "SnowflakeDouble", "public_key_fingerprint"]

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "testaccount"


class SnowflakeDouble(TokenControl):
    """fakesnow behind password, key-pair and token authentication, served on 127.0.0.1.

    Args:
        account: the account name clients pass to ``connect``; JWTs must name it.
        renewal_failure_body: how a refused session renewal is answered: ``"data"``
            (a ``data`` object with the error code, as Snowflake's other errors) or
            ``"null"`` (``"data": null``). See the module docstring for what each
            connector line raises; :meth:`set_renewal_failure_body` changes it later.
    """

    def __init__(
        self, *, account: str = DEFAULT_ACCOUNT, renewal_failure_body: str = "data"
    ) -> None:
        _check_body(renewal_failure_body)
        self._account = account
        self._renewal_failure_body = renewal_failure_body
        self._server: ServerProcess | None = None

    def __repr__(self) -> str:
        state = f"http://{HOST}:{self.port}" if self.running else "stopped"
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
        if self._server is None:
            raise RuntimeError("the Snowflake double has not been started")
        return self._server.port

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._server is not None and self._server.alive

    @property
    def log_path(self) -> Path | None:
        """The server process's log (its stderr) while it runs; None before and after."""
        return self._server.log_path if self._server is not None else None

    @property
    def python(self) -> str | None:
        """The interpreter serving the double (see ``gds_snowflake.testing._environment``)."""
        return self._server.python if self._server is not None else None

    def connect_kwargs(self) -> dict[str, Any]:
        """``snowflake.connector.connect`` arguments that reach this double.

        Returns:
            ``account``, ``host``, ``port`` and ``protocol`` ("http"), and, where the
            installed connector knows it, ``platform_detection_timeout_seconds=0.0``
            (4.x honours it, 5.x accepts and ignores it); add the user and the
            credentials.
        """
        from gds_snowflake._connector import known_parameters

        kwargs: dict[str, Any] = {
            "account": self._account,
            "host": HOST,
            "port": self.port,
            "protocol": "http",
        }
        # Connector 4.x probes cloud metadata endpoints (AWS, Azure, GCP) at every login
        # unless told not to; on a machine without DNS, concurrent logins then stall for
        # seconds in getaddrinfo.
        if "platform_detection_timeout_seconds" in known_parameters():
            kwargs["platform_detection_timeout_seconds"] = 0.0
        return kwargs

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> SnowflakeDouble:
        """Starts the server process; returns once it answers HTTP.

        The first start on a machine may build the double's environment first (see
        ``gds_snowflake.testing._environment``), which takes about half a minute.

        Returns:
            The double itself.

        Raises:
            RuntimeError: already running, or the server did not come up within 60 s;
                the message has the end of its log.
            gds_snowflake.testing._environment.DoubleEnvironmentError: its environment
                could not be built.
        """
        if self.running:
            raise RuntimeError("the Snowflake double is already running")
        self._server = ServerProcess(
            ["--account", self._account, "--renewal-failure-body", self._renewal_failure_body]
        )
        logger.info(
            "Snowflake double serving account %s on %s:%s (pid %s)",
            self._account,
            HOST,
            self._server.port,
            self._server.pid,
        )
        return self

    def stop(self) -> None:
        """Stops the server process and deletes its log; a no-op when not running."""
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> SnowflakeDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def server_info(self) -> dict[str, Any]:
        """The server process: ``pid``, ``python``, and its ``connector`` and ``fakesnow``
        versions (connector 4.x, whatever this process runs)."""
        info: dict[str, Any] = self._call("ping")
        return info

    # -- the control API -------------------------------------------------------------

    def _call(self, operation: str, **arguments: Any) -> Any:
        if self._server is None or not self.running:
            raise RuntimeError("the Snowflake double is not running: start() it first")
        return self._server.call(operation, **arguments)

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
        self._call(
            "register_user",
            name=name,
            password_digest=_digest(password),
            public_key=None if public_key is None else _public_pem(public_key),
        )
        logger.debug("Snowflake double: registered user %s", name.upper())

    def set_password(self, name: str, password: str | None) -> None:
        """Replaces the password (None removes it); the old one stops working at once.

        Raises:
            KeyError: no such user.
        """
        self._call("set_password", name=name, password_digest=_digest(password))

    def set_public_key(self, name: str, key: Any, *, slot: int = 1) -> None:
        """Sets RSA_PUBLIC_KEY (slot 1) or RSA_PUBLIC_KEY_2 (slot 2); either may sign.

        Raises:
            KeyError: no such user.
            ValueError: slot is not 1 or 2.
            TypeError: the key is not an RSA or supported EC public key.
        """
        _check_slot(slot)
        self._call("set_public_key", name=name, public_key=_public_pem(key), slot=slot)

    def unset_public_key(self, name: str, *, slot: int = 1) -> None:
        """Removes the key in a slot; JWTs signed with it are refused from then on.

        Raises:
            KeyError: no such user.
            ValueError: slot is not 1 or 2.
        """
        _check_slot(slot)
        self._call("unset_public_key", name=name, slot=slot)

    def drop_user(self, name: str) -> None:
        """Removes the user and expires its sessions (not renewably).

        Raises:
            KeyError: no such user.
        """
        self._call("drop_user", name=name)

    # -- faults and counters -------------------------------------------------------

    def expire_sessions(self, user: str | None = None, *, renewable: bool = False) -> int:
        """Expires the open sessions of one user, or of everyone.

        Args:
            user: whose sessions; None for all.
            renewable: if True the connector's master-token renewal succeeds (it renews
                silently); if False the renewal is refused (see
                :meth:`set_renewal_failure_body`) and the connector raises to its caller.

        Returns:
            How many sessions were expired.
        """
        count: int = self._call("expire_sessions", user=user, renewable=renewable)
        return count

    def set_renewal_failure_body(self, shape: str) -> None:
        """How refused renewals are answered from now on: ``"data"`` or ``"null"``.

        Raises:
            ValueError: another shape.
        """
        _check_body(shape)
        self._call("set_renewal_failure_body", shape=shape)
        self._renewal_failure_body = shape

    @property
    def renewal_failure_body(self) -> str:
        """How refused renewals are answered: ``"data"`` (the default) or ``"null"``."""
        return self._renewal_failure_body

    def fail_next_logins(self, n: int, *, status: int = 503) -> None:
        """Answers the next ``n`` login requests, whoever sends them, with HTTP ``status``.

        Args:
            n: how many; 0 cancels pending failures.
            status: the HTTP status, 503 by default.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, not {n}")
        self._call("fail_next_logins", n=n, status=status)

    def login_count(self, user: str) -> int:
        """Successful logins of ``user`` since the double was started."""
        count: int = self._call("login_count", user=user)
        return count

    def accept_postgres_users(
        self, port: int, *, host: str = HOST, database: str = "postgres", monitor_user: str
    ) -> None:
        """Let users the double does not know log in if PostgreSQL lets them in.

        For leased credentials in tests: OpenBao's database secrets engine creates users
        in a PostgreSQL server, and the double then accepts exactly the user/password
        pairs that server accepts, and ends a user's sessions once its role is gone (the
        lease ended or was revoked). See ``gds_snowflake.testing._postgres``.

        Args:
            port: PostgreSQL's TCP port on loopback.
            host: Its address (loopback only).
            database: A database every role may connect to.
            monitor_user: A role PostgreSQL lets in from loopback without a password
                (``trust`` in pg_hba.conf), used to see whether a role still exists; no
                password crosses the control API.

        Raises:
            ValueError: ``host`` is not a loopback address.
        """
        self._call(
            "accept_postgres_users",
            host=host,
            port=port,
            database=database,
            monitor_user=monitor_user,
        )

    def failed_login_count(self, user: str) -> int:
        """Refused logins (wrong credentials) for ``user``; injected failures excluded."""
        count: int = self._call("failed_login_count", user=user)
        return count


def _digest(password: str | None) -> str | None:
    # Only digests cross to the server process, as only digests are kept there.
    return None if password is None else hashlib.sha256(password.encode("utf-8")).hexdigest()


def _public_pem(key: Any) -> str:
    """A public key as PEM text; raises TypeError for anything that is not one we take."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from gds_snowflake.testing._registry import load_key

    loaded = load_key(key)  # checks the kind of key here, where the caller sees the error
    pem: bytes = loaded.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def _check_slot(slot: int) -> None:
    if slot not in (1, 2):
        raise ValueError(f"slot must be 1 (RSA_PUBLIC_KEY) or 2 (RSA_PUBLIC_KEY_2), not {slot}")


def _check_body(shape: str) -> None:
    if shape not in RENEWAL_FAILURE_BODIES:
        raise ValueError(
            f"renewal_failure_body must be one of {', '.join(RENEWAL_FAILURE_BODIES)}, not "
            f"{shape!r}"
        )
