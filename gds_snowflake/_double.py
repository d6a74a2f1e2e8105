"""A Snowflake double for the tests and the demo: fakesnow behind real authentication.

fakesnow's server app answers the real ``snowflake.connector`` over HTTP with DuckDB
behind, but lets anyone log in. ``SnowflakeDouble`` puts a layer of ours in front of it
and runs both with uvicorn in a background thread on a free loopback port::

    with SnowflakeDouble() as sf:
        sf.register_user("etl", password="pw", public_key=pem)
        conn = snowflake.connector.connect(user="etl", password="pw", **sf.connect_kwargs())

What the layer adds, and what the real connector 4.8.1 then raises to the caller (all
checked against the connector by ``tests/snowflake/test_double.py``):

- Login (``POST /session/v1/login-request``) succeeds only for a registered user with the
  right password, or with a key-pair JWT (``AUTHENTICATOR=SNOWFLAKE_JWT``) signed RS256
  (RSA) or ES256/ES384/ES512 (EC P-256/P-384/P-521, which the connector picks by curve)
  by one of the user's two registered public keys, whose ``iss`` is
  ``ACCOUNT.USER.SHA256:<fingerprint>`` and ``sub`` is ``ACCOUNT.USER``. Failures are
  Snowflake's own error bodies (HTTP 200, ``success: false``):

  - bad password or unknown user: 390100, and the connector raises
    ``snowflake.connector.errors.DatabaseError`` (not a subclass of it) with
    ``errno == 390100``, ``sqlstate == "28000"``, ``raw_msg == "Failed to connect to DB:
    127.0.0.1:<port>. Incorrect username or password was specified."`` and ``str(exc)``
    that prefixed with ``"390100 (28000): "``;
  - any key-pair failure (unknown user included, as Snowflake does not tell): 390144,
    raised as ``DatabaseError``, ``errno == 390144``, ``sqlstate == "28000"``,
    ``raw_msg == "Failed to connect to DB: 127.0.0.1:<port>. JWT token is invalid."``.

  Neither is retried by the connector.
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

import base64
import gzip
import hashlib
import hmac
import http.client
import importlib
import itertools
import json
import logging
import re
import secrets
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

__all__ = ["SnowflakeDouble", "public_key_fingerprint"]

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "testaccount"
HOST = "127.0.0.1"
SESSION_VALIDITY = 3600  # seconds, what the login response announces for the session token
MASTER_VALIDITY = 14400  # seconds, for the master token (Snowflake's defaults: 1 h and 4 h)
JWT_LEEWAY = 60  # seconds of clock skew tolerated on a JWT's iat and exp
JWT_MAX_LIFETIME = 3600  # seconds; Snowflake rejects a JWT whose exp is further than 1 h away
STARTUP_TIMEOUT = 10.0  # seconds to wait for the server to answer
STOP_TIMEOUT = 5.0  # seconds to wait for the server thread to finish

BAD_PASSWORD = ("390100", "Incorrect username or password was specified.")
BAD_JWT = ("390144", "JWT token is invalid.")
SESSION_EXPIRED = ("390112", "Your session has expired. Please login again.")
MASTER_EXPIRED = (
    "390114",
    "Authentication token has expired.  The user must authenticate again.",
)
SERVER_FAULT = "261000"

_LOGIN_PATH = "/session/v1/login-request"
_RENEW_PATH = "/session/token-request"
_QUERY_PATH = "/queries/v1/query-request"
_TOKEN_HEADER = re.compile(r'^Snowflake Token="(?P<token>[^"]*)"$')
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_DUCKDB_ARROW_WARNING = r"Arrow output on a DB-API result"
_COPY_PREFIX = re.compile(r"\s*COPY\s+INTO\s", re.IGNORECASE)
# write_pandas's load: COPY INTO t (...) FROM (SELECT $1:"A", ... FROM '@"STAGE"') ...
_COPY_QUOTED_STAGE = re.compile(
    r"(\bFROM\s*\(\s*SELECT\s.*?\bFROM\s+)'(@[^'\s]+)'", re.IGNORECASE | re.DOTALL
)


def public_key_fingerprint(key: Any) -> str:
    """Snowflake's fingerprint of a public key, as the connector puts it in ``iss``.

    Args:
        key: a cryptography public key object.

    Returns:
        ``"SHA256:"`` and the base64 SHA-256 of the DER SubjectPublicKeyInfo.
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Key:
    public_key: Any = field(repr=False)
    algorithm: str
    fingerprint: str


