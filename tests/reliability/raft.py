"""A real 3-node OpenBao cluster with Raft storage on loopback ports, for HA tests.

::

    with RaftCluster() as cluster:           # started, initialised, unsealed, joined
        leader = cluster.leader()            # index of the active node
        cluster.kill(leader)                 # SIGKILL: a crash, not a clean step-down
        cluster.wait_for_leader(exclude={leader})

Each node is ``bao server`` with a config file of its own (raft storage in a temporary
folder, a plain-HTTP listener, ``api_addr`` and ``cluster_addr`` on loopback ports).
Node 0 is initialised (``sys/init``, one unseal key) and unsealed; the others join it
(``sys/storage/raft/join``) and are unsealed with the same key. Autopilot's
stabilisation time and intervals are cut (1 s, 0.5 s) so that the joined nodes become
voters within seconds; only then can the cluster elect a new leader when one dies. ``performance_multiplier = 1``
gives Raft its tightest timings (an election takes about 2 s).

The root token and the unseal key are registered as secrets, so the suite's hygiene
check fails any test that would log them.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from gds_vault.testing import find_bao, free_port, register_written_secret

_CONFIG = """
storage "raft" {{
  path = "{data}"
  node_id = "node{index}"
  performance_multiplier = 1
  autopilot_reconcile_interval = "500ms"
  autopilot_update_interval = "250ms"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
disable_mlock = true
"""
STARTUP = 30.0  # seconds allowed for each step of bringing the cluster up


class RaftCluster:
    """Three (or ``size``) OpenBao nodes on loopback forming one Raft cluster."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self.dir = Path(tempfile.mkdtemp(prefix="gds-raft-"))
        self.ports = [free_port() for _ in range(size)]
        self.root_token = ""
        self._unseal_key = ""
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * size
        self._http = requests.Session()
        self._http.trust_env = False

    # -- lifecycle -------------------------------------------------------------------------
    def addr(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self) -> RaftCluster:
        for index in range(self.size):
            self._spawn(index)
        for index in range(self.size):
            self._until(lambda i=index: self._health(i) is not None, f"node {index} to listen")
        init = self._call(0, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.root_token, self._unseal_key = init["root_token"], init["keys"][0]
        register_written_secret(self.root_token)
        register_written_secret(self._unseal_key)
        self._unseal(0)
        self._until(lambda: self.leader() == 0, "node 0 to become active")
        self.api("POST", "sys/storage/raft/autopilot/configuration",
                 {"server_stabilization_time": "1s"})
        for index in range(1, self.size):
            self._call(index, "POST", "sys/storage/raft/join", {"leader_api_addr": self.addr(0)})
            self._unseal(index)
        self._until(self._all_voters, "every node to become a Raft voter")
        return self

    def stop(self) -> None:
        for index, process in enumerate(self._processes):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._processes[index] = None
        self._http.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RaftCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the cluster's state ---------------------------------------------------------------
    def leader(self, exclude: set[int] | frozenset[int] = frozenset()) -> int | None:
        """The index of the active node (unsealed, not standby), or None."""
        for index in range(self.size):
            if index in exclude:
                continue
            health = self._health(index)
            if health and health.get("initialized") and not health.get("sealed"):
                if not health.get("standby"):
                    return index
        return None

    def wait_for_leader(self, exclude: set[int] | frozenset[int] = frozenset()) -> int:
        found: list[int] = []

        def elected() -> bool:
            leader = self.leader(exclude)
            if leader is not None:
                found.append(leader)
            return leader is not None

        self._until(elected, "a leader to be elected")
        return found[-1]

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a crash would end it."""
        process = self._processes[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self._processes[index] = None

    def alive(self) -> list[int]:
        return [i for i, p in enumerate(self._processes) if p is not None and p.poll() is None]

    # -- admin API (as root, on the active node) --------------------------------------------
    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        leader = self.wait_for_leader(exclude={i for i in range(self.size)} - set(self.alive()))
        return self._call(leader, method, path, body, token=self.root_token)

    def approle(self, name: str, policies: list[str], **options: Any) -> tuple[str, str]:
        self.api("POST", f"auth/approle/role/{name}", {"token_policies": policies, **options})
        role_id = self.api("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        secret_id = self.api("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
        register_written_secret(secret_id)
        return role_id, secret_id

    # -- internals -------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        data = self.dir / f"node{index}"
        data.mkdir()
        config = self.dir / f"node{index}.hcl"
        config.write_text(
            _CONFIG.format(
                data=data, index=index, port=self.ports[index], cluster_port=free_port()
            ),
            encoding="utf-8",
        )
        with (self.dir / f"node{index}.log").open("wb") as log:
            self._processes[index] = subprocess.Popen(
                [find_bao(), "server", f"-config={config}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env={"PATH": "/usr/bin:/bin", "HOME": str(self.dir)},
            )

    def _unseal(self, index: int) -> None:
        self._call(index, "PUT", "sys/unseal", {"key": self._unseal_key})

    def _all_voters(self) -> bool:
        state = self.api("GET", "sys/storage/raft/autopilot/state")["data"]
        return bool(state.get("healthy")) and len(state.get("voters") or []) == self.size

    def _health(self, index: int) -> dict[str, Any] | None:
        try:
            response = self._http.get(
                f"{self.addr(index)}/v1/sys/health",
                params={"standbyok": "true", "sealedcode": "200", "uninitcode": "200"},
                timeout=1,
            )
            return response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def _call(
        self,
        index: int,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> Any:
        response = self._http.request(
            method,
            f"{self.addr(index)}/v1/{path}",
            json=body,
            headers={"X-Vault-Token": token} if token else {},
            timeout=10,
        )
        if response.status_code not in (200, 204):
            raise RuntimeError(
                f"{method} {path} on node {index} -> {response.status_code}: "
                f"{response.text[:300]}"
            )
        return json.loads(response.content) if response.content else None

    def _until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (requests.RequestException, RuntimeError, KeyError):
                pass  # not ready yet
            time.sleep(0.1)
        logs = {i: (self.dir / f"node{i}.log").read_text(errors="replace")[-800:]
                for i in range(self.size)}
        raise RuntimeError(f"Raft cluster: timed out waiting for {what}; last logs: {logs}")
