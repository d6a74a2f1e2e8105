"""Leased credentials under time and faults: renewals, replacement before the max TTL, a
user dropped under a live connection, Vault down during a renewal. Real leases: OpenBao's
database secrets engine on a real PostgreSQL; the double accepts what PostgreSQL accepts
(tests/postgres.py). Rows go to RELIABILITY.md's "Leases" table."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from gds_vault import AppRoleAuth, RetryPolicy, VaultClient
from tests.reliability.conftest import write_row
from tests.reliability.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(90)


def run_for(conn, seconds: float, every: float = 0.25) -> tuple[int, int]:
    """Run ``select 1`` on ``conn`` every ``every`` s for ``seconds``: (ran, failed)."""
    ran = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            assert conn.cursor().execute("select 1").fetchone()[0] == 1
            ran += 1
        except Exception:
            failed += 1
        time.sleep(every)
    return ran, failed


def row(case: str, injected: str, saw: str, vault: str, seconds: float) -> None:
    write_row("leases", case=case, injected=injected, saw=saw, vault=vault,
              seconds=round(seconds, 2))  # fmt: skip


def test_lease_renewed_for_as_long_as_the_connection_is_used(leases):
    """A 2 s lease under a connection used for 6 s: renewed on time, never lost."""
    client = leases.client()
    path = leases.role(ttl="2s", max_ttl="60s")
    started = time.monotonic()
    conn, holder = leases.connect(path, client)
    ran, failed = run_for(conn, 6.0)
    assert failed == 0 and conn.reconnects == 0
    assert holder.replacements == 0 and holder.renewals >= 4
    assert leases.postgres.role_exists(holder.lease.data["username"])
    conn.close()
    row("Lease renewed while in use", "lease TTL 2 s (max 60 s), connection used for 6 s",
        f"success: {ran}/{ran} statements, 0 reconnects",
        f"{holder.renewals} renewals, 1 lease read", time.monotonic() - started)  # fmt: skip


def test_credentials_replaced_before_the_max_ttl(leases):
    """Lease TTL 2 s, max TTL 4 s, a connection used for 9 s: new credentials are read
    before each max TTL, and the connection moves to each new user when the old one is
    dropped, re-running its statement: no statement fails."""
    client = leases.client()
    path = leases.role(ttl="2s", max_ttl="4s")
    started = time.monotonic()
    conn, holder = leases.connect(path, client)
    ran, failed = run_for(conn, 9.0)
    assert failed == 0
    assert holder.replacements >= 2
    assert conn.reconnects >= 1
    conn.close()
    row("Replaced before the max TTL", "lease TTL 2 s, max TTL 4 s, connection used for 9 s",
        f"success: {ran}/{ran} statements; {conn.reconnects} reconnects as the new user",
        f"{holder.replacements + 1} leases read, {holder.renewals} renewals",
        time.monotonic() - started)  # fmt: skip


def test_user_dropped_under_a_live_connection(leases):
    """The lease revoked in Vault (the user dropped) under an open connection: the next
    statement logs in again with new credentials and is re-run."""
    client = leases.client()
    path = leases.role(ttl="60s")
    conn, holder = leases.connect(path, client)
    old = holder.lease
    leases.vault.api("PUT", "sys/leases/revoke", {"lease_id": old.lease_id})
    assert not leases.postgres.role_exists(old.data["username"])
    started = time.monotonic()
    assert conn.cursor().execute("select 1").fetchone()[0] == 1
    seconds = time.monotonic() - started
    assert conn.reconnects == 1 and holder.lease.lease_id != old.lease_id
    refused = leases.snowflake.failed_login_count(old.data["username"])
    assert refused == 1
    conn.close()
    row("User dropped under a live connection", "sys/leases/revoke of the lease in use",
        "success: the statement re-run as a new user (1 reconnect)",
        f"{refused} refused login, 1 new lease read", seconds)  # fmt: skip


def test_vault_down_during_a_renewal(leases, caplog):
    """Vault unreachable for 2 s while a 4 s lease is due for renewal: the renewal fails
    (one WARNING each), is tried again, succeeds when Vault is back; the connection
    never notices and the user is never dropped."""
    caplog.set_level(logging.WARNING, logger="gds_snowflake")
    role_id, secret_id = leases.vault.approle("lease-outage", policies=["leases"])
    policy = RetryPolicy(attempts=2, initial_wait=0.05, max_wait=0.1, jitter=0.0, deadline=0.5)
    with FaultProxy(("127.0.0.1", leases.vault.port)) as proxy:
        client = VaultClient(proxy.addr, auth=AppRoleAuth(role_id, secret_id), retry=policy,
                             timeout=0.5)  # fmt: skip
        leases.clients.append(client)
        path = leases.role(ttl="4s", max_ttl="60s")
        started = time.monotonic()
        conn, holder = leases.connect(path, client)
        user = holder.lease.data["username"]
        proxy.set("refuse")
        threading.Timer(2.0, proxy.set, ("pass",)).start()
        ran, failed = run_for(conn, 6.0)
        conn.close()
    failures = [r for r in caplog.records if "Could not renew the lease" in r.getMessage()]
    assert failed == 0 and conn.reconnects == 0
    assert failures, "the renewal should have met the outage"
    assert holder.renewals >= 1 and holder.replacements == 0
    assert leases.postgres.role_exists(user)
    row("Vault down during a renewal", "Vault refused for 2 s as a 4 s lease fell due",
        f"success: {ran}/{ran} statements, 0 reconnects",
        f"{len(failures)} failed renewals (WARNING), then {holder.renewals} renewals",
        time.monotonic() - started)  # fmt: skip
