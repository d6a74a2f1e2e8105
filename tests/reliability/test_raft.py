"""High availability against a real 3-node OpenBao Raft cluster behind a TCP balancer.

The cluster (``tests/reliability/raft.py``) costs about 8 s to bring up, so it is made
once for this module and only here. The first test makes a standby answer 307 (the
balancer adds ``X-Vault-No-Request-Forwarding``, as when a standby cannot forward) and
checks that the client follows it to the active node. The second kills the active node
mid-run (SIGKILL) while readers and fresh logins go through the balancer, with the
default retry policy: no call may fail.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from gds_vault import AppRoleAuth, VaultClient
from tests.reliability.balancer import TcpBalancer
from tests.reliability.conftest import write_row
from tests.reliability.raft import RaftCluster

pytestmark = pytest.mark.timeout(120)

SECRET = {"user": "HA_USER", "password": "pw-ha-1"}
PATH = "secret/ha/app"
POLICY = 'path "secret/data/ha/*" { capabilities = ["read"] }'


@dataclass
class HA:
    """The provisioned cluster and an AppRole allowed to read the secret."""

    cluster: RaftCluster
    role_id: str
    secret_id: str

    def auth(self) -> AppRoleAuth:
        return AppRoleAuth(self.role_id, self.secret_id)


@pytest.fixture(scope="module")
def ha() -> Iterator[HA]:
    """A provisioned 3-node cluster: AppRole, KV v2 at secret/, one secret, one policy.

    Standbys answer reads (and the reads inside a login) from their own copy of the
    data, so everything is made here and waited for on every node before the tests.
    """
    with RaftCluster() as raft:
        raft.api("POST", "sys/auth/approle", {"type": "approle"})
        raft.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        raft.api("PUT", "sys/policies/acl/ha-reader", {"policy": POLICY})
        # A new KV v2 mount upgrades itself for a moment; writes and standby reads wait.
        _until(lambda: raft.api("POST", "secret/data/ha/app", {"data": SECRET}))
        role_id, secret_id = raft.approle("ha", ["ha-reader"])
        login = {"role_id": role_id, "secret_id": secret_id}
        for index in range(raft.size):
            _until(lambda i=index: raft._call(i, "GET", "secret/data/ha/app", token=raft.root_token))
            _until(lambda i=index: raft._call(i, "POST", "auth/approle/login", login))
        yield HA(raft, role_id, secret_id)


def _until(action, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def backends(cluster: RaftCluster) -> list[tuple[str, int]]:
    return [("127.0.0.1", port) for port in cluster.ports]


def test_standby_redirect_is_followed_to_the_active_node(ha, caplog):
    """A standby that does not forward answers with 307; the client follows each redirect
    to the active node (one DEBUG line each), logs in and reads, with no retry."""
    caplog.set_level(logging.DEBUG, logger="gds_vault")
    cluster = ha.cluster
    leader = cluster.wait_for_leader()
    standby = (leader + 1) % cluster.size
    with TcpBalancer(
        backends(cluster), prefer=standby, add_header="X-Vault-No-Request-Forwarding: true"
    ) as balancer, VaultClient(balancer.addr, auth=ha.auth(), cache_ttl=0) as client:
        assert client.get_secret(PATH) == SECRET
        assert set(balancer.connections) == {standby}
    redirects = [r.getMessage() for r in caplog.records if r.name == "gds_vault._redirects"]
    # One DEBUG line per redirect: the login, the mount lookup and the read, each sent to
    # the standby first and followed to the active node.
    expected = ["POST /v1/auth/approle/login", "GET /v1/sys/internal/ui/mounts/secret/ha/app",
                "GET /v1/secret/data/ha/app"]
    assert [line.split(" redirected ")[1].split(" to ")[0] for line in redirects] == expected
    assert all(f" to {cluster.addr(leader)} " in line for line in redirects)
    assert not [r for r in caplog.records if r.name == "gds_vault.retry"]


@dataclass
class Run:
    """What the callers saw during the run."""

    calls: int = 0
    failures: list[BaseException] = field(default_factory=list)
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: BaseException | None) -> None:
        with self.lock:
            self.calls += 1
            self.slowest = max(self.slowest, seconds)
            if error is not None:
                self.failures.append(error)


def test_leader_killed_mid_run_costs_no_failed_call(ha, caplog):
    """SIGKILL of the active node while a reader and a stream of fresh logins go through the
    balancer: with default settings every call succeeds (retries and redirects ride out the
    election); the slowest call stays within the 30 s deadline."""
    caplog.set_level(logging.DEBUG, logger="gds_vault")
    cluster = ha.cluster
    run = Run()
    stop = threading.Event()

    def timed(call) -> None:
        started = time.monotonic()
        try:
            assert call() == SECRET
        except Exception as exc:
            run.record(time.monotonic() - started, exc)
        else:
            run.record(time.monotonic() - started, None)

    with TcpBalancer(backends(cluster)) as balancer:

        def reader() -> None:  # one client, its kept-alive connection pinned to one node
            with VaultClient(balancer.addr, auth=ha.auth(), cache_ttl=0) as c:
                while not stop.is_set():
                    timed(lambda: c.get_secret(PATH))
                    time.sleep(0.05)

        def newcomer() -> None:  # a new process each time: login, mount lookup, read
            while not stop.is_set():

                def fresh() -> dict:
                    with VaultClient(balancer.addr, auth=ha.auth(), cache_ttl=0) as c:
                        return c.get_secret(PATH)

                timed(fresh)
                time.sleep(0.1)

        workers = [threading.Thread(target=w, daemon=True) for w in (reader, reader, newcomer)]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        old_leader = cluster.wait_for_leader()
        killed_at = time.monotonic()
        cluster.kill(old_leader)
        new_leader = cluster.wait_for_leader(exclude={old_leader})
        election = time.monotonic() - killed_at
        calls_before = run.calls
        time.sleep(3.0)  # keep calling on the new leader for a while
        stop.set()
        for worker in workers:
            worker.join(60)
    assert run.failures == []
    assert run.calls > calls_before > 10
    assert run.slowest < 30.0
    redirects = sum(1 for r in caplog.records if r.name == "gds_vault._redirects")
    retries = sum(1 for r in caplog.records if r.name == "gds_vault.retry")
    write_row(
        "faults",
        fault="Raft leader killed behind a load balancer",
        injected=(
            f"SIGKILL of the active node of 3 (OpenBao Raft) under 2 readers and a stream of "
            f"fresh logins through a TCP balancer; new leader node {new_leader} after "
            f"{election:.1f} s"
        ),
        saw=(
            f"success, {run.calls}/{run.calls} calls, {retries} retries, "
            f"{redirects} redirects followed"
        ),
        attempts=run.calls + retries,
        seconds=round(run.slowest, 2),
        deadline="30.0 (default)",
    )