def _load_key(key: Any) -> _Key:
    """A registered key from PEM, Snowflake's bare base64 DER form, or a key object."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, str):
        key = key.encode("ascii")
    if isinstance(key, bytes):
        if b"-----BEGIN" in key:
            key = serialization.load_pem_public_key(key)
        else:  # what ALTER USER ... SET RSA_PUBLIC_KEY='MIIB...' takes
            key = serialization.load_der_public_key(base64.b64decode(b"".join(key.split())))
    if isinstance(key, rsa.RSAPublicKey):
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        algorithm = _EC_ALGORITHMS[key.curve.name]
    else:
        raise TypeError(
            f"public_key must be an RSA or EC (P-256/384/521) public key, as PEM or a "
            f"cryptography key object, not {type(key).__name__}"
        )
    return _Key(key, algorithm, public_key_fingerprint(key))


def _fakesnow_server() -> Any:
    # The module, by import_module: the fakesnow package also has a function named server.
    return importlib.import_module("fakesnow.server")


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()


@dataclass(slots=True)
class _User:
    password_digest: bytes | None = field(default=None, repr=False)
    keys: dict[int, _Key] = field(default_factory=dict)


@dataclass(slots=True)
class _Session:
    user: str
    master_token: str = field(repr=False)
    expired: bool = False
    renewable: bool = False


def _norm(name: str) -> str:
    # Unquoted Snowflake identifiers are case-insensitive; the connector upper-cases the
    # user in the JWT but sends LOGIN_NAME as typed.
    return name.upper()


class _Registry:
    """Users, sessions and counters, shared by the server thread and the tests' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: dict[str, _User] = {}
        self.sessions: dict[str, _Session] = {}  # by session token
        self.logins: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.pending_failures = 0
        self.failure_status = 503
        self.session_ids = itertools.count(1)

    def user(self, name: str) -> _User:
        try:
            return self.users[_norm(name)]
        except KeyError:
            raise KeyError(f"no user {name!r} is registered with the Snowflake double") from None

    def take_injected_failure(self) -> int | None:
        with self.lock:
            if self.pending_failures <= 0:
                return None
            self.pending_failures -= 1
            return self.failure_status

    def check_password(self, name: str, password: object) -> bool:
        with self.lock:
            user = self.users.get(name)
            expected = user.password_digest if user else None
        if expected is None or not isinstance(password, str):
            return False
        return hmac.compare_digest(expected, _digest(password))

    def keys_of(self, name: str) -> list[_Key]:
        with self.lock:
            user = self.users.get(name)
            return list(user.keys.values()) if user else []

    def count_failure(self, name: str) -> None:
        with self.lock:
            self.failed[name] = self.failed.get(name, 0) + 1

    def open_session(self, token: str, name: str) -> tuple[str, int]:
        master = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[token] = _Session(name, master)
            self.logins[name] = self.logins.get(name, 0) + 1
            return master, next(self.session_ids)

    def is_expired(self, token: str) -> bool:
        with self.lock:
            session = self.sessions.get(token)
            return session is not None and session.expired

    def expire(self, name: str | None, *, renewable: bool) -> tuple[int, list[str]]:
        """Marks sessions expired: how many, and the tokens whose fakesnow session can go."""
        with self.lock:
            hit = [
                (token, s)
                for token, s in self.sessions.items()
                if not s.expired and (name is None or s.user == name)
            ]
            for _, s in hit:
                s.expired, s.renewable = True, renewable
            return len(hit), [token for token, _ in hit if not renewable]

    def renew(self, master: str) -> tuple[str, str, str] | None:
        """(old token, new token, new master) for a renewable session, else None."""
        with self.lock:
            found = [(t, s) for t, s in self.sessions.items() if s.master_token == master]
            if not found:
                return None
            token, session = found[0]
            if session.expired and not session.renewable:
                return None
            new_token, new_master = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            del self.sessions[token]
            self.sessions[new_token] = _Session(session.user, new_master)
            return token, new_token, new_master

    def forget(self, token: str) -> None:
        with self.lock:
            self.sessions.pop(token, None)


