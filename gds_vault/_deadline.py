"""A limit on the whole of each HTTP call, not only on each socket read.

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
  class for a scheme from ``pool_classes_by_scheme``;
- a urllib3 pool builds its connections from its ``ConnectionCls``, an
  ``http.client.HTTPConnection`` subclass;
- ``http.client`` reads the status line, the headers and the body through the file that
  ``HTTPResponse.__init__`` gets from ``sock.makefile("rb")``, and sets ``sock`` to None
  when it closes the connection.

Why not read the body in a loop with the time left instead (``stream=True``, no
patching)? The head of the answer would stay bounded per read only: with the fault
proxy trickling a byte every 20 ms, one attempt with a 0.5 s timeout took 4.0 s in the
head alone (tests/reliability/test_fault_matrix.py's trickle row fails), and the loop
still needs the connection's socket to bound each read. Measured with
``python -m bench --only uncached``, neither costs anything visible (ours/hvac median
1.00-1.03 for both, 1.01 with no deadline at all).

``urllib3`` is imported in :func:`install`, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_local = threading.local()


@contextmanager
def bounded(deadline: float) -> Iterator[None]:
    """Within the block, responses read in this thread stop at ``deadline`` (monotonic)."""
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = None


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket's raw file, each read bounded by the time left."""

    def __init__(self, raw: Any, sock: Any, deadline: float) -> None:
        self._raw, self._sock, self._deadline = raw, sock, deadline
        self._per_read = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer took longer than the timeout")
        self._sock.settimeout(left if self._per_read is None else min(self._per_read, left))
        try:
            return self._raw.readinto(buffer)  # type: ignore[no-any-return]
        finally:
            self._sock.settimeout(self._per_read)

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
                return super().getresponse()
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
