"""The KV layer: reading and listing KV v1/v2 secrets by the paths users write.

Users write paths as ``vault kv`` takes them (mount + path, no ``data/``). This layer
finds which mount a path is on and whether it is KV version 1 or 2, turns the path into
the API path of that layout, reads or lists it, and turns Vault's answers into the
errors users can act on (not found, deleted or destroyed versions, a disabled mount,
a ``data/`` path written by hand).

Mount detection: ``sys/internal/ui/mounts/<path>`` is asked once per mount and the
answer remembered. Where a policy forbids that endpoint, the v2 layout and then v1 are
tried, and the guess is remembered only for ``GUESS_TTL`` seconds, so a policy fixed
later or a mount upgraded from v1 to v2 is noticed soon. A 404 from a remembered mount
re-detects it once (it may have been disabled or mounted again with another version).

The layer sends every request through the client's authenticated ``request`` function
(token, re-login on a dead token, retries); it knows nothing of tokens or HTTP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from gds_vault._errors import (
    VaultAuthError,
    VaultLeasedSecretError,
    VaultPathError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretDeletedError,
    VaultSecretNotFoundError,
)
from gds_vault._kv_errors import deleted, not_found, permission_denied, unknown_mount_denied

if TYPE_CHECKING:
    from gds_vault._token_cache import SharedMounts

logger = logging.getLogger(__name__)

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
    """Remembered mounts, found by longest prefix; guesses expire after GUESS_TTL.

    With a token cache (``shared``), detected mounts are also written to it, and a path
    that no remembered mount covers is looked up there before Vault is asked.
    """

    def __init__(self, clock: Callable[[], float], shared: SharedMounts | None = None):
        self._clock = clock
        self._shared = shared
        self._mounts: dict[str, tuple[Mount, float]] = {}
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def find(self, path: str) -> Mount | None:
        found = self._find(path)
        if found is None and self._shared is not None:
            with self._lock:
                for mount in self._shared.load():
                    current = self._mounts.get(mount.path)
                    if current is None or not current[0].detected:  # a detection beats a guess
                        self._mounts[mount.path] = (mount, float("inf"))
            found = self._find(path)
        return found

    def single_flight(self, path: str, detect: Callable[[str], Mount | None]) -> Mount | None:
        """``detect(path)``; with a token cache, in one process at a time."""
        if self._shared is None:
            return detect(path)
        return self._shared.single_flight(path, self.find, detect)

    def _find(self, path: str) -> Mount | None:
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
        if self._shared is not None and mount.detected:
            self._shared.remember(mount)

    def forget(self, mount: Mount) -> None:
        with self._lock:
            self._mounts.pop(mount.path, None)
        if self._shared is not None:
            self._shared.forget(mount)

    def clear(self) -> None:
        with self._lock:
            self._mounts.clear()


class Requester(Protocol):
    """The client's authenticated request: ``request(method, api_path, **kwargs)``."""

    def __call__(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None: ...


class KVStore:
    """Reads and lists KV secrets through ``request``, remembering the mounts it finds.

    Args:
        request: The client's authenticated request function.
        clock: Monotonic seconds (guesses expire after GUESS_TTL).
        shared: The token cache's mount table, shared by processes (None: off).
    """

    def __init__(
        self, request: Requester, clock: Callable[[], float], shared: SharedMounts | None = None
    ) -> None:
        self._request = request
        self.mounts = MountTable(clock, shared)
        #: KV reads sent to Vault (diagnostics: VaultClient.stats).
        self.reads = 0

    def after_fork(self) -> None:
        self.mounts.after_fork()

    # -- reading -------------------------------------------------------------------------
    def read(self, path: str, version: int | None) -> dict[str, Any]:
        """The secret's fields at ``path`` (already normalised), latest or ``version``."""
        mount = self._mount_for(path)
        if mount is not None:
            try:
                return self._read_from_mount(mount, path, version)
            except VaultSecretNotFoundError as exc:
                deleted = isinstance(exc, VaultSecretDeletedError)
                fresh = None if deleted else self._redetect(mount, path)
                if fresh is None:
                    raise
            return self._read_from_mount(fresh, path, version)
        # The mounts endpoint is forbidden: try the v2 layout, then v1, on the first segment.
        errors: list[VaultResponseError] = []
        v1_tried = False
        for guess in _guesses(path):
            if guess.version == 1 and version is not None:
                break
            v1_tried = v1_tried or guess.version == 1
            try:
                secret = self._read_from_mount(guess, path, version)
            except (VaultSecretNotFoundError, VaultPermissionError) as exc:
                if isinstance(exc, VaultSecretDeletedError):
                    raise
                errors.append(exc)
                continue
            self.mounts.remember(guess)
            return secret
        not_found = [e for e in errors if isinstance(e, VaultSecretNotFoundError)]
        if not_found:
            raise not_found[0]
        denied = [e for e in errors if isinstance(e, VaultPermissionError)]
        guess = _guesses(path)[0]
        raise unknown_mount_denied(
            path, guess.path, guess.below(path), denied, v1_tried=v1_tried
        ) from None

    def list(self, path: str) -> list[str]:
        """The names under ``path`` (already normalised); folders end with '/'."""
        mount = self._mount_for(path)
        candidates = [mount] if mount is not None else _guesses(path)
        last: VaultResponseError | None = None
        for candidate in candidates:
            rest = candidate.below(path)
            try:
                body = self._request("LIST", candidate.list_path(rest), operation="vault.list")
            except (VaultSecretNotFoundError, VaultPermissionError) as exc:
                last = exc
                continue
            keys = ((body or {}).get("data") or {}).get("keys") or []
            return [str(k) for k in keys]
        if isinstance(last, VaultPermissionError):
            raise last
        return []

    # -- mounts --------------------------------------------------------------------------
    def _redetect(self, mount: Mount, path: str) -> Mount | None:
        """After a 404 from a detected mount: the mount, if it changed since (disabled, or
        mounted again with another KV version); None if it is unchanged or undetectable."""
        if not mount.detected:
            return None
        self.mounts.forget(mount)
        fresh = self._mount_for(path)
        return fresh if fresh is not None and fresh != mount else None

    def _mount_for(self, path: str) -> Mount | None:
        known = self.mounts.find(path)
        if known is not None:
            return known  # detected, or a guess that worked recently
        return self.mounts.single_flight(path, self._detect)

    def _detect(self, path: str) -> Mount | None:
        try:
            body = self._request("GET", f"sys/internal/ui/mounts/{path}", operation="vault.mounts")
        except VaultResponseError as exc:  # 403, 404, 400...: the endpoint will not answer
            # A failed login (the token was dead and so is the secret_id) is not an answer
            # about the mounts endpoint: guessing layouts would only log in again and again.
            if exc.retryable or isinstance(exc, VaultAuthError):
                raise
            logger.debug(
                "KV mount detection for %s unavailable (%s); guessing", path, exc.status_code
            )
            return None
        mount = mount_from_ui_answer((body or {}).get("data") or {})
        if mount is None:
            return None
        self.mounts.remember(mount)
        logger.debug("Mount %s is %s v%d", mount.path, mount.kind, mount.version)
        return mount

    # -- one read ------------------------------------------------------------------------
    def _read_from_mount(self, mount: Mount, path: str, version: int | None) -> dict[str, Any]:
        rest = mount.below(path)
        if not rest:
            raise VaultPathError(
                f"{path!r} is the mount {mount.path!r} itself; name a secret under it, "
                f"for example '{mount.path}snowflake/etl'."
            )
        if version is not None and mount.version != 2:
            raise VaultPathError(
                f"Versions exist only on KV version 2; {mount.path} is KV version 1. "
                "Drop the version argument."
            )
        params = {"version": version} if version is not None else None
        self.reads += 1
        try:
            body = self._request(
                "GET", mount.read_path(rest), params=params, operation="vault.read"
            )
        except VaultSecretNotFoundError as exc:
            raise not_found(mount, path, rest, version, exc) from None
        except VaultPermissionError as exc:
            if not mount.detected:  # a guess: read() words the denial once all have failed
                raise
            raise permission_denied(mount, path, rest, exc) from None
        if (body or {}).get("lease_id"):
            # A dynamic secret (database/creds/<role>): not a KV secret, and not cacheable.
            raise VaultLeasedSecretError(
                f"{path} is a dynamic secret with a lease ({mount.kind or 'not KV'} engine at "
                f"{mount.path}): each read creates new credentials, which get_secret would "
                "cache past their lease. Read it with VaultClient.read_lease() and renew "
                "the lease while the credentials are in use (gds_snowflake does both).",
                answer=body,
            )
        data = (body or {}).get("data")
        secret = data.get("data") if mount.version == 2 and isinstance(data, dict) else data
        if mount.version == 2 and secret is None and isinstance(data, dict):
            raise deleted(path, version, data.get("metadata") or {}, None)
        if not isinstance(secret, dict):
            raise VaultResponseError(
                f"The secret at {path} is not a set of key/value fields; was it written "
                "with `vault kv put`?"
            )
        logger.debug("Read secret %s (KV v%d)", path, mount.version)
        return secret


def _guesses(path: str) -> list[Mount]:
    """Layouts to try when the mounts endpoint will not answer: v2, then v1."""
    first = path.split("/", 1)[0] + "/"
    return [Mount(first, 2, detected=False), Mount(first, 1, detected=False)]


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