def _error(code_and_message: tuple[str, str], **data: Any) -> Response:
    from starlette.responses import JSONResponse

    code, message = code_and_message
    body = {
        "data": {"errorCode": code, "nextAction": None, **data},
        "code": code,
        "message": message,
        "success": False,
        "headers": None,
    }
    return JSONResponse(body)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _header_token(request: Request) -> str | None:
    match = _TOKEN_HEADER.match(request.headers.get("Authorization", ""))
    return match.group("token") if match else None


class _AuthApp:
    """The ASGI app: our login, renewal and expiry in front of fakesnow's routes."""

    def __init__(self, registry: _Registry, account: str) -> None:
        self._registry = registry
        self._account = account.partition(".")[0].upper()
        self._fakesnow: Any = _fakesnow_server()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request

        if scope["type"] != "http":
            await self._fakesnow.app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = scope["path"]
        token = _header_token(request)
        response: Response
        if path == _LOGIN_PATH:
            response = await self._login(request)
        elif path == _RENEW_PATH:
            response = await self._renew(request, token)
        elif token is not None and self._registry.is_expired(token):
            response = _error(SESSION_EXPIRED)
        elif path == _QUERY_PATH:
            response = await self._query(request)
        else:
            await self._fakesnow.app(scope, receive, send)
            if path == "/session" and token is not None and request.query_params.get("delete"):
                self._registry.forget(token)
            return
        await response(scope, receive, send)

    async def _login(self, request: Request) -> Response:
        from starlette.responses import JSONResponse, PlainTextResponse

        status = self._registry.take_injected_failure()
        if status is not None:
            logger.debug("Snowflake double: injected HTTP %s on a login", status)
            return PlainTextResponse("injected transient failure", status_code=status)
        data = (await _json_body(request)).get("data") or {}
        name = _norm(str(data.get("LOGIN_NAME") or ""))
        if str(data.get("AUTHENTICATOR") or "").upper() == "SNOWFLAKE_JWT":
            method, failure = "key pair", BAD_JWT
            accepted = self._check_jwt(name, data.get("TOKEN"))
        else:
            method, failure = "password", BAD_PASSWORD
            accepted = self._registry.check_password(name, data.get("PASSWORD"))
        if not accepted:
            self._registry.count_failure(name)
            logger.debug("Snowflake double: %s login refused for %s", method, name)
            return _error(failure, authnMethod=method.upper().replace(" ", "_"), loginName=name)

        # fakesnow reads the body again; Starlette keeps it on the request.
        response: Response = await self._fakesnow.login_request(request)
        if response.status_code != 200:
            return response
        payload = json.loads(bytes(response.body))
        token = payload["data"]["token"]
        master, session_id = self._registry.open_session(token, name)
        logger.debug("Snowflake double: %s login for %s", method, name)
        payload["data"].update(
            masterToken=master,
            validityInSeconds=SESSION_VALIDITY,
            masterValidityInSeconds=MASTER_VALIDITY,
            sessionId=session_id,
            displayUserName=name,
            firstLogin=False,
            idToken=None,
            healthCheckInterval=45,
        )
        info = payload["data"].setdefault("sessionInfo", {})
        info.setdefault("warehouseName", request.query_params.get("warehouse"))
        info.setdefault("roleName", request.query_params.get("roleName") or "PUBLIC")
        return JSONResponse(payload)

    def _check_jwt(self, name: str, token: object) -> bool:
        import jwt

        if not isinstance(token, str):
            return False
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        issuer = str(claims.get("iss", ""))
        prefix = f"{self._account}.{name}."
        if not issuer.startswith(prefix) or claims.get("sub") != f"{self._account}.{name}":
            return False
        fingerprint = issuer[len(prefix) :]
        for key in self._registry.keys_of(name):
            if not hmac.compare_digest(key.fingerprint, fingerprint):
                continue
            try:
                verified = jwt.decode(
                    token,
                    key.public_key,
                    algorithms=[key.algorithm],
                    leeway=JWT_LEEWAY,
                    options={"require": ["iss", "sub", "iat", "exp"]},
                )
            except jwt.PyJWTError:
                return False
            return int(verified["exp"]) - int(verified["iat"]) <= JWT_MAX_LIFETIME
        return False

    async def _renew(self, request: Request, master: str | None) -> Response:
        from starlette.responses import JSONResponse

        await _json_body(request)  # the old session token; the master token decides
        renewed = self._registry.renew(master) if master else None
        if renewed is None:
            return _error(MASTER_EXPIRED)
        old, token, new_master = renewed
        sessions = self._fakesnow.sessions
        if old in sessions:
            sessions[token] = sessions.pop(old)
        return JSONResponse(
            {
                "data": {
                    "sessionToken": token,
                    "validityInSeconds": SESSION_VALIDITY,
                    "masterToken": new_master,
                    "masterValidityInSeconds": MASTER_VALIDITY,
                },
                "code": None,
                "message": None,
                "success": True,
            }
        )

    async def _query(self, request: Request) -> Response:
        request = await _with_bare_copy_stage(request)
        response: Response = await self._fakesnow.query_request(request)
        if response.status_code < 500:
            return response
        # fakesnow's 500 means "unsupported or a fakesnow bug", not a transient fault;
        # the connector would retry a 500 for ever (network_timeout defaults to none).
        try:
            message = str(json.loads(bytes(response.body)).get("message"))
        except ValueError:
            message = "Unhandled exception"
        hint = " (in fakesnow; the 'fakesnow.server' logger has the traceback)"
        return _error((SERVER_FAULT, message + hint))


