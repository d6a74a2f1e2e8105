"""A small TCP load balancer on loopback, in front of the nodes of a Vault cluster.

::

    with TcpBalancer([("127.0.0.1", p1), ("127.0.0.1", p2), ("127.0.0.1", p3)]) as lb:
        client = VaultClient(lb.addr, ...)

Each new client connection goes to the next backend in turn that accepts a TCP
connection (a dead node is skipped, as a balancer's TCP health check would), and stays
there for its whole life: a client's kept-alive connection is pinned to one node, which
is what makes a standby's redirects matter. ``prefer=i`` sends every connection to node
``i`` while it accepts. ``add_header`` inserts a header line into every HTTP request
passing through (e.g. ``X-Vault-No-Request-Forwarding: true``, which makes a standby
answer 307 instead of forwarding). ``connections`` lists the backend index of every
connection made.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from tests.reliability.faultproxy import _REQUEST_LINE

_CHUNK = 65536


class TcpBalancer:
    """Round-robin TCP forwarding from ``127.0.0.1:<port>`` to ``backends``."""

    def __init__(
        self,
        backends: list[tuple[str, int]],
        *,
        prefer: int | None = None,
        add_header: str | None = None,
    ) -> None:
        self.backends = backends
        self.prefer = prefer
        self._header = add_header.encode() + b"\r\n" if add_header else b""
        self.connections: list[int] = []
        self._next = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, name="balancer", daemon=True)

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpBalancer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(5)

    def __enter__(self) -> TcpBalancer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _order(self) -> list[int]:
        """Backends to try for the next connection, in turn (the preferred one first)."""
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.backends)
        order = [(start + i) % len(self.backends) for i in range(len(self.backends))]
        if self.prefer is not None:
            order.remove(self.prefer)
            order.insert(0, self.prefer)
        return order

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                readable, _, _ = select.select([self._listener], [], [], 0.05)
                if not readable:
                    continue
                client, _ = self._listener.accept()
            except (OSError, ValueError):
                continue  # closed by stop()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for index in self._order():
            try:
                upstream = socket.create_connection(self.backends[index], timeout=2)
            except OSError:
                continue  # that node is down: try the next, as a health check would
            upstream.settimeout(None)
            self.connections.append(index)
            return upstream
        return None

    def _serve(self, client: socket.socket) -> None:
        upstream = self._connect()
        if upstream is None:
            client.close()  # no node is up
            return
        with self._lock:
            self._open.update((client, upstream))
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.05)
                if client in readable:
                    data = client.recv(_CHUNK)
                    if not data:
                        break
                    if self._header and _REQUEST_LINE.match(data):
                        line_end = data.index(b"\r\n") + 2
                        data = data[:line_end] + self._header + data[line_end:]
                    upstream.sendall(data)
                if upstream in readable:
                    data = upstream.recv(_CHUNK)
                    if not data:
                        break
                    client.sendall(data)
        except OSError:
            pass  # a side went away (a node killed): the client sees its connection end
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()
