"""Leases: dynamic secrets (``database/creds/<role>``) read, renewed and revoked.

A dynamic secret is made for the reader on each read (Vault's database secrets engine
creates a new database user) and lives for its lease: Vault revokes it (drops the user)
when the lease ends, unless it is renewed (``sys/leases/renew``), up to the role's max
TTL. The client only does the three calls; keeping a lease alive while something uses it
is the caller's job (``gds_snowflake._lease`` does it for Snowflake connections).

A lease also dies with the token that read it: Vault revokes a token's leases when the
token expires or is revoked. So each :class:`Lease` says when it ends by itself
(``expires_at``) and when the token that read it ends (``token_expires_at``), and
``ends_at`` is the sooner. The client renews its token before it expires and keeps the
same token as long as Vault renews it (``gds_vault._token``), so ``token_expires_at``
moves on with each lease renewal (every renewal goes through the token's refresh); once
the client has logged in again (the old token reached its max TTL, or is not renewable),
the old token's end is final and so is the end of every lease it read: the caller must
read new credentials before then. Nothing is cached here: leases are never kept past
their end by this layer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gds_vault._errors import (
    VaultInvalidRequestError,
    VaultLeaseError,
    VaultSecretNotFoundError,
)
from gds_vault._paths import normalise_path
from gds_vault._secret_holder import SecretHolder

if TYPE_CHECKING:
    from gds_vault._config import ClientSettings
    from gds_vault._token import TokenManager

logger = logging.getLogger(__name__)

__all__ = ["Lease", "LeaseOperations", "lease_from_answer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease(SecretHolder):
    """A dynamic secret with its lease, as one read or renewal left it.

    Times are in the client's clock (``time.monotonic`` unless the client was given
    another ``clock``). ``repr`` shows no credential; the object refuses to be pickled.

    Attributes:
        lease_id: Vault's lease id, e.g. ``database/creds/etl/AbC...`` (not a secret: it
            names the lease; a policy decides who may renew or revoke it).
        path: The path that was read, e.g. ``database/creds/etl``.
        data: The secret's fields (``username``, ``password``...).
        renewable: Whether Vault allows renewing it.
        duration: Seconds Vault granted at the read or the last renewal.
        expires_at: When Vault ends the lease unless it is renewed.
        token_expires_at: When the token that read it expires, as known at the read or
            the last renewal (``inf``: a token without TTL). The lease dies with it.
        token_generation: The client's number for the token that read it.
        warnings: Vault's warnings (a TTL capped by the max TTL, for instance).
        clock: The client's clock, in which the times above are given.
    """

    lease_id: str
    path: str
    data: dict[str, Any] = field(repr=False)
    renewable: bool
    duration: float
    expires_at: float
    token_expires_at: float
    token_generation: int = field(default=0, repr=False)
    warnings: tuple[str, ...] = ()
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @property
    def ends_at(self) -> float:
        """When the lease ends at the latest: its own end or its token's, the sooner."""
        return min(self.expires_at, self.token_expires_at)

    def time_left(self) -> float:
        """Seconds until :attr:`ends_at` (negative once it has ended)."""
        return self.ends_at - self.clock()


def lease_from_answer(
    path: str,
    body: dict[str, Any],
    *,
    started: float,
    token_expires_at: float,
    generation: int,
    clock: Callable[[], float] = time.monotonic,
) -> Lease | None:
    """The :class:`Lease` in Vault's answer to a read, or None when it carries none."""
    lease_id = body.get("lease_id")
    if not isinstance(lease_id, str) or not lease_id:
        return None
    duration = float(body.get("lease_duration") or 0)
    data = body.get("data")
    return Lease(
        lease_id=lease_id,
        path=path,
        data=dict(data) if isinstance(data, dict) else {},
        renewable=bool(body.get("renewable")),
        duration=duration,
        expires_at=started + duration if duration > 0 else math.inf,
        token_expires_at=token_expires_at,
        token_generation=generation,
        warnings=tuple(str(w) for w in body.get("warnings") or ()),
        clock=clock,
    )


