"""Limits on the whole of each HTTP answer: its time, not only each socket read's, and
its size.

``requests`` applies its timeout to the connect and to every single read, so a server or
proxy that trickles its answer, a byte well within the timeout each time, can hold a
call for as long as the answer lasts. :func:`install` gives a session's connection pools
a connection class whose response reads stop at the deadline that
:class:`~gds_vault._transport.Transport` sets for the call (``bounded(deadline)``): each
socket read waits at most until then, and a read starting after it fails with
``TimeoutError``, which urllib3 and requests report as a read timeout.

What this relies on, beyond public API (``urllib3>=1.26.5,<3`` is declared for it, and
tests/vault/test_deadline.py fails naming the piece that changed):

- requests' ``HTTPAdapter.poolmanager`` is a urllib3 ``PoolManager`` that picks the pool
  class for a scheme from ``pool_classes_by_scheme``, and ``HTTPAdapter.proxy_manager_for``
  returns the urllib3 ``ProxyManager`` (a ``PoolManager``) it uses for a proxy;
- a urllib3 pool builds its connections from its ``ConnectionCls``, an
  ``http.client.HTTPConnection`` subclass;
- ``http.client`` reads the status line, the headers and the body through the file that
  ``HTTPResponse.__init__`` gets from ``sock.makefile("rb")``, and sets ``sock`` to None
  when it closes the connection;
- an exception that is neither an ``OSError`` nor an ``HTTPException`` (here
  :class:`AnswerRefused`) passes through urllib3 and requests unwrapped, and urllib3
  closes the connection it came from (tests/security/test_answer_limits.py fails
  otherwise).

Why not read the body in a loop with the time left instead (``stream=True``, no
patching)? The head of the answer would stay bounded per read only: with the fault
proxy trickling a byte every 20 ms, one attempt with a 0.5 s timeout took 4.0 s in the
head alone (tests/reliability/test_fault_matrix.py's trickle row fails), and the loop
still needs the connection's socket to bound each read. Measured with
``python -m bench --only uncached``, neither costs anything visible (ours/hvac median
1.00-1.03 for both, 1.01 with no deadline at all).

**Size.** Within ``bounded(...)`` an answer may hold at most :data:`MAX_ANSWER_BYTES`
(16 MiB; Vault's answers are kilobytes, a LIST of 100,000 names about 5 MB): one whose
Content-Length says more is refused before its body is read, and the bytes read from the
socket (head and body) are counted, so an answer without Content-Length is cut off at the
limit. The client asks for no compression (``Accept-Encoding: identity``), and a
compressed answer is refused before it is inflated, since a few kilobytes of gzip can
inflate to gigabytes. Either raises :class:`AnswerRefused`, which no library layer in
between catches; the transport turns it into a ``VaultResponseError``. Counting costs one
addition per socket read (``python -m bench --only uncached``: no change visible).

``urllib3`` is imported in :func:`install`, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # bytes: the most one answer may hold, head included

_local = threading.local()


class AnswerRefused(Exception):
    """An answer the client will not read: larger than the limit, or compressed.

    Deliberately neither an ``OSError`` nor an ``http.client.HTTPException``, which urllib3
    and requests would wrap or retry: it reaches the transport as it is.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def bounded(deadline: float) -> Iterator[None]:
    """Within the block, responses read in this thread stop at ``deadline`` (monotonic)
    and at :data:`MAX_ANSWER_BYTES`."""
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = None


def _check_head(response: Any) -> None:
    """Refuse an answer from its headers: announced too large, or compressed."""
    headers = response.headers  # urllib3's HTTPHeaderDict (2.x) or http.client's (1.26)
    length = headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise AnswerRefused(
            f"an answer of {int(length)} bytes (Content-Length), more than the "
            f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB the client reads"
        )
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise AnswerRefused(
            f"a compressed answer ({encoding}) although the client asked for none; it is "
            "not inflated, since its size once inflated is unknown"
        )


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket's raw file, each read bounded by the time left."""

    def __init__(self, raw: Any, sock: Any, deadline: float) -> None:
        self._raw, self._sock, self._deadline = raw, sock, deadline
        self._per_read = sock.gettimeout()
        self._read = 0  # bytes so far, head and body: the size limit counts them all

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer took longer than the timeout")
        self._sock.settimeout(left if self._per_read is None else min(self._per_read, left))
        try:
            count: int | None = self._raw.readinto(buffer)
        finally:
            self._sock.settimeout(self._per_read)
        if count:
            self._read += count
            if self._read > MAX_ANSWER_BYTES:
                raise AnswerRefused(
                    f"an answer larger than the {MAX_ANSWER_BYTES // (1024 * 1024)} MiB "
                    "the client reads (cut off there)"
                )
        return count

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """The connection's socket as http.client sees it while it reads one response."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        raw = self._sock.makefile(mode, buffering=0)  # keeps the socket's file count right
        return io.BufferedReader(_DeadlineReader(raw, self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _bounded_getresponse(connection_class: type) -> type:
    base: Any = connection_class

    class Bounded(base):  # type: ignore[misc]
        sock: Any

        def getresponse(self) -> Any:
            deadline = getattr(_local, "deadline", None)
            real = self.sock
            if deadline is None or real is None:
                return super().getresponse()
            self.sock = wrapper = _DeadlineSocket(real, deadline)
            try:
                response = super().getresponse()
                _check_head(response)  # urllib3 closes the connection: nothing is read
                return response
            finally:
                if self.sock is wrapper:  # http.client sets it to None when it closes
                    self.sock = real

    Bounded.__name__ = f"Bounded{connection_class.__name__}"
    return Bounded


_pool_classes: dict[str, type] | None = None


def install(session: Any) -> None:
    """Make the session's HTTP(S) connection pools honour :func:`bounded` deadlines."""
    global _pool_classes
    if _pool_classes is None:
        from urllib3.connectionpool import (  # first session only
            HTTPConnectionPool,
            HTTPSConnectionPool,
        )

        _pool_classes = {
            scheme: type(
                f"Bounded{pool.__name__}",
                (pool,),
                {"ConnectionCls": _bounded_getresponse(pool.ConnectionCls)},
            )
            for scheme, pool in (("http", HTTPConnectionPool), ("https", HTTPSConnectionPool))
        }
    for adapter in session.adapters.values():
        adapter.poolmanager.pool_classes_by_scheme = dict(_pool_classes)
        # Through an HTTP(S) proxy (HTTPS_PROXY...) requests makes a ProxyManager per proxy,
        # on first use: its pools get the same classes. SOCKS managers keep theirs.
        adapter.proxy_manager_for = _bounding_proxy_managers(adapter.proxy_manager_for)


def _bounding_proxy_managers(make: Any) -> Any:
    def proxy_manager_for(proxy: str, **kwargs: Any) -> Any:
        manager = make(proxy, **kwargs)
        if _pool_classes is not None and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_pool_classes)
        return manager

    return proxy_manager_for
