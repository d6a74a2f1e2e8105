"""A fault-injecting TCP proxy on loopback, for putting network faults between a client
and a real server.

::

    with FaultProxy(("127.0.0.1", vault_port)) as proxy:
        client = VaultClient(proxy.addr, ...)
        proxy.set("refuse")              # connection refused (nothing listens)
        proxy.set("reset", times=1)      # the next response is cut half-way with a RST
        proxy.set("delay", seconds=2)    # each response held back 2 s
        proxy.set("blackhole")           # requests swallowed, never answered
        proxy.set("trickle", seconds=0.05)  # answers sent one byte every 50 ms
        proxy.set("pass")                # a transparent proxy again

``times=n`` applies a fault to the next ``n`` requests only, then passes through again.
Faults apply per request, so a client's kept-alive connection sees them too. "refuse"
closes the listening socket and resets every open connection, as a server that went down
would; any later mode listens again on the same port.

``requests_seen`` lists ``(mode, method, path)`` for every request the proxy read.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
import time

MODES = ("pass", "refuse", "reset", "delay", "blackhole", "trickle")
_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|DELETE|LIST|PATCH|HEAD) (\S+) HTTP/1\.[01]\r\n")
_CHUNK = 65536


def _hard_close(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forwards TCP connections from ``127.0.0.1:<port>`` to ``upstream``, with faults."""

    def __init__(self, upstream: tuple[str, int], *, scheme: str = "http") -> None:
        self.upstream = upstream
        self.scheme = scheme
        self.port = 0
        self.requests_seen: list[tuple[str, str, str]] = []
        self._mode = "pass"
        self._seconds = 0.0
        self._times: int | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._acceptor: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def addr(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._listen()
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self._reset_all()
        if self._acceptor is not None:
            self._acceptor.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------
    def set(self, mode: str, *, seconds: float = 0.0, times: int | None = None) -> None:
        """Switch to ``mode`` (see the module doc), for ``times`` requests or until changed."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {MODES}")
        with self._lock:
            self._mode, self._seconds, self._times = mode, seconds, times
        if mode == "refuse":
            self._close_listener()
            self._reset_all()
        elif self._listener is None and not self._stopped.is_set():
            self._listen()

    @property
    def mode(self) -> str:
        return self._mode

    def count(self, path_part: str = "", mode: str | None = None) -> int:
        """Requests seen whose path contains ``path_part`` (and under ``mode``, if given)."""
        return sum(
            1
            for seen_mode, _, path in list(self.requests_seen)
            if path_part in path and (mode is None or seen_mode == mode)
        )

    def _take_mode(self) -> tuple[str, float]:
        """The fault for the request starting now, counting down ``times``."""
        with self._lock:
            mode, seconds = self._mode, self._seconds
            if self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._mode, self._seconds, self._times = "pass", 0.0, None
            return mode, seconds

    # -- sockets ---------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # the port may be in TIME_WAIT for a moment after "refuse"
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.02)
        else:
            listener.close()
            raise RuntimeError(f"fault proxy could not listen on port {self.port} again")
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _reset_all(self) -> None:
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            _hard_close(sock)

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(0.01)
                continue
            try:
                readable, _, _ = select.select([listener], [], [], 0.05)
                if not readable:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                continue  # closed under us by "refuse" or stop()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # One thread per connection, both directions: closing a socket that another
        # thread is blocked on would not send the RST until that thread returned.
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _hard_close(client)
            return
        self._track(client, upstream)
        mode, seconds = "pass", 0.0
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.05)
                if client in readable:
                    data = client.recv(_CHUNK)
                    if not data:
                        break
                    match = _REQUEST_LINE.match(data)
                    if match:
                        mode, seconds = self._take_mode()
                        self.requests_seen.append(
                            (mode, match.group(1).decode(), match.group(2).decode())
                        )
                    if mode != "blackhole":  # swallowed: no answer ever comes
                        upstream.sendall(data)
                if upstream in readable:
                    data = upstream.recv(_CHUNK)
                    if not data:
                        break
                    if mode == "reset":
                        client.sendall(data[: max(1, len(data) // 2)])
                        break
                    if mode == "delay":
                        time.sleep(seconds)
                    if mode == "trickle":
                        for index in range(len(data)):
                            client.sendall(data[index : index + 1])
                            time.sleep(seconds)
                    else:
                        client.sendall(data)
        except (OSError, ValueError):
            pass  # a side closed, or "refuse" reset everything
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)
        _hard_close(upstream)
        if mode == "reset":
            _hard_close(client)
        else:
            with contextlib.suppress(OSError):
                client.close()