async def _with_bare_copy_stage(request: Request) -> Request:
    """The request, with ``FROM '@stage'`` in a COPY transformation made ``FROM @stage``."""
    from starlette.requests import Request

    body = await request.body()
    gzipped = request.headers.get("Content-Encoding") == "gzip"
    try:
        payload = json.loads(gzip.decompress(body) if gzipped else body)
        sql = payload["sqlText"]
    except (ValueError, TypeError, KeyError, OSError):
        return request  # fakesnow answers whatever this is
    if not isinstance(sql, str) or not _COPY_PREFIX.match(sql):
        return request
    fixed = _COPY_QUOTED_STAGE.sub(r"\1\2", sql, count=1)
    if fixed == sql:
        return request
    payload["sqlText"] = fixed
    new_body = json.dumps(payload).encode("utf-8")
    if gzipped:
        new_body = gzip.compress(new_body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": new_body, "more_body": False}

    return Request(request.scope, receive)


class SnowflakeDouble:
    """fakesnow behind password and key-pair authentication, served on 127.0.0.1.

    Args:
        account: the account name clients pass to ``connect``; JWTs must name it.
    """

    def __init__(self, *, account: str = DEFAULT_ACCOUNT) -> None:
        self._account = account
        self._registry = _Registry()
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
            _AuthApp(self._registry, self._account),
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
        user = _User(None if password is None else _digest(password))
        if public_key is not None:
            user.keys[1] = _load_key(public_key)
        with self._registry.lock:
            if _norm(name) in self._registry.users:
                raise ValueError(f"user {name!r} is already registered with the Snowflake double")
            self._registry.users[_norm(name)] = user

    def set_password(self, name: str, password: str | None) -> None:
        """Replaces the password (None removes it); the old one stops working at once.

        Raises:
            KeyError: no such user.
        """
        with self._registry.lock:
            self._registry.user(name).password_digest = (
                None if password is None else _digest(password)
            )

    def set_public_key(self, name: str, key: Any, *, slot: int = 1) -> None:
        """Sets RSA_PUBLIC_KEY (slot 1) or RSA_PUBLIC_KEY_2 (slot 2); either may sign.

        Raises:
            KeyError: no such user.
            ValueError: slot is not 1 or 2.
            TypeError: the key is not an RSA or supported EC public key.
        """
        _check_slot(slot)
        loaded = _load_key(key)
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
            del self._registry.users[_norm(name)]
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
            None if user is None else _norm(user), renewable=renewable
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
            return self._registry.logins.get(_norm(user), 0)

    def failed_login_count(self, user: str) -> int:
        """Refused logins (wrong credentials) for ``user``; injected failures excluded."""
        with self._registry.lock:
            return self._registry.failed.get(_norm(user), 0)

    def _drop_fakesnow_sessions(self, tokens: list[str]) -> None:
        sessions = _fakesnow_server().sessions
        # Dropped, not closed: a query may still be running on one in the server's
        # threads; the DuckDB cursor closes when the last reference goes.
        for token in tokens:
            sessions.pop(token, None)


def _check_slot(slot: int) -> None:
    if slot not in (1, 2):
        raise ValueError(f"slot must be 1 (RSA_PUBLIC_KEY) or 2 (RSA_PUBLIC_KEY_2), not {slot}")
