"""The token cache shared by processes: one Vault login per host and token lifetime.

Off unless ``GDS_VAULT_TOKEN_CACHE=<directory>`` (or ``VaultClient(token_cache=...)``)
is set. Every Airflow task, spawned worker and cron job is a new process; without this
each logs in to Vault and looks up the KV mount again. With it, the processes of one
user on one host share the token of one identity through a file, as Vault Agent's sink
file and the Vault CLI's ``~/.vault-token`` do, with no daemon.

Files, in a directory only the user can reach (see :mod:`gds_vault._private_dir`)::

    token-<key>.json    the token and what is needed to judge it: expiry (wall clock),
                        renewable, token type, accessor, policies; never a secret_id,
                        password, JWT or secret
    token-<key>.lock    taken by the one process that logs in or renews
    mounts-<key>.json   KV mounts found through sys/internal/ui/mounts (not secret)
    mounts-<key>.lock   taken by the one process that looks a mount up

``<key>`` is a hash of the Vault address, namespace, auth method, auth mount and the
method's non-secret identity (:meth:`AuthMethod.cache_identity`: a role_id, a role name);
the mounts file's key is the address and namespace only. Nothing derived from a secret
goes into a key, and an auth method without an identity is not cached.

How a process gets a token (``TokenManager`` does this when it has none or its own is
due for refresh): it reads the file and takes a token that is not yet due, with no
request to Vault. Otherwise it takes the lock (others wait, and stop waiting as soon as
the file holds a fresh token), reads the file again, and logs in or renews the token
itself, writing the result back. A token from the file that Vault refuses (revoked,
expired) is never taken again by that process: it logs in and writes the new token back.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from gds_vault._logging import register_secret
from gds_vault._printable import is_printable_ascii
from gds_vault._private_dir import PrivateDirectory

if TYPE_CHECKING:
    from gds_vault._auth import AuthMethod
    from gds_vault._kv import Mount
    from gds_vault._token import _TokenState

logger = logging.getLogger(__name__)

FORMAT = "gds-vault-token-cache"  # the "format" field of every file this module writes
FORMAT_VERSION = 1
LOCK_WAIT = 45.0  # seconds a process waits for another's login (default deadline 30 s + margin)
MOUNTS_MAX_AGE = 3600.0  # seconds a mount found by another process is trusted
_MIN_LEFT = 0.5  # seconds: a cached token closer than this to expiry is not taken
_INFINITY = float("inf")


def _digest(parts: dict[str, str]) -> str:
    import hashlib  # only with a cache: it loads OpenSSL, which `import gds_vault` need not

    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def open_shared(
    directory: str | os.PathLike[str] | None,
    *,
    addr: str,
    namespace: str | None,
    auth: AuthMethod,
    clock: Callable[[], float],
) -> tuple[SharedToken | None, SharedMounts | None]:
    """The shared token file and mount table for one client; (None, None) when off.

    The token is not shared when the auth method has no cache identity; the mount table,
    which depends only on the server and namespace, still is.
    """
    if not directory:
        return None, None
    files = PrivateDirectory(
        os.fspath(directory), what="Vault token cache", variable="GDS_VAULT_TOKEN_CACHE"
    )
    where = {"addr": addr, "namespace": namespace or ""}
    mounts = SharedMounts(files, _digest(where), where)
    identity = auth.cache_identity()
    if identity is None:
        logger.debug("Auth method %s has no cache identity: its token is not shared", auth.name)
        return None, mounts
    labels = {**where, "method": auth.name, "mount": str(getattr(auth, "mount", "") or "")}
    return SharedToken(files, _digest({**labels, "identity": identity}), labels, clock), mounts


def _header(kind: str, key: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind, "key": key, **labels}


def _is_header(content: dict[str, Any], kind: str, key: str) -> bool:
    return (
        content.get("format") == FORMAT
        and content.get("version") == FORMAT_VERSION
        and content.get("kind") == kind
        and content.get("key") == key
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_time(value: object) -> bool:
    return value is None or _is_number(value)  # None: never


class SharedToken:
    """The token file of one identity: what ``TokenManager`` loads, locks and saves.

    Times in the file are wall-clock (Unix) seconds, the only clock processes share; in
    memory they are the manager's monotonic clock, converted on each load and save.
    """

    def __init__(
        self,
        files: PrivateDirectory,
        key: str,
        labels: dict[str, str],
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._files = files
        self._key = key
        self._labels = labels
        self._clock = clock
        self._wall = wall
        self.name = f"token-{key}.json"
        self._lock_name = f"token-{key}.lock"

    @property
    def where(self) -> str:
        """The file, for log messages."""
        return os.path.join(self._files.path, self.name)

    def _accept(self, content: dict[str, Any]) -> bool:
        return (
            _is_header(content, "token", self._key)
            and isinstance(content.get("token"), str)
            and bool(content["token"])
            and is_printable_ascii(content["token"])  # else it could not be sent
            and isinstance(content.get("accessor", ""), str)
            and isinstance(content.get("token_type"), str)
            and isinstance(content.get("renewable"), bool)
            and isinstance(content.get("policies"), list)
            and all(isinstance(p, str) for p in content["policies"])
            and _is_number(content.get("ttl"))
            and _is_number(content.get("login_ttl"))
            and _is_time(content.get("expires_at"))
            and _is_time(content.get("refresh_at"))
        )

    def load(self, *, refused: str | None = None) -> _TokenState | None:
        """The cached token if the file holds one that has not expired and is not
        ``refused`` (a token Vault refused this process), else None."""
        from gds_vault._token import _TokenState

        content = self._files.read(self.name, self._accept)
        if content is None or content["token"] == refused:
            return None
        now, wall_now = self._clock(), self._wall()
        expires_at, refresh_at = content["expires_at"], content["refresh_at"]
        if expires_at is not None and expires_at - wall_now < _MIN_LEFT:
            return None  # expired: as good as absent, and replaced by the next login
        register_secret(content["token"])
        register_secret(content.get("accessor"))
        return _TokenState(
            token=content["token"],
            ttl=float(content["ttl"]),
            login_ttl=float(content["login_ttl"]),
            renewable=content["renewable"],
            token_type=content["token_type"],
            policies=tuple(content["policies"]),
            accessor=content.get("accessor", ""),
            refresh_at=_INFINITY if refresh_at is None else now + (refresh_at - wall_now),
            expires_at=_INFINITY if expires_at is None else now + (expires_at - wall_now),
        )

    def has_fresh(self, *, refused: str | None) -> bool:
        """Whether the file holds a token that is not due for refresh (nor ``refused``)."""
        found = self.load(refused=refused)
        return found is not None and self._clock() < found.refresh_at

    def exclusive(self, ready: Callable[[], bool]) -> AbstractContextManager[bool]:
        """A context manager holding this identity's lock (see PrivateDirectory.exclusive)."""
        return self._files.exclusive(self._lock_name, wait=LOCK_WAIT, ready=ready)

    def save(self, state: _TokenState) -> None:
        """Write the token (after a login or a renewal) for the other processes."""
        now, wall_now = self._clock(), self._wall()

        def wall(at: float) -> float | None:
            return None if at == _INFINITY else round(wall_now + (at - now), 3)

        content = _header("token", self._key, self._labels)
        content.update(
            token=state.token,
            accessor=state.accessor,
            policies=list(state.policies),
            token_type=state.token_type,
            renewable=state.renewable,
            ttl=state.ttl,
            login_ttl=state.login_ttl,
            expires_at=wall(state.expires_at),
            refresh_at=wall(state.refresh_at),
            written_at=round(wall_now, 3),
            written_by_pid=os.getpid(),
        )
        if self._files.write(self.name, content):
            logger.debug("Wrote the Vault token to the token cache %s", self.where)


