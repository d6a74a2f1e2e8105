"""Leased credentials: Vault's database secrets engine, renewed while in use.

A path such as ``database/creds/etl`` gives new credentials on every read (Vault's
Snowflake database plugin creates a user) with a lease; when the lease ends, Vault drops
the user. ``get_secret`` refuses such a path with ``VaultLeasedSecretError``, which carries
the lease it created; the provider hands that lease to a :class:`LeaseHolder`, and from
then on takes the path's credentials from the holder. The engine's fields map to ours:
``username`` -> user, ``password`` -> password, ``rsa_private_key`` -> private key. The
account and the session fields come from arguments or ``SNOWFLAKE_*``, as for KV secrets.

The lifecycle, per holder (one per Vault client and path, shared by the providers of that
client; a provider with ``revoke_on_close=True`` has its own, which it revokes at close):

- Renewal runs on a timer thread (:class:`_Keeper`, one per process, started with the
  first lease) while any connection logged in with the holder's credentials is open: at
  two thirds of the time left, ``sys/leases/renew`` asks for the lease's first duration
  again. A timer, not renewal on use, because a long query or an idle notebook must not
  lose its user while the connection is open, and nothing else would call Vault then.
- When a renewal comes back shorter than asked (the role's max TTL is near), when the
  lease is not renewable, when its end is near and cannot be moved, or when Vault says it
  is gone, the holder reads new credentials at once; every later login, new connections
  and reconnects alike, uses them. The old user lives until its lease ends; sessions of
  it then find their session gone, log in again with the new credentials and re-run
  the statement (``_connection``), as after a rotation.
- The Vault token must outlive the lease: Vault revokes a token's leases with it. Each
  renewal goes through the client, which renews its token first when due, so the token
  moves on with the lease; ``Lease.ends_at`` is the sooner of the lease's end and its
  token's, and once the client has logged in again (the old token at its max TTL) that
  end is final: the holder replaces the credentials before it, as before a max TTL.
- Credentials are never handed out past their lease: with less than :func:`margin` left
  (a third of the duration, at most 30 s, so that a login has time to finish) the holder
  reads new ones first. With no open connection the timer stops and the lease runs out;
  the next use reads a new one. An idle notebook whose lease ended (or whose machine
  slept through it) finds its session gone at the next statement, logs in again, is
  refused, reads new credentials and re-runs the statement.
- Vault down during a renewal: the current lease is kept while it lasts; the renewal is
  tried again after :data:`RETRY_DELAY` (or sooner, near the end).

Fork: the child gets a new (not yet started) timer and forgets the parent's connections;
a lease is revoked only by the process that read it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from gds_snowflake._credentials import SecretLayout, SnowflakeCredentials, parse_secret
from gds_snowflake._errors import SnowflakeSecretError

if TYPE_CHECKING:
    from gds_vault import Lease, VaultClient

logger = logging.getLogger(__name__)

__all__ = ["ENGINE_FIELDS", "LeaseHolder", "fields_of_lease", "holder_for", "margin"]

#: The database secrets engine's field names -> ours (SecretLayout's defaults).
ENGINE_FIELDS = {"username": "user", "password": "password", "rsa_private_key": "private_key"}
LOGIN_MARGIN = 30.0  # seconds: credentials with less left than this are not handed out
RETRY_DELAY = 5.0  # seconds before a renewal that failed (Vault unreachable) is tried again
MIN_INTERVAL = 0.2  # seconds: the timer never runs a holder more often than this
_LAYOUT = SecretLayout()


def margin(lease: Lease) -> float:
    """Seconds before its end at which a lease's credentials stop being handed out."""
    return min(LOGIN_MARGIN, lease.duration / 3.0) if lease.duration > 0 else 0.0


def fields_of_lease(lease: Lease) -> dict[str, Any]:
    """The lease's credentials under our field names (``user``, ``password``, ``private_key``).

    Raises:
        SnowflakeSecretError: The lease has no ``username``, or neither ``password`` nor
            ``rsa_private_key``: not the database secrets engine's creds path.
    """
    data = lease.data
    present = ", ".join(sorted(map(str, data))) or "none"
    if not data.get("username") or not (data.get("password") or data.get("rsa_private_key")):
        raise SnowflakeSecretError(
            f"The lease from {lease.path} has fields {present}, not the database secrets "
            "engine's username with password or rsa_private_key: read credentials from a "
            "creds path of the engine (database/creds/<role>), or from a KV secret."
        )
    return {ours: data[theirs] for theirs, ours in ENGINE_FIELDS.items() if data.get(theirs)}


