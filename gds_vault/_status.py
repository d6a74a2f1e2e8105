"""What a VaultClient can tell about itself: counters, the server's health, its token.

These are the public seams for tools (``gds-vault login``, ``gds-snowflake doctor``, the
demo, benchmarks): plain frozen values that never hold a token, accessor or secret.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultStats:
    """Counters of one client since it was made (a snapshot; diagnostics and tests).

    Attributes:
        logins: Successful logins (the first one included).
        renewals: Successful token renewals (``renew-self``).
        secret_reads: KV reads sent to Vault (cache misses that reached the server).
        cache_hits: ``get_secret`` calls answered from the cache.
        lease_reads: Dynamic secrets read (each one a new lease: ``read_lease``, or
            ``get_secret`` refusing one).
        lease_renewals: Successful lease renewals (``renew_lease``).
    """

    logins: int
    renewals: int
    secret_reads: int
    cache_hits: int
    lease_reads: int = 0
    lease_renewals: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultHealth:
    """Vault's ``sys/health`` answer, asked without a token in the root namespace.

    Attributes:
        initialized: Whether ``vault operator init`` was run.
        sealed: Whether the server is sealed (nothing can be read until unsealed).
        standby: Whether this node is a standby (it forwards or redirects requests).
        version: The server's version, e.g. "2.7.2" ("" when it does not say).
        server_time: The server's clock (seconds since the epoch, from the ``Date``
            header or ``server_time_utc``), or None when it gave neither.
        elapsed: Seconds the request took.
    """

    initialized: bool
    sealed: bool
    standby: bool
    version: str
    server_time: float | None
    elapsed: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenStatus:
    """What the client's token is, as Vault describes it (never the token itself).

    Attributes:
        method: The auth method's name ("approle", "token", "jwt", ...).
        mount: Where the method is mounted ("approle"), or None for a plain token.
        source: Where the credentials came from, for people: a variable or a file such
            as ``~/.vault-token`` (never a value).
        lookup_allowed: False when the token may not look itself up; the fields below
            are then unknown (None or empty).
        token_type: "service" or "batch".
        ttl: Seconds left; 0 means the token never expires.
        renewable: Whether ``renew-self`` may extend it.
        policies, identity_policies: Policy names attached to the token.
        display_name, expire_time: As Vault reports them.
        num_uses: Uses left; 0 means unlimited.
    """

    method: str
    mount: str | None
    source: str | None = None
    lookup_allowed: bool = True
    token_type: str | None = None
    ttl: int = 0
    renewable: bool = False
    policies: tuple[str, ...] = ()
    identity_policies: tuple[str, ...] = ()
    display_name: str | None = None
    expire_time: str | None = None
    num_uses: int = 0

    @property
    def ttl_text(self) -> str:
        """The TTL as a short human duration: ``1h 5m``, ``42s``, or ``never expires``."""
        return duration(self.ttl)


def duration(seconds: float) -> str:
    """Seconds as a short human duration: ``1h 5m``, ``42s``; 0 means no expiry."""
    total = int(seconds)
    if total <= 0:
        return "never expires"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
    parts = [f"{n}{unit}" for n, unit in units if n]
    return " ".join(parts[:2])
