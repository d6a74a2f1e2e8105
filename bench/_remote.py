"""Snowflake benchmark steps on another connector line, in a subprocess of that line.

The parent (``python -m bench``) owns the servers: OpenBao's audit log and the double's
counters and faults. :func:`run_steps` starts ``python -m bench._remote`` with the other
line's interpreter and serves the few calls the steps make on those servers over the
child's stdin/stdout, one JSON object per line, so the child runs the very functions of
bench/_snowflake.py that the parent runs for its own line and counts the same way.
Its own Vault client and Snowflake connections are the child's, on its connector.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from importlib.metadata import version
from typing import Any

from bench import _lines
from bench._report import Row

STEPS = ("warm_connect", "recovery")


def run_steps(line: _lines.Line, world: Any, steps: list[str], rounds: int) -> list[Row]:
    """Run ``steps`` of bench/_snowflake.py on ``line`` against ``world``'s servers."""
    spec = {
        "steps": steps,
        "rounds": rounds,
        "vault_addr": world.vault.addr,
        "role_id": world.role_id,
        "secret_id": world.secret_id,
        "sf_password": world.sf_password,
        "account": world.snowflake.account,
        "host": world.snowflake.host,
        "port": world.snowflake.port,
    }
    child = subprocess.Popen(
        [line.python, "-m", "bench._remote", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_lines.env(),
        cwd=_lines.ROOT,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    calls = {
        "login_count": world.snowflake.login_count,
        "expire_sessions": world.snowflake.expire_sessions,
        "mark": world.vault.mark,
        "count": world.count,
    }
    rows: list[Row] = []
    for raw in child.stdout:
        message = json.loads(raw)
        if "rows" in message:
            rows = [Row(**row) for row in message["rows"]]
            break
        result = calls[message["call"]](*message.get("args", ()))
        child.stdin.write(json.dumps({"result": result}) + "\n")
        child.stdin.flush()
    child.stdin.close()
    if child.wait(timeout=60) != 0 or not rows:
        raise RuntimeError(f"the benchmark on {line.label} failed (exit {child.returncode})")
    return rows


# -- the child ---------------------------------------------------------------------------


def _ask(call: str, *args: Any) -> Any:
    sys.stdout.write(json.dumps({"call": call, "args": args}) + "\n")
    sys.stdout.flush()
    return json.loads(sys.stdin.readline())["result"]


class _RemoteDouble:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.account = spec["account"]
        self.host, self.port = spec["host"], spec["port"]

    def login_count(self, user: str) -> int:
        count: int = _ask("login_count", user)
        return count

    def expire_sessions(self, user: str) -> int:
        count: int = _ask("expire_sessions", user)
        return count

    def connect_kwargs(self) -> dict[str, Any]:
        from gds_snowflake._connector import known_parameters

        kwargs: dict[str, Any] = {
            "account": self.account,
            "host": self.host,
            "port": self.port,
            "protocol": "http",
        }
        if "platform_detection_timeout_seconds" in known_parameters():
            kwargs["platform_detection_timeout_seconds"] = 0.0
        return kwargs


class _RemoteVault:
    def __init__(self, addr: str) -> None:
        self.addr = addr

    def mark(self) -> int:
        mark: int = _ask("mark")
        return mark


class RemoteWorld:
    """What bench/_snowflake.py's steps use of bench._world.World, the servers remote."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.vault = _RemoteVault(spec["vault_addr"])
        self.snowflake = _RemoteDouble(spec)
        self.role_id, self.secret_id = spec["role_id"], spec["secret_id"]
        self.sf_password = spec["sf_password"]
        self._clients: list[Any] = []

    def client(self, **kwargs: Any) -> Any:
        from gds_vault import AppRoleAuth, VaultClient

        client = VaultClient(
            self.vault.addr, auth=AppRoleAuth(self.role_id, self.secret_id), **kwargs
        )
        self._clients.append(client)
        return client

    def sf_connect_kwargs(self) -> dict[str, Any]:
        kwargs = self.snowflake.connect_kwargs()
        kwargs.pop("account")
        return kwargs

    def count(self, mark: int) -> dict[str, int]:
        counts: dict[str, int] = _ask("count", mark)
        return counts

    def close(self) -> None:
        for client in self._clients:
            client.close()


def main() -> int:
    from bench import _snowflake

    spec = json.loads(sys.argv[1])
    world = RemoteWorld(spec)
    label = f"connector {version('snowflake-connector-python')}"
    rows = []
    try:
        for step in spec["steps"]:
            if step == "warm_connect":
                rows.append(_snowflake.warm_connect(world, spec["rounds"], line=label))  # type: ignore[arg-type]
            elif step == "recovery":
                rows.append(_snowflake.recovery(world, line=label))  # type: ignore[arg-type]
    finally:
        world.close()
    sys.stdout.write(json.dumps({"rows": [dataclasses.asdict(row) for row in rows]}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
