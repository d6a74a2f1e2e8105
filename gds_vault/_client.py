"""VaultClient: reads secrets from Vault or OpenBao, with tokens, KV detection and a cache."""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from gds_vault._auth import AuthMethod
from gds_vault._auth.base import DroppedAuth
from gds_vault._cache import SecretCache
from gds_vault._config import DEFAULT_CACHE_TTL, DEFAULT_TIMEOUT, ClientSettings, settings_from_env
from gds_vault._errors import (
    VaultClientClosedError,
    VaultLeasedSecretError,
    VaultPathError,
    VaultPermissionError,
)
from gds_vault._introspection import Introspection
from gds_vault._kv import KVStore
from gds_vault._kv_errors import missing_key
from gds_vault._lease import LeaseOperations
from gds_vault._paths import normalise_path
from gds_vault._secret_holder import SecretHolder
from gds_vault._tls import TrustStore, warn_if_plain_http
from gds_vault._token import TokenManager
from gds_vault._token_cache import open_shared
from gds_vault._transport import Transport
from gds_vault.retry import RetryPolicy

logger = logging.getLogger(__name__)

_live_clients: weakref.WeakSet[VaultClient] = weakref.WeakSet()
_DROPPED = DroppedAuth()  # what a closed client holds instead of its auth method


