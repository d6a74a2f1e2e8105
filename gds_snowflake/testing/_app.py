"""The Snowflake double's ASGI app: our login, renewal and expiry in front of fakesnow.

It runs in the double's server process (``gds_snowflake.testing._server``). What it adds
to fakesnow's routes (what each connector line then raises is in the module docstring of
``gds_snowflake.testing._double``, and pinned by ``tests/snowflake/test_double.py``):

- Login (``POST /session/v1/login-request``) succeeds only for a registered user with the
  right password, or with a key-pair JWT (``AUTHENTICATOR=SNOWFLAKE_JWT``) signed RS256
  (RSA) or ES256/ES384/ES512 (EC P-256/P-384/P-521, which the connector picks by curve)
  by one of the user's two registered public keys, whose ``iss`` is
  ``ACCOUNT.USER.SHA256:<fingerprint>`` and ``sub`` is ``ACCOUNT.USER``, living at most
  an hour. Failures are Snowflake's own error bodies (HTTP 200, ``success: false``):
  390100 "Incorrect username or password was specified." for a password or an unknown
  user; 390144 "JWT token is invalid." for any key-pair failure (unknown user included,
  as Snowflake does not tell). A programmatic access token
  (``AUTHENTICATOR=PROGRAMMATIC_ACCESS_TOKEN``, the token in ``TOKEN``) or an OAuth
  access token (``AUTHENTICATOR=OAUTH``) is checked against the user's tokens
  (``_token_store``): a refused PAT answers 394400 "Programmatic access token is
  invalid.", a refused OAuth token 390303 "Invalid OAuth access token." or, expired,
  390318 "OAuth access token expired.".
- With ``accept_postgres_users`` (``gds_snowflake.testing._postgres``), a password login
  of a user the double does not know is tried on PostgreSQL, and a request of such a
  user's session first checks that the role still exists: when it is gone (Vault
  revoked the lease) the user's sessions expire, not renewably.
- Requests carrying an expired session token answer 390112; ``/session/token-request``
  renews a renewable session (new session and master tokens, the same ``sessionId``,
  which 5.x requires) or answers 390114, its ``data`` an object or null as the registry
  says (``RENEWAL_FAILURE_BODIES``).
- fakesnow's HTTP 500 answers become Snowflake SQL errors (261000), in a COPY statement
  write_pandas's quoted ``FROM '@"STAGE"'`` is unquoted, and a PUT's stage info gets the
  ``region`` and signed-header list 5.x requires; ``gds_snowflake.testing._double``
  explains why.
"""

from __future__ import annotations

import gzip
import hmac
import importlib
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from gds_snowflake.testing._registry import Registry, norm
from gds_snowflake.testing._token_store import EXPIRED, OK

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

__all__ = ["RENEWAL_FAILURE_BODIES", "AuthApp", "fakesnow_server"]

logger = logging.getLogger(__name__)

SESSION_VALIDITY = 3600  # seconds, what the login response announces for the session token
MASTER_VALIDITY = 14400  # seconds, for the master token (Snowflake's defaults: 1 h and 4 h)
JWT_LEEWAY = 60  # seconds of clock skew tolerated on a JWT's iat and exp
JWT_MAX_LIFETIME = 3600  # seconds; Snowflake rejects a JWT whose exp is further than 1 h away

BAD_PASSWORD = ("390100", "Incorrect username or password was specified.")
BAD_JWT = ("390144", "JWT token is invalid.")
# Snowflake's bodies for refused tokens (see gds_snowflake._tokens for the sources).
BAD_PAT = ("394400", "Programmatic access token is invalid.")
BAD_OAUTH = ("390303", "Invalid OAuth access token.")
EXPIRED_OAUTH = ("390318", "OAuth access token expired.")
# The login's AUTHENTICATOR -> (the token kind in the registry, authnMethod in a refusal)
TOKEN_AUTHENTICATORS = {"PROGRAMMATIC_ACCESS_TOKEN": ("pat", "PAT"), "OAUTH": ("oauth", "OAUTH")}
SESSION_EXPIRED = ("390112", "Your session has expired. Please login again.")
MASTER_EXPIRED = (
    "390114",
    "Authentication token has expired.  The user must authenticate again.",
)
SERVER_FAULT = "261000"
# A failed renewal's answer: "data" carries an object ({"errorCode": ..., "nextAction":
# null}) as Snowflake's other error answers do; "null" carries "data": null.
RENEWAL_FAILURE_BODIES = ("data", "null")
STAGE_REGION = "US-CENTRAL1"  # what a PUT's stage info names (fakesnow leaves it out)
# What a real GCS V4 presigned URL for a conditional upload lists; 5.x checks for it
# before a PUT without OVERWRITE. fakesnow's upload route ignores the query string.
_SIGNED_HEADERS = "X-Goog-SignedHeaders=" + "%3B".join(
    ("host", "x-goog-if-generation-match", "x-goog-meta-sfc-digest")
)

_LOGIN_PATH = "/session/v1/login-request"
_RENEW_PATH = "/session/token-request"
_QUERY_PATH = "/queries/v1/query-request"
_TOKEN_HEADER = re.compile(r'^Snowflake Token="(?P<token>[^"]*)"$')
_COPY_PREFIX = re.compile(r"\s*COPY\s+INTO\s", re.IGNORECASE)
# write_pandas's load: COPY INTO t (...) FROM (SELECT $1:"A", ... FROM '@"STAGE"') ...
_COPY_QUOTED_STAGE = re.compile(
    r"(\bFROM\s*\(\s*SELECT\s.*?\bFROM\s+)'(@[^'\s]+)'", re.IGNORECASE | re.DOTALL
)


