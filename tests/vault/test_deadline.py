"""The whole-answer deadline of gds_vault/_deadline.py, and the urllib3 internals it needs.

``_deadline.install`` swaps a session's urllib3 pool classes for subclasses whose
connections read each response through a socket bounded by the call's deadline. That
rests on internals of urllib3 and http.client (listed in ``_RELIED_ON`` below). These
tests fail with a message naming what changed, so an upgrade that breaks the trick
fails here, not silently in production (where each answer would again be bounded per
read only). The trickle rows of tests/reliability/test_fault_matrix.py check the same
against OpenBao through the fault proxy; these need no server but a loopback socket.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from gds_vault import _deadline

pytestmark = pytest.mark.timeout(30)

_WHAT_TO_DO = (
    f"(urllib3 {urllib3.__version__}, requests {requests.__version__}). "
    "gds_vault/_deadline.py relies on it to bound each whole answer from Vault: adapt "
    "_deadline.install() to this version, or narrow the urllib3 range in pyproject.toml."
)
BODY = b'{"data": {"value": "' + b"x" * 200 + b'"}}'
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n"
)


class TrickleServer:
    """A loopback HTTP/1.1 server answering every request with HEAD + BODY, keep-alive.

    ``trickle`` says which part goes out one byte every ``pause`` seconds: "none",
    "head" or "body". ``connections`` counts the TCP connections accepted.
    """

    def __init__(self, trickle: str, pause: float = 0.02) -> None:
        self.trickle, self.pause = trickle, pause
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/x"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            pending = b""
            while not self._stopped.is_set():
                while b"\r\n\r\n" not in pending:
                    data = conn.recv(4096)
                    if not data:
                        return
                    pending += data
                _, _, pending = pending.partition(b"\r\n\r\n")
                for part, name in ((HEAD, "head"), (BODY, "body")):
                    if self.trickle != name:
                        conn.sendall(part)
                        continue
                    for index in range(len(part)):
                        if self._stopped.is_set():
                            return
                        conn.sendall(part[index : index + 1])
                        time.sleep(self.pause)

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., TrickleServer]]:
    servers: list[TrickleServer] = []

    def start(trickle: str, pause: float = 0.02) -> TrickleServer:
        server = TrickleServer(trickle, pause)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A session as Transport builds it, as far as the deadline goes."""
    with requests.Session() as s:
        s.trust_env = False
        _deadline.install(s)
        yield s


# -- the internals relied on, each with what broke ------------------------------------------


def test_pool_manager_still_chooses_pools_by_scheme():
    """requests' adapters own a urllib3 PoolManager whose pool_classes_by_scheme it consults."""
    manager = requests.adapters.HTTPAdapter().poolmanager
    classes = getattr(manager, "pool_classes_by_scheme", None)
    by_scheme = isinstance(classes, dict) and {"http", "https"} <= set(classes)
    assert by_scheme, (
        "urllib3's PoolManager no longer has a pool_classes_by_scheme dict for http and "
        f"https {_WHAT_TO_DO}"
    )
    assert isinstance(classes, dict)
    assert issubclass(classes["http"], HTTPConnectionPool), _WHAT_TO_DO
    assert issubclass(classes["https"], HTTPSConnectionPool), _WHAT_TO_DO


def test_pools_still_build_connections_from_connection_cls():
    """urllib3's pools name the class of their connections in ConnectionCls, an
    http.client.HTTPConnection whose getresponse reads through the socket's makefile."""
    for pool in (HTTPConnectionPool, HTTPSConnectionPool):
        cls = getattr(pool, "ConnectionCls", None)
        an_http_connection = isinstance(cls, type) and issubclass(cls, http.client.HTTPConnection)
        assert an_http_connection, (
            f"urllib3's {pool.__name__}.ConnectionCls is no longer an http.client."
            f"HTTPConnection subclass {_WHAT_TO_DO}"
        )
        assert callable(getattr(cls, "getresponse", None)), _WHAT_TO_DO
    assert http.client.HTTPConnection.response_class is http.client.HTTPResponse, (
        "http.client.HTTPConnection no longer builds an http.client.HTTPResponse, which "
        f"reads through sock.makefile() {_WHAT_TO_DO}"
    )


def test_install_puts_bounded_pools_in_place(session):
    """After install(), the pool a session picks for each scheme builds bounded connections."""
    for url in ("http://127.0.0.1:1/", "https://127.0.0.1:1/"):
        pool = session.get_adapter(url).poolmanager.connection_from_url(url)
        assert type(pool).__name__.startswith("Bounded"), (
            f"the session's pool for {url} is a {type(pool).__name__}, not the pool "
            f"install() set: the PoolManager no longer uses pool_classes_by_scheme {_WHAT_TO_DO}"
        )
        assert pool.ConnectionCls.__name__.startswith("Bounded"), _WHAT_TO_DO


# -- the behaviour: a whole answer bounded, head and body ------------------------------------


@pytest.mark.parametrize("trickle", ["head", "body"])
def test_a_trickled_answer_stops_at_the_deadline(serve, session, trickle):
    """An answer whose head or body comes a byte every 20 ms (each read well within the
    per-read timeout, the whole about 2-4 s) stops at the 0.3 s deadline as a timeout."""
    server = serve(trickle)
    started = time.monotonic()
    error: requests.exceptions.RequestException | None = None
    with _deadline.bounded(started + 0.3):
        try:
            session.get(server.url, timeout=2.0).json()
        except requests.exceptions.RequestException as exc:
            error = exc
    took = time.monotonic() - started
    stopped_in_time = error is not None and took < 1.0
    assert stopped_in_time, (
        f"a trickled {trickle} held the call {took:.1f} s with a 0.3 s deadline: the "
        f"connection no longer reads the response through the bounded socket {_WHAT_TO_DO}"
    )
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, TimeoutError):
        seen = seen.__cause__ or seen.__context__
    assert isinstance(seen, TimeoutError), f"not a timeout: {error!r}"


def test_answers_within_the_deadline_read_whole_and_reuse_the_connection(serve, session):
    """Prompt answers under a deadline arrive whole, and the pooled connection gets its own
    socket back (two requests, one TCP connection)."""
    server = serve("none")
    for _ in range(2):
        with _deadline.bounded(time.monotonic() + 5.0):
            response = session.get(server.url, timeout=2.0)
        assert response.content == BODY
    assert server.connections == 1, (
        "a bounded response left its connection unusable (a new TCP connection per "
        f"request): http.client no longer keeps HTTPConnection.sock as set {_WHAT_TO_DO}"
    )


def test_without_a_deadline_reads_are_bounded_per_read_only(serve, session):
    """Outside bounded(), a trickled body is read whole: the swap changes nothing else."""
    server = serve("body", pause=0.002)
    assert session.get(server.url, timeout=2.0).content == BODY
