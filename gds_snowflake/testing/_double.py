"""A Snowflake double for the tests and the demo: fakesnow behind real authentication.

PLACEHOLDER
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import queue
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from gds_snowflake.testing._registry import public_key_fingerprint

__all__ = ["RENEWAL_FAILURE_BODIES", "SnowflakeDouble", "public_key_fingerprint"]

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "testaccount"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # seconds for the server process to import fakesnow and answer
STOP_TIMEOUT = 5.0  # seconds for the server process to exit before it is killed
CONTROL_TIMEOUT = 30.0  # seconds for one control call
RENEWAL_FAILURE_BODIES = ("data", "null")  # as gds_snowflake.testing._app has them
_CONTROL_PREFIX = "/gds-double/v1/"  # as gds_snowflake.testing._server serves it
_TOKEN_HEADER = "X-Gds-Double-Token"
_ERRORS: dict[str, type[Exception]] = {
    "KeyError": KeyError,
    "ValueError": ValueError,
    "TypeError": TypeError,
}
# Started with -I (isolated: no PYTHONPATH, user site or current directory), the server
# imports gds_snowflake from the same files as this process, whatever else its
# interpreter has installed.
_BOOTSTRAP = """\
import importlib.util, sys
location = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "gds_snowflake", location + "/__init__.py", submodule_search_locations=[location]
)
module = importlib.util.module_from_spec(spec)
sys.modules["gds_snowflake"] = module
spec.loader.exec_module(module)
from gds_snowflake.testing._server import main
sys.exit(main(sys.argv[2:]))
"""


class SnowflakeDouble:
    """fakesnow behind password and key-pair authentication, served on 127.0.0.1.

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
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._token = ""
        self._log_path: Path | None = None
        self._python: str | None = None
        self._finalizer: weakref.finalize | None = None

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
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        """The server process's log (its stderr) while it runs; None before and after."""
        return self._log_path

    @property
    def python(self) -> str | None:
        """The interpreter serving the double (see ``gds_snowflake.testing._environment``)."""
        return self._python

    def connect_kwargs(self) -> dict[str, Any]:
        """``snowflake.connector.connect`` arguments that reach this double.

        Returns:
            ``account``, ``host``, ``port`` and ``protocol`` ("http"), and, where the
            installed connector uses it, ``platform_detection_timeout_seconds=0.0``;
            add the user and the credentials.
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
            RuntimeError: already running, or the server did not come up within
                ``STARTUP_TIMEOUT`` (60 s); the message has the end of its log.
            gds_snowflake.testing._environment.DoubleEnvironmentError: its environment
                could not be built.
        """
        import gds_snowflake
        from gds_snowflake.testing._environment import server_interpreter

        if self.running:
            raise RuntimeError("the Snowflake double is already running")
        self._python = server_interpreter()
        handle, name = tempfile.mkstemp(prefix="snowflake-double-", suffix=".log")
        self._log_path = Path(name)
        package = str(Path(gds_snowflake.__file__).resolve().parent)
        with open(handle, "wb", closefd=True) as log:
            self._process = subprocess.Popen(
                [
                    self._python,
                    "-I",
                    "-c",
                    _BOOTSTRAP,
                    package,
                    "--account",
                    self._account,
                    "--renewal-failure-body",
                    self._renewal_failure_body,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self._finalizer = weakref.finalize(self, _end_process, self._process, self._log_path)
        try:
            handshake = self._read_handshake(time.monotonic() + STARTUP_TIMEOUT)
            self._port, self._token = int(handshake["port"]), str(handshake["control_token"])
            self._call("ping")
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Snowflake double serving account %s on %s:%s (pid %s)",
            self._account,
            HOST,
            self._port,
            self._process.pid,
        )
        return self

    def _read_handshake(self, deadline: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(
            target=lambda: lines.put(process.stdout.readline()),  # type: ignore[union-attr]
            name="snowflake-double-handshake",
            daemon=True,
        ).start()
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = b""
        try:
            handshake = json.loads(line)
            if isinstance(handshake, dict):
                return handshake
        except ValueError:
            pass
        state = "exited" if process.poll() is not None else f"no answer in {STARTUP_TIMEOUT} s"
        raise RuntimeError(
            f"the Snowflake double's server did not start ({state}; interpreter "
            f"{self._python}). The end of its log:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        if self._log_path is None:
            return ""
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stops the server process and deletes its log; a no-op when not running."""
        if self._finalizer is not None:
            self._finalizer()  # ends the process (see _end_process) once
        self._process, self._finalizer, self._log_path = None, None, None

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
        if not self.running:
            raise RuntimeError("the Snowflake double is not running: start() it first")
        # http.client, not requests/urllib: no proxy variable applies to loopback calls.
        conn = http.client.HTTPConnection(HOST, self.port, timeout=CONTROL_TIMEOUT)
        try:
            conn.request(
                "POST",
                _CONTROL_PREFIX + operation,
                body=json.dumps(arguments),
                headers={"Content-Type": "application/json", _TOKEN_HEADER: self._token},
            )
            response = conn.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status == 200:
            return answer.get("result")
        error = _ERRORS.get(str(answer.get("error")), RuntimeError)
        raise error(str(answer.get("message", f"control call {operation} failed")))

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

    def failed_login_count(self, user: str) -> int:
        """Refused logins (wrong credentials) for ``user``; injected failures excluded."""
        count: int = self._call("failed_login_count", user=user)
        return count


def _end_process(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Close the server's stdin (its signal to stop), wait, then kill if need be."""
    try:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    finally:
        if process.stdout is not None:
            process.stdout.close()
        log_path.unlink(missing_ok=True)


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