def _after_fork_in_child() -> None:
    for client in list(_live_clients):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class VaultClient(Introspection, LeaseOperations, SecretHolder):
    """A client for one Vault (or OpenBao) server and one identity.

    KV secrets are read with :meth:`get_secret` (cached); dynamic secrets with leases
    (``database/creds/<role>``) with :meth:`read_lease`, :meth:`renew_lease` and
    :meth:`revoke_lease` (``gds_vault._lease``).

    It holds its credentials and token, so it refuses to be pickled (create one per
    process, e.g. with :meth:`from_env`); ``copy.deepcopy`` gives the same client.

    Args:
        addr: The server, e.g. "https://vault.example.com:8200" (no path).
        auth: How to log in: AppRoleAuth, TokenAuth, JWTAuth, UserpassAuth, LDAPAuth,
            CertAuth or AWSIAMAuth.
        namespace: Vault Enterprise namespace (sent as X-Vault-Namespace). Default None.
        verify: True to verify TLS against the public CAs, a path to a CA file or
            directory to trust instead, or False to skip verification (warns).
        cert: Client certificate for mutual TLS: a path, or (cert path, key path).
        timeout: Seconds for each HTTP call. Default 10.
        retry: The retry policy. Each public call (get_secret, list_secrets, read, login,
            ...) is one operation with one deadline. Default RetryPolicy(): retries
            until 30 s.
        cache_ttl: Seconds a secret is cached; 0 disables caching. Default 300.
        token_cache: A directory where the processes of this user share the token and
            the KV mount table, so that N processes cause one login (see the README's
            "One Vault login per host"). Default None: off.
        revoke_on_close: Revoke the token at :meth:`close` (``revoke-self``) if this
            client logged in for it, so it is dead the moment the job ends instead of
            at its TTL. Never a token you gave (TokenAuth, ``~/.vault-token``), never in a
            forked child, not with ``token_cache``. Default False.
        clock: Monotonic seconds; tests pass a fake. Default time.monotonic.

    Raises:
        VaultConfigError: For an invalid address, timeout, TTL or missing auth.

    Warns:
        VaultInsecureWarning: ``addr`` is plain ``http://`` to another machine, or
            ``verify=False``.
    """

    def __init__(
        self,
        addr: str,
        *,
        auth: AuthMethod,
        namespace: str | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        token_cache: str | os.PathLike[str] | None = None,
        revoke_on_close: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = ClientSettings(
            addr=addr,
            auth=auth,
            namespace=namespace,
            verify=verify,
            cert=cert,
            timeout=timeout,
            retry=retry if retry is not None else RetryPolicy(),
            cache_ttl=cache_ttl,
            token_cache=token_cache,
            revoke_on_close=revoke_on_close,
        )
        self.settings = settings
        warn_if_plain_http(settings.addr)
        self._trust = TrustStore(settings.verify, host=urlsplit(settings.addr).hostname or "")
        self._transport = Transport(
            settings.addr,
            namespace=settings.namespace,
            verify=self._trust.requests_verify,
            cert=settings.cert,
            timeout=settings.timeout,
            retry=settings.retry,
        )
        self._clock = clock
        shared_token, shared_mounts = open_shared(
            settings.token_cache,
            addr=settings.addr,
            namespace=settings.namespace,
            auth=settings.auth,
            clock=clock,
        )
        self._tokens = TokenManager(settings.auth, self._transport, clock, shared_token)
        self._kv = KVStore(self._request, clock, shared_mounts)
        self._cache = SecretCache(settings.cache_ttl, clock)
        self._cache_get = self._cache.get  # bound once: the hot path of get_secret
        self.lease_reads = 0  # read_lease calls answered (VaultStats)
        self.lease_renewals = 0
        self._closed = False
        _live_clients.add(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> VaultClient:
        """A client configured from VAULT_* variables, with keyword overrides.

        Reads VAULT_ADDR, the auth variables (VAULT_AUTH_METHOD, VAULT_TOKEN /
        VAULT_TOKEN_FILE, VAULT_ROLE_ID + VAULT_SECRET_ID / VAULT_SECRET_ID_FILE,
        VAULT_JWT_ROLE + VAULT_JWT_FILE, VAULT_USERNAME + VAULT_PASSWORD_FILE, ...; with
        none of them, the Vault CLI's ``~/.vault-token``), VAULT_NAMESPACE, VAULT_CACERT,
        VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY,
        VAULT_CLIENT_TIMEOUT, VAULT_MAX_RETRIES, GDS_VAULT_CACHE_TTL and
        GDS_VAULT_TOKEN_CACHE, when called (never at import). ``revoke_on_close`` has no
        variable: pass it here. README.md's Configuration
        section lists every variable.

        Args:
            environ: The variables to read. Default os.environ.
            **overrides: Any VaultClient argument, taking precedence over the environment.

        Raises:
            VaultConfigError: Naming the variable that is missing or invalid.
        """
        kwargs = settings_from_env(os.environ if environ is None else environ, overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"VaultClient(addr={self.settings.addr!r}, auth={self.settings.auth!r}, "
            f"namespace={self.settings.namespace!r}, cache_ttl={self.settings.cache_ttl!r}"
            f"{', closed' if self._closed else ''})"
        )

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> VaultClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Revoke the token if asked (``revoke_on_close``), drop every reference to a
        secret (cached secrets, the token, the auth method and its credentials), and
        close connections. Idempotent.

        Dropping references lets Python free the values; it does not wipe memory (see
        SECURITY.md). An auth object you hold yourself keeps its credentials.
        """
        self._closed = True
        if self.settings.revoke_on_close:
            self._tokens.revoke_own()
        self._cache.clear()
        self._tokens.clear()
        self._tokens.auth = _DROPPED
        object.__setattr__(self.settings, "auth", _DROPPED)  # the client's own settings
        self._transport.close()
        self._trust.close()

    def _check_open(self) -> None:
        if self._closed:
            raise VaultClientClosedError(
                "This VaultClient was closed; create a new one (e.g. VaultClient.from_env())."
            )

    def _after_fork(self) -> None:
        self._transport.reset_after_fork()
        self._tokens.after_fork()
        self._kv.after_fork()
        self._cache.after_fork()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed client refuses every call)."""
        return self._closed

    @property
    def addr(self) -> str:
        return self.settings.addr

    @property
    def auth(self) -> AuthMethod:
        return self.settings.auth

    # -- tokens and requests ---------------------------------------------------------------
    def login(self) -> None:
        """Log in now (otherwise the first request does). Raises VaultAuthError on refusal.

        With a token cache, a valid token another process cached is taken instead.
        """
        self._check_open()
        self._tokens.clear()
        with self.settings.retry.operation("vault.login"):
            self._tokens.token()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """An authenticated request; a 403 from a dead token causes one login and retry."""
        self._check_open()
        token = self._tokens.token()
        try:
            return self._transport.request(method, path, token=token, **kwargs)
        except VaultPermissionError as exc:
            if not self._tokens.check_rejected(token, exc):
                raise
            self._tokens.reject(token)
            return self._transport.request(method, path, token=self._tokens.token(), **kwargs)

    # -- KV (the layer in gds_vault._kv; the cached hot path stays here) -------------------
    def get_secret(self, path: str, key: str | None = None, version: int | None = None) -> Any:
        """Read a KV secret (v1 or v2, found automatically), from the cache when fresh.

        Args:
            path: Mount and path as ``vault kv`` writes them, e.g. "secret/snowflake/etl".
            key: Return only this field of the secret.
            version: A KV v2 version number (default: the latest).

        Returns:
            A new dict of the secret's fields, or the one field's value when ``key`` is given.

        Raises:
            VaultSecretNotFoundError: No secret at the path, or no such key or version.
            VaultSecretDeletedError: The KV v2 version was deleted or destroyed.
            VaultPermissionError: The token's policies do not allow reading it.
            VaultPathError: The path, key or version cannot be valid.
            VaultError: Other failures (connection, auth, unavailable).
        """
        # The latest version, the common case, is keyed by the path alone: a str caches
        # its hash, a tuple is built and hashed on every call (~40 ns of ~190).
        secret = self._cache_get(path if version is None else (path, version))
        if secret is None:
            secret = self._load_secret(path, version)
        if key is None:
            return secret.copy()  # a plain dict from JSON; .copy() is faster than dict()
        try:
            return secret[key]
        except (KeyError, TypeError):
            raise missing_key(path, key, secret) from None

    def _load_secret(self, path: str, version: int | None) -> dict[str, Any]:
        self._check_open()
        clean = normalise_path(path)
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise VaultPathError(
                f"version must be a whole number of at least 1 (or None for the latest), "
                f"not {version!r}."
            )
        # One deadline for the whole read: login, mount detection and the read itself.
        with self.settings.retry.operation("vault.get_secret"):
            result: dict[str, Any] = self._cache.get_or_load(
                path if version is None else (path, version),  # the key get_secret looks up
                clean,
                lambda: self._kv_read(clean, version),
            )
        return result

    def _kv_read(self, clean: str, version: int | None) -> dict[str, Any]:
        started = self._clock()
        try:
            return self._kv.read(clean, version)
        except VaultLeasedSecretError as exc:
            # Made here, where the token is known, so every waiter gets the same lease.
            lease = self._lease_of(clean, exc._answer or {}, started)  # type: ignore[arg-type]
            self.lease_reads += 1
            raise VaultLeasedSecretError(str(exc), lease=lease) from None

    def list_secrets(self, path: str) -> list[str]:
        """The names under a KV path; folders end with '/'. Empty when there are none.

        Raises:
            VaultPermissionError: The token's policies lack 'list' on the path.
            VaultPathError: The path cannot be valid.
        """
        self._check_open()
        clean = normalise_path(path)
        with self.settings.retry.operation("vault.list_secrets"):
            return self._kv.list(clean)

    def read(self, path: str) -> dict[str, Any]:
        """A raw logical read (any engine), uncached, with lease information.

        Returns:
            ``{"data": ..., "lease_id": ..., "lease_duration": ..., "renewable": ...,
            "warnings": ...}``.

        Raises:
            VaultSecretNotFoundError: Nothing at the path.
        """
        clean = normalise_path(path)
        with self.settings.retry.operation("vault.read"):
            body = self._request("GET", quote(clean, safe="/"), operation="vault.read")
        body = body or {}
        return {
            "data": body.get("data"),
            "lease_id": body.get("lease_id") or None,
            "lease_duration": body.get("lease_duration") or 0,
            "renewable": bool(body.get("renewable")),
            "warnings": body.get("warnings") or [],
        }

    # -- cache ---------------------------------------------------------------------------
    def invalidate(self, path: str) -> None:
        """Drop the cached copies of one secret (all versions), e.g. after a rotation."""
        dropped = self._cache.invalidate(normalise_path(path))
        logger.debug(
            "Invalidated %d cached entr%s for %s", dropped, "y" if dropped == 1 else "ies", path
        )

    def clear_cache(self) -> None:
        """Drop every cached secret."""
        self._cache.clear()


__all__ = ["DEFAULT_CACHE_TTL", "DEFAULT_TIMEOUT", "VaultClient"]