class SharedMounts:
    """KV mounts found by any process for one server and namespace (none of it secret).

    Only mounts found through the mounts endpoint are shared; guesses made where that
    endpoint is forbidden stay in the process that made them. Entries older than
    ``MOUNTS_MAX_AGE`` are looked up again. Updates are read-modify-write without a lock:
    two processes finding different mounts at once can lose one, which costs one more
    lookup later, never a wrong answer.
    """

    def __init__(self, files: PrivateDirectory, key: str, labels: dict[str, str]) -> None:
        self._files = files
        self._key = key
        self._labels = labels
        self.name = f"mounts-{key}.json"
        self._lock_name = f"mounts-{key}.lock"

    def _accept(self, content: dict[str, Any]) -> bool:
        mounts = content.get("mounts")
        return (
            _is_header(content, "mounts", self._key)
            and isinstance(mounts, dict)
            and all(
                isinstance(entry, dict)
                and entry.get("version") in (1, 2)
                and isinstance(entry.get("kind"), str)
                and _is_number(entry.get("found_at"))
                for entry in mounts.values()
            )
        )

    def _entries(self) -> dict[str, dict[str, Any]]:
        content = self._files.read(self.name, self._accept)
        return dict(content["mounts"]) if content is not None else {}

    def load(self) -> list[Mount]:
        """The mounts in the file that are not older than MOUNTS_MAX_AGE."""
        from gds_vault._kv import Mount

        oldest = time.time() - MOUNTS_MAX_AGE
        return [
            Mount(path, entry["version"], kind=entry["kind"])
            for path, entry in self._entries().items()
            if entry["found_at"] >= oldest and path.endswith("/")
        ]

    def remember(self, mount: Mount) -> None:
        entries = self._entries()
        found_at = time.time()
        entries[mount.path] = {"version": mount.version, "kind": mount.kind, "found_at": found_at}
        self._write(entries)

    def forget(self, mount: Mount) -> None:
        entries = self._entries()
        entry = entries.get(mount.path)
        if entry is not None and (entry["version"], entry["kind"]) == (mount.version, mount.kind):
            del entries[mount.path]  # only the stale entry, not one another process wrote since
            self._write(entries)

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        content = _header("mounts", self._key, self._labels)
        content["mounts"] = entries
        self._files.write(self.name, content)

    def single_flight(
        self,
        path: str,
        find: Callable[[str], Mount | None],
        detect: Callable[[str], Mount | None],
    ) -> Mount | None:
        """``detect(path)`` in one process at a time; the others wait for its answer.

        ``find`` looks in the table (which reads this file on a miss): a waiting process
        stops waiting as soon as the mount appears there.
        """
        with self._files.exclusive(
            self._lock_name, wait=LOCK_WAIT, ready=lambda: find(path) is not None
        ):
            known = find(path)
            return known if known is not None else detect(path)
