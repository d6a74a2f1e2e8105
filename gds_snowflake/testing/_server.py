"""The Snowflake double's server process: fakesnow, our auth layer and a control API.

``SnowflakeDouble.start()`` (in ``gds_snowflake.testing._double``) runs this module in a
process of its own, with an interpreter that can import fakesnow (see
``gds_snowflake.testing._environment``): fakesnow 0.12 imports connector internals
that connector 5.x removed, so it cannot live beside a 5.x client. The process:

1. binds a free port on 127.0.0.1 and serves, with uvicorn, the :class:`ControlApp`
   below in front of ``gds_snowflake.testing._app.AuthApp`` (our login, renewal and
   expiry) in front of fakesnow's server app;
2. prints one JSON line on stdout, ``{"port": ..., "control_token": ...}``, and from
   then on writes nothing more there (stdout goes to stderr, which is the log);
3. serves until its stdin reaches end of file (the parent closed it, or died) or it
   gets SIGTERM/SIGINT.

The control API is ``POST /gds-double/v1/<operation>`` with a JSON object of arguments
and the header ``X-Gds-Double-Token``; the answer is ``{"result": ...}``, or HTTP 400
with ``{"error": "<KeyError|ValueError|TypeError>", "message": ...}`` which the client
raises as that type. No password or token crosses it: the client sends SHA-256 digests.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import secrets
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gds_snowflake.testing._app import RENEWAL_FAILURE_BODIES, AuthApp, fakesnow_server
from gds_snowflake.testing._registry import Registry, User, load_key, norm
from gds_snowflake.testing._token_store import (
    add_token,
    expire_tokens,
    remove_tokens,
    rotate_token,
)

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

__all__ = ["CONTROL_PREFIX", "TOKEN_HEADER", "ControlApp", "main"]

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/gds-double/v1/"
TOKEN_HEADER = "X-Gds-Double-Token"  # noqa: S105 - a header's name
HOST = "127.0.0.1"
_DUCKDB_ARROW_WARNING = r"Arrow output on a DB-API result"


class ControlApp:
    """The control routes; everything else goes to the auth layer and fakesnow."""

    def __init__(self, registry: Registry, inner: Any, token: str) -> None:
        self._registry = registry
        self._inner = inner
        self._token = token
        self._operations: dict[str, Callable[..., Any]] = {
            "ping": _about_this_process,
            "register_user": self._register_user,
            "set_password": self._set_password,
            "set_public_key": self._set_public_key,
            "unset_public_key": self._unset_public_key,
            "drop_user": self._drop_user,
            "expire_sessions": self._expire_sessions,
            "fail_next_logins": self._fail_next_logins,
            "login_count": self._login_count,
            "failed_login_count": self._failed_login_count,
            "set_renewal_failure_body": self._set_renewal_failure_body,
            "accept_postgres_users": self._accept_postgres_users,
            "add_token": self._add_token,
            "rotate_token": self._rotate_token,
            "remove_tokens": self._remove_tokens,
            "expire_tokens": self._expire_tokens,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CONTROL_PREFIX):
            await self._inner(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        request = Request(scope, receive)
        status, body = self._dispatch(
            scope["path"][len(CONTROL_PREFIX) :],
            request.headers.get(TOKEN_HEADER, ""),
            await request.body(),
        )
        await JSONResponse(body, status_code=status)(scope, receive, send)

    def _dispatch(self, name: str, token: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return 403, {"error": "PermissionError", "message": "wrong control token"}
        operation = self._operations.get(name)
        if operation is None:
            return 404, {"error": "ValueError", "message": f"no control operation {name!r}"}
        try:
            arguments = json.loads(raw or b"{}")
            return 200, {"result": operation(**arguments)}
        except (KeyError, ValueError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return 400, {"error": type(exc).__name__, "message": str(message)}

    # -- operations (arguments as SnowflakeDouble sends them) ---------------------------
    def _register_user(
        self, name: str, password_digest: str | None, public_key: str | None
    ) -> None:
        user = User(None if password_digest is None else bytes.fromhex(password_digest))
        if public_key is not None:
            user.keys[1] = load_key(public_key)
        with self._registry.lock:
            if norm(name) in self._registry.users:
                raise ValueError(f"user {name!r} is already registered with the Snowflake double")
            self._registry.users[norm(name)] = user
        logger.debug("Snowflake double: registered user %s", norm(name))

    def _set_password(self, name: str, password_digest: str | None) -> None:
        with self._registry.lock:
            self._registry.user(name).password_digest = (
                None if password_digest is None else bytes.fromhex(password_digest)
            )

    def _set_public_key(self, name: str, public_key: str, slot: int) -> None:
        loaded = load_key(public_key)
        with self._registry.lock:
            self._registry.user(name).keys[slot] = loaded

    def _unset_public_key(self, name: str, slot: int) -> None:
        with self._registry.lock:
            self._registry.user(name).keys.pop(slot, None)

    def _add_token(self, name: str, kind: str, token_name: str, digest: str) -> None:
        with self._registry.lock:
            add_token(self._registry.user(name).tokens, kind, token_name, digest)

    def _rotate_token(
        self, name: str, kind: str, token_name: str, digest: str, keep_old: bool
    ) -> None:
        with self._registry.lock:
            tokens = self._registry.user(name).tokens
            rotate_token(tokens, kind, token_name, digest, keep_old=keep_old)

    def _remove_tokens(self, name: str, kind: str, token_name: str | None) -> int:
        with self._registry.lock:
            return remove_tokens(self._registry.user(name).tokens, kind, token_name)

    def _expire_tokens(self, name: str, kind: str, token_name: str | None) -> int:
        with self._registry.lock:
            return expire_tokens(self._registry.user(name).tokens, kind, token_name)

    def _drop_user(self, name: str) -> int:
        with self._registry.lock:
            self._registry.user(name)
            del self._registry.users[norm(name)]
        return self._expire_sessions(name, renewable=False)

    def _expire_sessions(self, user: str | None, renewable: bool) -> int:
        count, dead = self._registry.expire(
            None if user is None else norm(user), renewable=renewable
        )
        drop_fakesnow_sessions(dead)
        return count

    def _fail_next_logins(self, n: int, status: int) -> None:
        with self._registry.lock:
            self._registry.pending_failures, self._registry.failure_status = n, status

    def _login_count(self, user: str) -> int:
        with self._registry.lock:
            return self._registry.logins.get(norm(user), 0)

    def _failed_login_count(self, user: str) -> int:
        with self._registry.lock:
            return self._registry.failed.get(norm(user), 0)

    def _set_renewal_failure_body(self, shape: str) -> None:
        if shape not in RENEWAL_FAILURE_BODIES:
            raise ValueError(f"renewal_failure_body must be one of {RENEWAL_FAILURE_BODIES}")
        with self._registry.lock:
            self._registry.renewal_failure_body = shape

    def _accept_postgres_users(
        self, host: str, port: int, database: str, monitor_user: str
    ) -> None:
        from gds_snowflake.testing._postgres import PostgresUsers

        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"PostgreSQL must be on loopback, not {host!r}")
        users = PostgresUsers(host, int(port), database, monitor_user)
        with self._registry.lock:
            old, self._registry.postgres = self._registry.postgres, users
        if old is not None:
            old.close()
        logger.info("Snowflake double: taking unknown users from PostgreSQL at %s:%s", host, port)


def _about_this_process() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "pid": os.getpid(),
        "python": sys.executable,
        "connector": version("snowflake-connector-python"),
        "fakesnow": version("fakesnow"),
    }


def drop_fakesnow_sessions(tokens: Sequence[str]) -> None:
    """Forget fakesnow's sessions for these tokens, so their data handles go."""
    sessions = fakesnow_server().sessions
    # Dropped, not closed: a query may still be running on one in the server's threads;
    # the DuckDB cursor closes when the last reference goes.
    for token in tokens:
        sessions.pop(token, None)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gds_snowflake.testing._server")
    parser.add_argument("--account", required=True)
    parser.add_argument("--renewal-failure-body", choices=RENEWAL_FAILURE_BODIES, default="data")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _exit_when_stdin_closes(server: Any) -> None:
    # The parent holds our stdin open for as long as it wants us; EOF means stop (it
    # closed it, or it died without stopping us).
    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            server.should_exit = True

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the double until stdin closes; returns the exit code."""
    import uvicorn

    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # duckdb 2.0 warns ("Arrow output on a DB-API result makes an extra copy") from
    # fakesnow's cursor on every query; nothing to act on, and noise in the log.
    warnings.filterwarnings(
        "ignore", message=_DUCKDB_ARROW_WARNING, category=UserWarning, module="fakesnow"
    )
    # Our own lines (each login accepted or refused, by user name) are the point of the log.
    logging.getLogger("gds_snowflake").setLevel(logging.DEBUG)
    registry = Registry()
    registry.renewal_failure_body = args.renewal_failure_body
    token = secrets.token_urlsafe(24)
    app = ControlApp(registry, AuthApp(registry, args.account), token)
    # fakesnow sets INFO on import (a line per login and statement); its warnings suffice.
    logging.getLogger("fakesnow.server").setLevel(logging.WARNING)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    # Listening before the handshake: the parent's first request waits in the backlog
    # until uvicorn accepts, instead of being refused.
    sock.listen(2048)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        interface="asgi3",
        lifespan="off",
        log_config=None,  # the logging configured above
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    _exit_when_stdin_closes(server)
    # The handshake: the one line the parent reads. Anything printed later goes to the log.
    sys.stdout.write(json.dumps({"port": port, "control_token": token}) + "\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logger.info("Snowflake double for account %s serving on %s:%s", args.account, HOST, port)
    server.run(sockets=[sock])
    drop_fakesnow_sessions(registry.drop_all_sessions())
    logger.info("Snowflake double on port %s stopped", port)
    return 0
