"""A directory private to one user: checked permissions, atomic JSON files, file locks.

The token cache (gds_vault._token_cache) keeps its files here. Everything about the disk
is in this module, and none of it may fail a Vault call:

- The directory is created 0700 if missing. One that is not a directory, is owned by
  another user or is accessible to group or others is not used; a file in it with any of
  those faults (or a symlink) likewise. Each case logs one WARNING and turns this object
  off: it then reads nothing and writes nothing, and the client works as without a cache.
- Files are written whole to a temporary file (0600) and renamed over the old one, so a
  reader sees the old or the new content, never half of either.
- A file that is empty, truncated, not JSON or not ours is reported (one WARNING per
  version of the file) and treated as absent; the next write replaces it.
- Locks are ``flock`` locks on a separate ``.lock`` file (the data file is replaced by each
  write, so it cannot carry the lock). The kernel releases them when a process dies, so a
  killed process never leaves a lock behind. Waiting is bounded, and stops early when
  the caller's ``ready()`` says the holder already produced what the waiter needs.

Where ``fcntl`` does not exist (Windows), the directory is not used (one WARNING).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 65536  # a cache file larger than this is not ours
_FIRST_PAUSE = 0.002  # seconds between the first tries for a busy lock, doubling ...
_MAX_PAUSE = 0.05  # ... to at most this


class PrivateDirectory:
    """JSON files in a directory that only this user can reach.

    Args:
        path: The directory; created (0700) on first use when missing.
        what: How the WARNINGs name it, e.g. "Vault token cache".
        variable: The setting to point users at, e.g. "GDS_VAULT_TOKEN_CACHE".
    """

    def __init__(self, path: str, *, what: str, variable: str) -> None:
        self.path = path
        self._what = what
        self._variable = variable
        self._checked = False
        self.usable = True  # false after the first problem: nothing more is read or written
        self._reported: set[tuple[str, int, int, int]] = set()  # bad file versions warned of

    # -- the directory -------------------------------------------------------------------
    def _ready(self) -> bool:
        """Create and check the directory once; False (after one WARNING) if unusable."""
        if self._checked or not self.usable:
            return self.usable
        try:
            import fcntl  # noqa: F401 - only to know that locks exist here
        except ImportError:
            return self._turn_off("file locks (fcntl) are not available on this platform")
        try:
            created = not os.path.lexists(self.path)
            if created:
                os.makedirs(self.path, mode=0o700, exist_ok=True)
                os.chmod(self.path, 0o700)  # ours, just made: mkdir's mode is cut by umask
            # Checked and used by its real path from here on, so that a symlink swapped
            # later cannot point the files elsewhere.
            real = os.path.realpath(self.path)
            info = os.stat(real)
        except OSError as exc:
            return self._turn_off(f"it cannot be created or reached ({_reason(exc)})")
        if not stat.S_ISDIR(info.st_mode):
            return self._turn_off("it is not a directory")
        fault = _ownership_fault(info)
        if fault:
            return self._turn_off(
                f"{fault}; run `chmod 700 {self.path}` as its owner, or set {self._variable} "
                "to a directory of your own"
            )
        self.path = real
        self._checked = True
        return True

    def _turn_off(self, why: str) -> bool:
        if self.usable:
            self.usable = False
            logger.warning(
                "The %s %s is not used: %s. Vault works without it (each process logs in "
                "on its own).",
                self._what,
                self.path,
                why,
            )
        return False

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _check_open_file(self, fd: int, name: str) -> bool:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return self._turn_off(f"{name} in it is not a regular file")
        fault = _ownership_fault(info)
        if fault:
            return self._turn_off(f"its file {name} is {fault.removeprefix('it is ')}")
        return True

    # -- files ---------------------------------------------------------------------------
    def read(self, name: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The JSON object in ``name``, or None: missing, unusable, or not ``accept``-ed.

        ``accept`` says whether the object is one of ours; a file that is not (or not JSON
        at all) is reported once per version and treated as absent.
        """
        if not self._ready():
            return None
        try:
            fd = os.open(self._file(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._turn_off(f"its file {name} cannot be opened ({_reason(exc)})")
            return None
        try:
            if not self._check_open_file(fd, name):
                return None
            info = os.fstat(fd)
            raw = os.read(fd, MAX_FILE_BYTES + 1)
        except OSError as exc:
            self._turn_off(f"its file {name} cannot be read ({_reason(exc)})")
            return None
        finally:
            os.close(fd)
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError("too large")
            content = json.loads(raw.decode("utf-8"))
            if not isinstance(content, dict) or not accept(content):
                raise ValueError("not a file this library wrote")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            self._report_bad_file(name, info, "empty" if not raw else str(exc).split(":")[0])
            return None
        except RecursionError:  # JSON nested deeper than the decoder goes: not ours either
            self._report_bad_file(name, info, "nested too deep")
            return None
        return content

    def _report_bad_file(self, name: str, info: os.stat_result, why: str) -> None:
        version = (name, info.st_ino, info.st_mtime_ns, info.st_size)
        if version in self._reported:
            return  # the same bad file again (a waiting process polls it): said already
        self._reported.add(version)
        logger.warning(
            "Ignoring the %s file %s: it is not a valid cache file (%s). It will be "
            "replaced; nothing is lost but one Vault request.",
            self._what,
            self._file(name),
            why,
        )

    def write(self, name: str, content: dict[str, Any]) -> bool:
        """Replace ``name`` with ``content`` atomically (0600); False if it could not be."""
        if not self._ready():
            return False
        import tempfile  # only when writing: rare, and tempfile's imports are not free

        data = json.dumps(content, indent=1, sort_keys=True).encode("utf-8")
        temporary = None
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.path)
            with os.fdopen(fd, "wb") as out:  # mkstemp made it 0600, O_EXCL, O_NOFOLLOW
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._file(name))
        except OSError as exc:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            self._turn_off(f"{name} cannot be written in it ({_reason(exc)})")
            return False
        return True

    def remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""
        if not self._ready():
            return
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._turn_off(f"{name} cannot be removed from it ({_reason(exc)})")

    # -- locks ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self, name: str, *, wait: float, ready: Callable[[], bool]) -> Iterator[bool]:
        """Hold the lock file ``name`` for the ``with`` body; yields whether it is held.

        Waits at most ``wait`` seconds, and stops waiting as soon as ``ready()`` is true
        (the holder has written what the caller needs). Yields False, without the lock,
        then and when the directory is not usable, so the caller goes on either way.
        """
        fd = self._open_lock(name)
        if fd is None:
            yield False
            return
        try:
            held = self._acquire(fd, name, wait, ready)
            try:
                yield held
            finally:
                if held:
                    _unlock(fd)
        finally:
            os.close(fd)

    def _open_lock(self, name: str) -> int | None:
        if not self._ready():
            return None
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self._file(name), flags, 0o600)
        except OSError as exc:
            self._turn_off(f"its lock file {name} cannot be opened ({_reason(exc)})")
            return None
        try:
            usable = self._check_open_file(fd, name)
        except OSError as exc:
            usable = self._turn_off(f"its lock file {name} cannot be checked ({_reason(exc)})")
        if not usable:
            os.close(fd)
            return None
        return fd

    def _acquire(self, fd: int, name: str, wait: float, ready: Callable[[], bool]) -> bool:
        import fcntl

        deadline = time.monotonic() + wait
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    self._turn_off(f"its lock file {name} cannot be locked ({_reason(exc)})")
                    return False
            if ready():
                return False
            if time.monotonic() >= deadline:
                logger.warning(
                    "Another process has held the %s lock %s for %.0f s; going on without "
                    "waiting for it.",
                    self._what,
                    self._file(name),
                    wait,
                )
                return False
            time.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)


def _unlock(fd: int) -> None:
    # Unlocked explicitly, not only by close(): a child forked while the lock was held
    # shares this open file, and the lock would live on in it until the child exits.
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)


def _ownership_fault(info: os.stat_result) -> str:
    """Why a file or directory with this status may not hold tokens ('' when it may)."""
    if info.st_uid != os.geteuid():
        return f"it is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o077:
        return (
            f"it is accessible to group or others (mode {stat.S_IMODE(info.st_mode):04o}, "
            "it must be 0700 for the directory, 0600 for files)"
        )
    return ""


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
