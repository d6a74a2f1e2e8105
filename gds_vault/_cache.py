"""The secret cache: per path and version, for ``ttl`` seconds, with single-flight misses.

A hit (:meth:`SecretCache.get`) is one dict lookup and one clock comparison. A miss
takes the slow path, :meth:`SecretCache.get_or_load`: concurrent misses for the same key
wait for one loader, so 32 threads asking for a cold secret cause one Vault read.
``invalidate(path)`` bumps that path's generation, so a read of it that started before
cannot store a stale value after (reads of other paths are unaffected), and callers
after it do not join such a read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Flight:
    __slots__ = ("done", "error", "path", "value")

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SecretCache:
    """Secrets by key (a path, or a (path, version) pair) for ``ttl`` seconds.

    Entries are ``(expires_at, value, path)``; ``path`` serves invalidation.
    """

    def __init__(self, ttl: float, clock: Callable[[], float]):
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any, str]] = {}
        #: Lookups answered from the cache (diagnostics: VaultClient.stats).
        self.hits = 0
        self._inflight: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear()
        self._path_generations: dict[str, int] = {}  # bumped by invalidate(path)

    def after_fork(self) -> None:
        """In a forked child: new lock, no flights of the parent's threads."""
        self._lock = threading.Lock()
        self._inflight = {}

    def get(self, key: Hashable) -> Any:
        """The fresh value for ``key``, or None. The hot path of every cached read."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry[0]:
            self.hits += 1  # not locked: a diagnostic count, exact when single-threaded
            return entry[1]
        return None

    def get_or_load(self, key: Hashable, path: str, load: Callable[[], Any]) -> Any:
        """The cached value for ``key``, or ``load()``'s, loading once for all waiters."""
        if self.ttl <= 0:
            return load()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() < entry[0]:
                return entry[1]
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[key] = _Flight(path)
            generation = (self._generation, self._path_generations.get(path, 0))
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = load()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            with self._lock:
                if generation == (self._generation, self._path_generations.get(path, 0)):
                    self._entries[key] = (self._clock() + self.ttl, value, path)
            return value
        finally:
            with self._lock:
                if self._inflight.get(key) is flight:  # not a newer flight after invalidate
                    del self._inflight[key]
            flight.done.set()

    def invalidate(self, path: str) -> int:
        """Drop every entry read from ``path``; returns how many were dropped."""
        with self._lock:
            self._path_generations[path] = self._path_generations.get(path, 0) + 1
            # Reads under way began before the change; callers from now on start a new one.
            for key in [key for key, flight in self._inflight.items() if flight.path == path]:
                del self._inflight[key]
            doomed = [key for key, entry in self._entries.items() if entry[2] == path]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._inflight.clear()
            self._entries.clear()
