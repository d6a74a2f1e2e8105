"""The Snowflake double's server process, seen from the process that uses the double.

:class:`ServerProcess` starts ``gds_snowflake.testing._server`` with the interpreter
``gds_snowflake.testing._environment`` chooses (building that environment on first
use), reads the one-line handshake (port and control token), makes control calls, and
stops the process: it closes the process's stdin, which the server takes as the signal
to stop (so it also stops when this process dies), waits, then kills it if need be.
The server's stderr goes to a temporary log file, whose end is quoted when the server
fails to start and which is deleted when it stops.

The server is started with ``-I`` (isolated mode: no PYTHONPATH, user site-packages or
current directory) and imports ``gds_snowflake`` by file location from this process's
copy of the package, so it runs the same code as this process whatever else its
interpreter has installed.
"""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

__all__ = ["HOST", "ServerProcess"]

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # seconds for the server process to import fakesnow and answer
STOP_TIMEOUT = 5.0  # seconds for the server process to exit before it is killed
CONTROL_TIMEOUT = 30.0  # seconds for one control call
_CONTROL_PREFIX = "/gds-double/v1/"  # as gds_snowflake.testing._server serves it
_TOKEN_HEADER = "X-Gds-Double-Token"  # noqa: S105 - a header's name
_ERRORS: dict[str, type[Exception]] = {
    "KeyError": KeyError,
    "ValueError": ValueError,
    "TypeError": TypeError,
}
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


class ServerProcess:
    """One running server process: its port, its control calls, its log.

    Args:
        arguments: Command-line arguments for ``gds_snowflake.testing._server``.

    Raises:
        RuntimeError: The server did not start within ``STARTUP_TIMEOUT`` (60 s); the
            message has the end of its log.
        gds_snowflake.testing._environment.DoubleEnvironmentError: Its environment
            could not be built.
    """

    def __init__(self, arguments: list[str]) -> None:
        import gds_snowflake
        from gds_snowflake.testing._environment import server_interpreter

        self.python = server_interpreter()
        handle, name = tempfile.mkstemp(prefix="snowflake-double-", suffix=".log")
        self.log_path: Path | None = Path(name)
        package = str(Path(gds_snowflake.__file__).resolve().parent)
        with open(handle, "wb", closefd=True) as log:
            self._process = subprocess.Popen(
                [self.python, "-I", "-c", _BOOTSTRAP, package, *arguments],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        # Ends the process once, whether stop() is called or this object is collected.
        self._finalizer = weakref.finalize(self, _end, self._process, self.log_path)
        try:
            handshake = self._read_handshake(time.monotonic() + STARTUP_TIMEOUT)
            self.port = int(handshake["port"])
            self._token = str(handshake["control_token"])
            self.call("ping")
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self._process.poll() is None

    def _read_handshake(self, deadline: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(
            target=lambda: lines.put(stdout.readline()),
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
        state = (
            "exited" if self._process.poll() is not None else f"no answer in {STARTUP_TIMEOUT} s"
        )
        raise RuntimeError(
            f"the Snowflake double's server did not start ({state}; interpreter "
            f"{self.python}). The end of its log:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
        except (OSError, AttributeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def call(self, operation: str, **arguments: Any) -> Any:
        """One control call; the server's KeyError/ValueError/TypeError raised here."""
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

    def stop(self) -> None:
        """End the process and delete its log; a no-op the second time."""
        self._finalizer()
        self.log_path = None


def _end(process: subprocess.Popen[bytes], log_path: Path) -> None:
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