class LeaseOperations:
    """``read_lease``, ``renew_lease`` and ``revoke_lease``, as VaultClient methods."""

    if TYPE_CHECKING:
        settings: ClientSettings
        _tokens: TokenManager
        _clock: Callable[[], float]
        lease_reads: int
        lease_renewals: int

        def _check_open(self) -> None: ...
        def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None: ...

    def _lease_of(self, path: str, body: dict[str, Any], started: float) -> Lease | None:
        generation = self._tokens.generation()  # the token the request just used
        return lease_from_answer(
            path,
            body,
            started=started,
            token_expires_at=self._tokens.expiry_of(generation),
            generation=generation,
            clock=self._clock,
        )

    def read_lease(self, path: str) -> Lease:
        """Read a dynamic secret, e.g. ``database/creds/etl``: new credentials and their lease.

        Each call makes Vault create new credentials (a new database user); nothing is
        cached. Renew the lease while the credentials are in use (:meth:`renew_lease`) and
        revoke it when done (:meth:`revoke_lease`), or let it run out.

        Args:
            path: The path as ``vault read`` takes it (mount and path).

        Returns:
            The :class:`Lease`, with the secret's fields in ``data``.

        Raises:
            VaultLeaseError: Vault answered without a lease: not a dynamic secret (KV
                secrets are read with get_secret).
            VaultSecretNotFoundError: Nothing at the path (no such role).
            VaultPermissionError: The token's policies do not allow reading it.
            VaultError: Other failures (connection, auth, unavailable).
        """
        self._check_open()
        clean = normalise_path(path)
        started = self._clock()
        with self.settings.retry.operation("vault.read_lease"):
            try:
                body = self._request("GET", quote(clean, safe="/"), operation="vault.read")
            except VaultSecretNotFoundError as exc:
                raise VaultSecretNotFoundError(
                    f"Nothing at {clean} (Vault answered 404): check the mount and role name, "
                    "e.g. `vault list database/roles`.",
                    status_code=exc.status_code,
                    errors=exc.errors,
                ) from None
        lease = self._lease_of(clean, body or {}, started)
        self.lease_reads += 1
        if lease is None:
            raise VaultLeaseError(
                f"{clean} gave no lease: it is not a dynamic secret. Read KV secrets with "
                "get_secret(); read_lease() is for paths such as database/creds/<role>."
            )
        logger.info(
            "Read dynamic secret %s: lease %s for %.0f s%s",
            clean,
            lease.lease_id,
            lease.duration,
            "" if lease.renewable else " (not renewable)",
        )
        return lease

    def renew_lease(self, lease: Lease, increment: float | None = None) -> Lease:
        """Renew a lease (``sys/leases/renew``); the token is renewed first if it is due.

        Vault may grant less than asked: never past the role's max TTL (then ``duration``
        comes back shorter and ``warnings`` says it was capped).

        Args:
            lease: The lease, as :meth:`read_lease` or an earlier renewal returned it.
            increment: Seconds asked for, from now. Default: the lease's ``duration``.

        Returns:
            A new :class:`Lease`: same ``lease_id`` and data, new ``duration``,
            ``expires_at`` and ``token_expires_at``.

        Raises:
            VaultLeaseError: The lease expired, was revoked, or is not renewable: read
                the secret again for new credentials.
            VaultPermissionError: The policy lacks ``update`` on ``sys/leases/renew``.
            VaultError: Other failures (connection, auth, unavailable).
        """
        self._check_open()
        asked = lease.duration if increment is None else increment
        started = self._clock()
        with self.settings.retry.operation("vault.renew_lease"):
            try:
                body = self._request(
                    "PUT",
                    "sys/leases/renew",
                    json={"lease_id": lease.lease_id, "increment": max(1, math.ceil(asked))},
                    operation="vault.lease.renew",
                )
            except VaultInvalidRequestError as exc:
                said = "; ".join(exc.errors) or "no reason given"
                raise VaultLeaseError(
                    f"Vault would not renew lease {lease.lease_id} ({said}): it has expired, "
                    f"was revoked, or is not renewable. Read {lease.path} again for new "
                    "credentials.",
                    lease_id=lease.lease_id,
                ) from None
        body = body or {}
        duration = float(body.get("lease_duration") or 0)
        renewed = replace(
            lease,
            renewable=bool(body.get("renewable", lease.renewable)),
            duration=duration,
            expires_at=started + duration if duration > 0 else math.inf,
            token_expires_at=self._tokens.expiry_of(lease.token_generation),
            warnings=tuple(str(w) for w in body.get("warnings") or ()),
        )
        self.lease_renewals += 1
        logger.info(
            "Renewed lease %s: %.0f s%s",
            lease.lease_id,
            duration,
            f" (asked {asked:.0f} s: near its max TTL)" if duration < asked else "",
        )
        return renewed

    def revoke_lease(self, lease: Lease | str) -> None:
        """Revoke a lease now (``sys/leases/revoke``): Vault drops the credentials.

        Revoking a lease that already ended is not an error.

        Args:
            lease: The :class:`Lease`, or its ``lease_id``.

        Raises:
            VaultPermissionError: The policy lacks ``update`` on ``sys/leases/revoke``.
            VaultError: Other failures (connection, auth, unavailable).
        """
        self._check_open()
        lease_id = lease.lease_id if isinstance(lease, Lease) else lease
        with self.settings.retry.operation("vault.revoke_lease"):
            self._request(
                "PUT",
                "sys/leases/revoke",
                json={"lease_id": lease_id},
                operation="vault.lease.revoke",
            )
        logger.info("Revoked lease %s", lease_id)
