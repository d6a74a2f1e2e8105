"""What a VaultClient can tell about itself and its server: counters, health, its token.

These are the public seams the doctor, the demo, the plugins and the benchmarks use
instead of the client's private parts (ARCHITECTURE.md, the client row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gds_vault._errors import VaultPermissionError
from gds_vault._status import TokenStatus, VaultHealth, VaultStats

if TYPE_CHECKING:
    from gds_vault._auth import AuthMethod
    from gds_vault._cache import SecretCache
    from gds_vault._config import ClientSettings
    from gds_vault._kv import KVStore
    from gds_vault._token import TokenManager
    from gds_vault._transport import Transport


class Introspection:
    """``stats``, ``health()``, ``token_status()`` and ``token_info()``, as VaultClient members."""

    if TYPE_CHECKING:
        settings: ClientSettings
        _tokens: TokenManager
        _transport: Transport
        _kv: KVStore
        _cache: SecretCache
        lease_reads: int
        lease_renewals: int

        @property
        def auth(self) -> AuthMethod: ...
        def _check_open(self) -> None: ...
        def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None: ...

    @property
    def stats(self) -> VaultStats:
        """Counters since the client was made: logins, renewals, secret reads, cache hits."""
        return VaultStats(
            logins=self._tokens.logins,
            renewals=self._tokens.renewals,
            secret_reads=self._kv.reads,
            cache_hits=self._cache.hits,
            lease_reads=self.lease_reads,
            lease_renewals=self.lease_renewals,
        )

    def health(self) -> VaultHealth:
        """Ask ``sys/health`` once, without a token: initialised, sealed, standby, version.

        Uses the client's own session (TLS settings, client certificate, proxies), so it
        also tells whether the client can reach Vault at all.

        Raises:
            VaultConnectionError: Vault could not be reached (the message says why).
            VaultResponseError: Something that is not Vault answered.
        """
        self._check_open()
        return self._transport.health()

    def token_status(self) -> TokenStatus:
        """Log in if needed and describe the token: method, TTL, policies (never the token).

        A token whose policies forbid ``auth/token/lookup-self`` still logged in; its
        status then says ``lookup_allowed=False``.

        Raises:
            VaultAuthError: The login was refused.
            VaultError: Vault could not be reached or answered oddly.
        """
        self._check_open()
        method, mount = self.auth.name, getattr(self.auth, "mount", None)
        source = self.auth.source
        with self.settings.retry.operation("vault.token_status"):
            self._tokens.token()
            try:
                info = self.token_info()
            except VaultPermissionError:
                return TokenStatus(method=method, mount=mount, source=source, lookup_allowed=False)
        return TokenStatus(
            method=method,
            mount=mount,
            source=source,
            token_type=info.get("type"),
            ttl=int(info.get("ttl") or 0),
            renewable=bool(info.get("renewable")),
            policies=tuple(sorted(info.get("policies") or ())),
            identity_policies=tuple(sorted(info.get("identity_policies") or ())),
            display_name=info.get("display_name"),
            expire_time=info.get("expire_time"),
            num_uses=int(info.get("num_uses") or 0),
        )

    def token_info(self) -> dict[str, Any]:
        """What Vault says about the current token (lookup-self): TTL, policies, type.

        The token itself is not included.
        """
        with self.settings.retry.operation("vault.token_info"):
            body = self._request("GET", "auth/token/lookup-self", operation="vault.token.lookup")
        data = dict((body or {}).get("data") or {})
        for secret_field in ("id", "accessor"):
            data.pop(secret_field, None)
        return data