class LeaseHolder:
    """One leased path of one Vault client: the current lease, its credentials, renewal.

    Thread-safe; :meth:`credentials` is lock-free while the lease is good.
    """

    def __init__(self, client: VaultClient, path: str, *, shared: bool = True) -> None:
        self.client = client
        self.path = path
        self.shared = shared
        self._current: tuple[Lease, SnowflakeCredentials] | None = None
        self._asked = 0.0  # the first lease's duration: what each renewal asks for
        self._retired: list[Lease] = []  # replaced, maybe still used by open sessions
        self._users: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._scheduled = False
        #: Counters (diagnostics, tests, benchmarks).
        self.renewals = 0
        self.replacements = 0  # new leases read after the first

    def __repr__(self) -> str:
        current = self._current
        lease = f"lease {current[0].lease_id}" if current else "no lease"
        return f"<LeaseHolder {self.path}: {lease}, renewals={self.renewals}>"

    # -- what providers call -----------------------------------------------------------
    def offer(self, lease: Lease) -> None:
        """Take a lease read elsewhere (``VaultLeasedSecretError.lease``) if none is held;
        otherwise revoke it (it would leave an unused user until its TTL)."""
        with self._lock:
            current = self._current
            if current is not None and current[0].lease_id == lease.lease_id:
                return  # the same read, handed to several waiting threads
            if self._usable(current):
                unused: Lease | None = lease
            else:
                self._install(lease, "first read")
                unused = None
        if unused is not None:
            self._revoke_quietly(unused, "not needed")

    def credentials(self) -> SnowflakeCredentials:
        """The current credentials, reading a new lease first if this one is ending.

        Raises:
            VaultError: Vault could not give new credentials.
            SnowflakeSecretError / PrivateKeyError: The lease's fields are unusable.
        """
        current = self._current
        if self._usable(current):
            assert current is not None
            return current[1]
        with self._lock:
            current = self._current
            if self._usable(current):
                assert current is not None
                return current[1]
            why = "its lease ends" if current is not None else "first use"
            return self._replace(why)[1]

    def after_rejection(self, rejected: SnowflakeCredentials) -> SnowflakeCredentials:
        """New credentials after Snowflake refused ``rejected`` (the user was dropped);
        the current ones if another thread already replaced them."""
        with self._lock:
            current = self._current
            if current is not None and current[1] is not rejected and self._usable(current):
                return current[1]
            return self._replace("Snowflake refused the user")[1]

    def track(self, connection: Any) -> None:
        """Note a connection logged in with these credentials: renew while it is open."""
        with self._lock:
            self._users.add(connection)
            if not self._scheduled:
                self._scheduled = True
                _keeper().schedule(self, self._next_delay())

    def in_use(self) -> bool:
        """Whether a connection logged in with the holder's credentials is still open."""
        return any(not _closed(connection) for connection in list(self._users))

    @property
    def lease(self) -> Lease | None:
        """The current lease (None before the first read)."""
        current = self._current
        return current[0] if current else None

    def revoke(self) -> None:
        """Revoke the current lease and those replaced since (``revoke_on_close``).

        Only in the process that read them: a forked child never revokes its parent's.
        Failures are logged (WARNING), never raised: the leases then run out.
        """
        with self._lock:
            leases = [*self._retired, *([self._current[0]] if self._current else [])]
            self._current, self._retired = None, []
            self._users = weakref.WeakSet()
        if self._pid != os.getpid():
            return
        for lease in leases:
            if lease.time_left() > 0:
                self._revoke_quietly(lease, "revoke_on_close")

    def after_fork(self) -> None:
        """In a forked child: a free lock, none of the parent's connections."""
        self._lock = threading.RLock()
        self._users = weakref.WeakSet()
        self._scheduled = False

    # -- the timer's side --------------------------------------------------------------
    def tend(self) -> float | None:
        """Renew or replace the lease if it is in use; seconds until the next look (None:
        stop looking, no connection uses it). Called by the timer thread."""
        with self._lock:
            if self.client.closed or not self.in_use():
                self._scheduled = False
                self._users = weakref.WeakSet(u for u in self._users if not _closed(u))
                return None
            current = self._current
            if current is None:
                self._scheduled = False
                return None
            try:
                self._renew_or_replace(current[0])
            except Exception as exc:
                return self._after_failure(exc)
            return self._next_delay()

    def _renew_or_replace(self, lease: Lease) -> None:
        from gds_vault import VaultLeaseError

        if not lease.renewable:
            if lease.time_left() <= 2 * margin(lease):
                self._replace("its lease is not renewable and ends soon")
            return
        try:
            renewed = self.client.renew_lease(lease, increment=self._asked)
        except VaultLeaseError:
            self._replace("Vault says its lease is gone")
            return
        self.renewals += 1
        self._current = (renewed, self._current[1]) if self._current else None
        if renewed.duration + 0.5 < self._asked:
            self._replace(f"its lease nears its max TTL (renewed for {renewed.duration:.0f} s)")
        elif renewed.time_left() <= 2 * margin(renewed):
            self._replace("the Vault token that read it ends soon")

    def _after_failure(self, exc: BaseException) -> float:
        current = self._current
        left = current[0].time_left() if current else 0.0
        logger.warning(
            "Could not renew the lease of %s (%s); its credentials last %.0f s more, trying again",
            self.path,
            type(exc).__name__,
            max(0.0, left),
        )
        return max(MIN_INTERVAL, min(RETRY_DELAY, left / 3.0))

    def _next_delay(self) -> float:
        current = self._current
        if current is None:
            return RETRY_DELAY
        left = current[0].time_left()
        if math.isinf(left):
            return 3600.0
        return max(MIN_INTERVAL, (left - margin(current[0])) * 2.0 / 3.0)

    # -- inside ------------------------------------------------------------------------
    def _usable(self, current: tuple[Lease, SnowflakeCredentials] | None) -> bool:
        if current is None:
            return False
        lease = current[0]
        return lease.time_left() > margin(lease)

    def _replace(self, why: str) -> tuple[Lease, SnowflakeCredentials]:
        lease = self.client.read_lease(self.path)
        return self._install(lease, why)

    def _install(self, lease: Lease, why: str) -> tuple[Lease, SnowflakeCredentials]:
        credentials = parse_secret(fields_of_lease(lease), self.path, _LAYOUT)
        old = self._current
        self._retired = [r for r in self._retired if r.time_left() > 0]
        if old is not None:
            self._retired.append(old[0])
            self.replacements += 1
        else:
            self._asked = lease.duration
        self._current = (lease, credentials)
        logger.info(
            "Leased Snowflake credentials from %s (%s): user %s, lease %s for %.0f s%s",
            self.path,
            why,
            credentials.user,
            lease.lease_id,
            lease.duration,
            "" if old is None else "; later logins use them",
        )
        return self._current

    def _revoke_quietly(self, lease: Lease, why: str) -> None:
        from gds_vault import VaultError

        try:
            self.client.revoke_lease(lease)
        except (VaultError, RuntimeError) as exc:
            logger.warning(
                "Could not revoke lease %s (%s, %s); it ends by itself in %.0f s",
                lease.lease_id,
                why,
                type(exc).__name__,
                max(0.0, lease.time_left()),
            )


