"""KV secrets engines: which mount a path is on, and whether it is version 1 or 2.

The client asks ``sys/internal/ui/mounts/<path>`` once per mount and remembers the
answer. Where a policy forbids that endpoint it falls back to trying the v2 layout and
then v1, and remembers the guess only for ``GUESS_TTL`` seconds, so a policy fixed later
or a mount upgraded from v1 to v2 is noticed soon.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

GUESS_TTL = 60.0  # seconds a fallback guess (detection forbidden) is trusted


@dataclass(frozen=True, slots=True)
class Mount:
    """A secrets-engine mount: its path (ending in '/') and KV version (1 or 2).

    ``kind`` is the engine type ("kv", "generic", or another engine for raw reads);
    ``detected`` is false for a layout guessed without the mounts endpoint.
    """

    path: str
    version: int
    kind: str = "kv"
    detected: bool = True

    def below(self, path: str) -> str:
        """The part of ``path`` under this mount ('' for the mount itself or elsewhere)."""
        return path[len(self.path) :] if (path + "/").startswith(self.path) else ""

    def read_path(self, rest: str) -> str:
        rest = quote(rest, safe="/")
        return f"{self.path}data/{rest}" if self.version == 2 else f"{self.path}{rest}"

    def list_path(self, rest: str) -> str:
        rest = quote(rest, safe="/")
        return f"{self.path}metadata/{rest}" if self.version == 2 else f"{self.path}{rest}"


class MountTable:
    """Remembered mounts, found by longest prefix; guesses expire after GUESS_TTL."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._mounts: dict[str, tuple[Mount, float]] = {}
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def find(self, path: str) -> Mount | None:
        probe = path + "/"
        best: Mount | None = None
        now = self._clock()
        for prefix, (mount, expires_at) in tuple(self._mounts.items()):
            longer = best is None or len(prefix) > len(best.path)
            if probe.startswith(prefix) and now < expires_at and longer:
                best = mount
        return best

    def remember(self, mount: Mount) -> None:
        expires_at = float("inf") if mount.detected else self._clock() + GUESS_TTL
        with self._lock:
            self._mounts[mount.path] = (mount, expires_at)

    def forget(self, mount: Mount) -> None:
        with self._lock:
            self._mounts.pop(mount.path, None)

    def clear(self) -> None:
        with self._lock:
            self._mounts.clear()


def mount_from_ui_answer(data: dict[str, object]) -> Mount | None:
    """Read a ``sys/internal/ui/mounts/<path>`` answer's ``data`` into a Mount."""
    path = data.get("path")
    if not isinstance(path, str) or not path:
        return None
    kind = str(data.get("type") or "")
    options = data.get("options")
    version_text = options.get("version") if isinstance(options, dict) else None
    version = 2 if kind == "kv" and str(version_text or "1") == "2" else 1
    return Mount(path=path if path.endswith("/") else path + "/", version=version, kind=kind)