def fakesnow_server() -> Any:
    # The module, by import_module: the fakesnow package also has a function named server.
    return importlib.import_module("fakesnow.server")


def _error(code_and_message: tuple[str, str], *, with_data: bool = True, **data: Any) -> Response:
    from starlette.responses import JSONResponse

    code, message = code_and_message
    body = {
        "data": {"errorCode": code, "nextAction": None, **data} if with_data else None,
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


class AuthApp:
    """The ASGI app: our login, renewal and expiry in front of fakesnow's routes."""

    def __init__(self, registry: Registry, account: str) -> None:
        self._registry = registry
        self._account = account.partition(".")[0].upper()
        self._fakesnow: Any = fakesnow_server()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request

        if scope["type"] != "http":
            await self._fakesnow.app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = scope["path"]
        token = _header_token(request)
        response: Response
        if token is not None and path != _LOGIN_PATH:
            await self._end_sessions_of_dropped_role(token)
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
        name = norm(str(data.get("LOGIN_NAME") or ""))
        authenticator = str(data.get("AUTHENTICATOR") or "").upper()
        refusal: dict[str, Any] = {"loginName": name}
        if authenticator == "SNOWFLAKE_JWT":
            method, failure = "key pair", BAD_JWT
            accepted = self._check_jwt(name, data.get("TOKEN"))
            refusal["authnMethod"] = "KEY_PAIR"
        elif authenticator in TOKEN_AUTHENTICATORS:
            kind, refusal["authnMethod"] = TOKEN_AUTHENTICATORS[authenticator]
            method = f"{kind} token"
            verdict = self._registry.check_token(name, kind, data.get("TOKEN"))
            accepted = verdict == OK
            if kind == "pat":
                failure = BAD_PAT
                refusal.update(nextAction="RETRY_LOGIN", signInOptions={})
            else:
                failure = EXPIRED_OAUTH if verdict == EXPIRED else BAD_OAUTH
        else:
            method, failure = "password", BAD_PASSWORD
            accepted = self._registry.check_password(name, data.get("PASSWORD"))
            refusal["authnMethod"] = "PASSWORD"
            if not accepted and self._registry.postgres is not None:
                accepted = await self._postgres_login(name, data)
        if not accepted:
            self._registry.count_failure(name)
            logger.debug("Snowflake double: %s login refused for %s", method, name)
            return _error(failure, **refusal)

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

    async def _postgres_login(self, name: str, data: dict[str, Any]) -> bool:
        """A user the double does not know, tried on PostgreSQL (see _postgres)."""
        from starlette.concurrency import run_in_threadpool

        with self._registry.lock:
            if name in self._registry.users:
                return False  # registered here: its own password decides
        role = str(data.get("LOGIN_NAME") or "")
        accepted = await run_in_threadpool(
            self._registry.postgres.check_password, role, data.get("PASSWORD")
        )
        if accepted:
            with self._registry.lock:
                self._registry.postgres_names[name] = role
        return bool(accepted)

    async def _end_sessions_of_dropped_role(self, token: str) -> None:
        from starlette.concurrency import run_in_threadpool

        found = self._registry.postgres_role_of(token)
        if found is None:
            return
        user, role = found
        if await run_in_threadpool(self._registry.postgres.exists, role):
            return
        _, dead = self._registry.expire(user, renewable=False)
        for gone in dead:
            self._fakesnow.sessions.pop(gone, None)
        logger.debug("Snowflake double: PostgreSQL role %s is gone; its sessions expired", role)

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
            return _error(MASTER_EXPIRED, with_data=self._registry.renewal_failure_body == "data")
        old, token, new_master, session_id = renewed
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
                    "sessionId": session_id,  # the same session, renewed (5.x requires it)
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
            return _with_stage_region(response)
        # fakesnow's 500 means "unsupported or a fakesnow bug", not a transient fault;
        # the connector would retry a 500 for ever (network_timeout defaults to none).
        try:
            message = str(json.loads(bytes(response.body)).get("message"))
        except ValueError:
            message = "Unhandled exception"
        hint = " (in fakesnow; the 'fakesnow.server' logger has the traceback)"
        return _error((SERVER_FAULT, message + hint))


def _with_stage_region(response: Response) -> Response:
    """A PUT's answer with the GCS stage's ``region``, which 5.x requires and 4.x ignores.

    fakesnow has the client upload a PUT's file to itself through a GCS-style presigned
    URL, and leaves out the stage's region; connector 5.x refuses such an answer ("stage
    info -> region").
    """
    from starlette.responses import JSONResponse

    body = bytes(response.body)
    if b'"stageInfo"' not in body:
        return response
    payload = json.loads(body)
    stage = (payload.get("data") or {}).get("stageInfo")
    if not isinstance(stage, dict) or stage.get("region"):
        return response
    stage["region"] = STAGE_REGION
    url = stage.get("presignedUrl")
    if isinstance(url, str) and "X-Goog-SignedHeaders" not in url:
        stage["presignedUrl"] = url + ("&" if "?" in url else "?") + _SIGNED_HEADERS
    return JSONResponse(payload, status_code=response.status_code)


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