def _closed(connection: Any) -> bool:
    try:
        return bool(connection.is_closed())
    except Exception:
        return True


class _Keeper:
    """The process's lease timer: one daemon thread running holders when they are due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: weakref.WeakKeyDictionary[LeaseHolder, float] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None

    def schedule(self, holder: LeaseHolder, delay: float) -> None:
        with self._cond:
            self._due[holder] = time.monotonic() + delay
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="gds-snowflake-leases", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = [holder for holder, at in list(self._due.items()) if at <= now]
                if not ready:
                    upcoming = min(self._due.values(), default=None)
                    self._cond.wait(None if upcoming is None else max(0.0, upcoming - now))
                    continue
                for holder in ready:
                    del self._due[holder]
            for holder in ready:
                delay = holder.tend()
                if delay is not None:
                    with self._cond:
                        self._due[holder] = time.monotonic() + delay


_keeper_instance: _Keeper | None = None
_keeper_lock = threading.Lock()


def _keeper() -> _Keeper:
    global _keeper_instance
    with _keeper_lock:
        if _keeper_instance is None:
            _keeper_instance = _Keeper()
        return _keeper_instance


# -- which paths are leased, and their holders ----------------------------------------
class _ClientLeases:
    def __init__(self) -> None:
        self.leased: set[str] = set()
        self.shared: dict[str, LeaseHolder] = {}


_registry: weakref.WeakKeyDictionary[Any, _ClientLeases] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def holder_for(
    client: VaultClient, path: str, *, own: LeaseHolder | None = None, lease: Lease | None = None
) -> LeaseHolder | None:
    """The holder of ``path`` for ``client``, or None while the path is not known to be
    leased. ``lease`` (from ``VaultLeasedSecretError``) marks it leased and is offered to
    the holder; ``own`` is a provider's own holder, used instead of the shared one."""
    with _registry_lock:
        try:
            known = _registry.get(client)
        except TypeError:  # not a VaultClient (a stand-in without weak references)
            return None
        if lease is None and (known is None or path not in known.leased):
            return None
        if known is None:
            known = _registry[client] = _ClientLeases()
        known.leased.add(path)
        holder = own
        if holder is None:
            holder = known.shared.get(path)
            if holder is None:
                holder = known.shared[path] = LeaseHolder(client, path)
    if lease is not None:
        holder.offer(lease)
    return holder


def _after_fork_in_child() -> None:
    global _registry_lock, _keeper_instance, _keeper_lock
    _registry_lock = threading.Lock()
    _keeper_lock = threading.Lock()
    _keeper_instance = None  # the parent's thread does not exist here
    for known in list(_registry.values()):
        for holder in known.shared.values():
            holder.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
