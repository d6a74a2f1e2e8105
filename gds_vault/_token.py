"""The token lifecycle: one cached token, renewed or replaced before it expires.

Refresh timing: a token with TTL ``t`` seconds is refreshed ``REFRESH_MARGIN`` (5 minutes)
before it expires, or at two thirds of ``t`` when ``t`` is short (under 15 minutes).
Refreshing means ``renew-self`` when the token is renewable and not a batch token, or a
new login otherwise. When a renewal comes back shorter than the login's TTL, the token is
close to its max TTL, so the client logs in afresh instead of renewing ever shorter.

Single flight: threads that need a token while one is being fetched wait for that one
(or keep using the current token if it is still valid), so N threads cause one login.

Leases die with their token: Vault revokes every lease a token created when that token
expires or is revoked. Each token this manager holds gets a *generation* number (a new one
at each login, or when the token cache hands over a different token; a renewal keeps it),
and :meth:`TokenManager.expiry_of` says until when the token of a generation is known to
live: the current token's expiry (which moves on with each renewal), or, for a token since
replaced, the expiry it had then (final: it is never renewed again), or now for one Vault
refused. ``gds_vault._lease`` gives each lease the generation of the token that read it.

Across processes: with a token cache (``shared``, gds_vault._token_cache), a manager that
has no token or whose token is due first looks in the cache, and logs in or renews only
under the cache's lock, writing the result back; N processes cause one login.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gds_vault._auth import AuthMethod, LoginResult
from gds_vault._errors import (
    VaultAuthError,
    VaultError,
    VaultPermissionError,
    VaultUnavailableError,
)
from gds_vault._logging import register_secret
from gds_vault._secret_holder import SecretHolder
from gds_vault._transport import Transport

if TYPE_CHECKING:
    from gds_vault._token_cache import SharedToken

logger = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds before expiry at which a long-lived token is refreshed
SHORT_TTL = 900.0  # seconds: below this, refresh at two thirds of the TTL instead
REFRESH_RETRY_DELAY = 5.0  # seconds to wait before retrying a failed refresh of a valid token


def refresh_delay(ttl: float) -> float | None:
    """Seconds after issue at which a token with this TTL should be refreshed (None: never)."""
    if ttl <= 0:
        return None
    if ttl >= SHORT_TTL:
        return ttl - REFRESH_MARGIN
    return ttl * 2.0 / 3.0


@dataclass(slots=True, kw_only=True)
class _TokenState(SecretHolder):
    token: str = field(repr=False)
    ttl: float
    login_ttl: float  # the TTL at login; a renewal below it means max TTL is near
    renewable: bool
    token_type: str
    refresh_at: float  # clock value; float("inf") for tokens that never expire
    expires_at: float
    policies: tuple[str, ...] = ()
    accessor: str = field(default="", repr=False)
    generation: int = 0  # this manager's number for the token (see the module docstring)

    @classmethod
    def from_login(
        cls, result: LoginResult, now: float, login_ttl: float, generation: int = 0
    ) -> _TokenState:
        delay = refresh_delay(result.ttl)
        return cls(
            token=result.token,
            ttl=result.ttl,
            login_ttl=login_ttl,
            renewable=result.renewable,
            token_type=result.token_type,
            refresh_at=now + delay if delay is not None else float("inf"),
            expires_at=now + result.ttl if result.ttl > 0 else float("inf"),
            policies=result.policies,
            accessor=result.accessor,
            generation=generation,
        )


RETIRED_KEPT = 32  # replaced tokens whose final expiry is remembered (for their leases)


class TokenManager:
    """Hands out a valid token, logging in or renewing only when needed."""

    def __init__(
        self,
        auth: AuthMethod,
        transport: Transport,
        clock: Callable[[], float],
        shared: SharedToken | None = None,
    ):
        self.auth = auth
        self._transport = transport
        self._clock = clock
        self._shared = shared
        self._refused: str | None = None  # the last token Vault refused: never taken again
        self._state: _TokenState | None = None
        # The token this process obtained by logging in (not one given, nor one taken from
        # the token cache or inherited over fork): the only one revoke_own() may revoke.
        self._own: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self.logins = 0  # successful logins by this manager (diagnostics and tests)
        self.renewals = 0
        self._generations = 0  # the last generation handed out
        # generation -> clock value at which a replaced token dies (final; see expiry_of)
        self._retired: dict[int, float] = {}

    def after_fork(self) -> None:
        """In a forked child: a fresh lock; the token itself stays valid and is kept."""
        self._lock = threading.Lock()
        self.auth.after_fork()

    def token(self) -> str:
        """A token that is valid now, refreshing it first when it is due."""
        state = self._state
        if state is not None and self._clock() < state.refresh_at:
            return state.token
        # Another thread may be refreshing; a still-valid token can be used meanwhile.
        if state is not None and self._clock() < state.expires_at - 1.0:
            if not self._lock.acquire(blocking=False):
                return state.token
        else:
            self._lock.acquire()
        try:
            return self._refresh_locked()
        finally:
            self._lock.release()

    def current(self) -> str | None:
        """The cached token, without refreshing it (None if there is none)."""
        return self._state.token if self._state else None

    def generation(self) -> int:
        """The generation of the current token (0: none yet)."""
        state = self._state
        return state.generation if state is not None else 0

    def expiry_of(self, generation: int) -> float:
        """Until when (clock value) the token of ``generation`` is known to live.

        The current token: its expiry now (later after each renewal); a token replaced
        since: its expiry when it was replaced (no one renews it any more), or the
        moment Vault refused it; an unknown generation: 0 (gone).
        """
        state = self._state
        if state is not None and state.generation == generation:
            return state.expires_at
        return self._retired.get(generation, 0.0)

    def _install(self, state: _TokenState | None) -> None:
        """Make ``state`` the current token, retiring the previous one (lock held)."""
        old = self._state
        if old is not None and (state is None or old.generation != state.generation):
            self._retired[old.generation] = old.expires_at
            while len(self._retired) > RETIRED_KEPT:
                del self._retired[min(self._retired)]
        self._state = state

    def _next_generation(self) -> int:
        self._generations += 1
        return self._generations

    def reject(self, token: str) -> None:
        """Forget ``token`` after Vault refused it, so the next call logs in again.

        Only the token the caller used is forgotten: when many threads see the same 403,
        the first forgets it and the others find a new token already in place.
        """
        with self._lock:
            self._refused = token
            if self._state is not None and self._state.token == token:
                logger.info("Vault no longer accepts the cached token; logging in again")
                self._state.expires_at = min(self._state.expires_at, self._clock())  # dead
                self._install(None)

    def clear(self) -> None:
        with self._lock:
            self._install(None)  # forgotten, not revoked: it lives on until it expires
            self._refused = None
            self._own = None

    def revoke_own(self) -> None:
        """Revoke the current token if this process logged in for it (``revoke-self``).

        Never a token the user gave (TokenAuth: it is theirs), one taken from the token
        cache, or one inherited from a parent process over fork. One attempt; a failure is
        logged (WARNING, the token then lives until it expires), never raised.
        """
        state = self._state
        if state is None or self._own != (state.token, os.getpid()):
            return
        try:
            self._transport.request(
                "POST",
                "auth/token/revoke-self",
                token=state.token,
                operation="vault.token.revoke",
                retry=False,
            )
        except VaultError as exc:
            logger.warning(
                "Could not revoke the Vault token at close (%s); it stays valid until it expires",
                type(exc).__name__,
            )
            return
        logger.info("Revoked the Vault token at close (revoke_on_close)")

    def _refresh_locked(self) -> str:
        now = self._clock()
        state = self._state
        if state is not None and now < state.refresh_at:
            return state.token  # refreshed by another thread while we waited
        if self._shared is None:
            return self._refresh(state, now)
        return self._refresh_shared(self._shared)

    def _refresh_shared(self, shared: SharedToken) -> str:
        """Take the token another process logged in or renewed, if it is not due; else
        renew or log in under the cache's lock (one process at a time), writing back."""
        found = shared.load(refused=self._refused)
        if found is None or self._clock() >= found.refresh_at:
            with shared.exclusive(ready=lambda: shared.has_fresh(refused=self._refused)):
                found = shared.load(refused=self._refused)
                if found is None or self._clock() >= found.refresh_at:
                    self._adopt(shared, found)  # a due token from the cache gets renewed
                    return self._refresh(self._state, self._clock())
        self._adopt(shared, found)
        return found.token

    def _adopt(self, shared: SharedToken, found: _TokenState | None) -> None:
        if found is None:
            return
        if self._state is None or self._state.token != found.token:
            logger.info(
                "Using the Vault token from the token cache %s (%s; policies: %s): no login",
                shared.where,
                self.auth.name,
                ", ".join(found.policies) or "none",
            )
        current = self._state
        same = current is not None and current.token == found.token
        found.generation = current.generation if current and same else self._next_generation()
        self._install(found)

    def _refresh(self, state: _TokenState | None, now: float) -> str:
        """Renew ``state``'s token or log in, from Vault."""
        try:
            if state is not None and now < state.expires_at and self._can_renew(state):
                renewed = self._renew(state, now)
                if renewed is not None:
                    return renewed
            return self._login()
        except VaultError as exc:
            if state is not None and exc.retryable and self._clock() < state.expires_at - 1.0:
                # Vault is briefly unreachable but our token is still good: keep using it.
                logger.warning(
                    "Could not refresh the Vault token (%s); using the current one, which "
                    "is valid for %.0f s more",
                    type(exc).__name__,
                    state.expires_at - self._clock(),
                )
                state.refresh_at = self._clock() + REFRESH_RETRY_DELAY
                return state.token
            raise

    @staticmethod
    def _can_renew(state: _TokenState) -> bool:
        return state.renewable and state.token_type != "batch"  # noqa: S105 - a kind

    def _renew(self, state: _TokenState, now: float) -> str | None:
        """Renew the token; None when a fresh login is the better choice."""
        try:
            body = self._transport.request(
                "POST",
                "auth/token/renew-self",
                token=state.token,
                json={"increment": f"{int(state.login_ttl)}s"},
                operation="vault.token.renew",
                # Not retried: a refused renewal is answered by a new login, and Vault
                # answers 500 "past the max TTL, cannot renew" near the max TTL, which
                # retries would only repeat while the token runs out.
                retry=False,
            )
        except (VaultPermissionError, VaultAuthError, VaultUnavailableError):
            logger.info("Vault refused to renew the token; logging in again")
            return None
        auth = (body or {}).get("auth") or {}
        ttl = float(auth.get("lease_duration") or 0)
        if ttl <= 0 or (ttl < state.login_ttl and self._can_login_again()):
            logger.info(
                "Vault token renewal gave %.0f s (login gave %.0f s): near its max TTL, "
                "logging in again",
                ttl,
                state.login_ttl,
            )
            return None
        result = LoginResult(
            token=state.token,
            ttl=ttl,
            renewable=bool(auth.get("renewable", state.renewable)),
            token_type=state.token_type,
            policies=state.policies,
            accessor=state.accessor,
        )
        self._state = _TokenState.from_login(result, now, state.login_ttl, state.generation)
        self.renewals += 1
        register_secret(state.token)  # in use for longer: kept by the redaction filter
        logger.info("Renewed the Vault token; valid for %.0f s", ttl)
        if self._shared is not None:
            self._shared.save(self._state)
        return state.token

    def _can_login_again(self) -> bool:
        # A fixed token cannot be replaced by logging in; renewing is all we can do.
        return self.auth.name != "token" or getattr(self.auth, "token_file", None) is not None

    def _login(self) -> str:
        result = self.auth.login(self._transport)
        register_secret(result.token)
        state = _TokenState.from_login(result, self._clock(), result.ttl, self._next_generation())
        self._install(state)
        # Token auth (a token, a token file, ~/.vault-token) hands back the user's token.
        self._own = (result.token, os.getpid()) if self.auth.name != "token" else None
        self.logins += 1
        if self._shared is not None:
            self._shared.save(state)
        logger.info(
            "Logged in to Vault with %s; token valid for %s, %s, policies: %s",
            self.auth.name,
            f"{result.ttl:.0f} s" if result.ttl > 0 else "ever (no TTL)",
            "renewable" if self._can_renew(state) else "not renewable",
            ", ".join(result.policies) or "none",
        )
        return result.token

    def check_rejected(self, token: str, exc: VaultPermissionError) -> bool:
        """Whether a 403 means the token itself is dead (rather than a policy denial)."""
        if self.current() != token:
            return True  # already replaced by another thread
        if any("invalid token" in e.lower() for e in exc.errors):
            return True
        try:
            self._transport.request(
                "GET",
                "auth/token/lookup-self",
                token=token,
                operation="vault.token.lookup",
                retry=False,
            )
        except (VaultPermissionError, VaultAuthError):
            return True
        except VaultError:
            return False
        return False
