"""Vault requests per fresh process, with and without the token cache shared by processes.

Every Airflow task, spawned worker and cron job is a new process. Here N fresh
``python`` processes (bench/_taskjob.py) start together and each reads one secret, in
three batches measured in one run: without ``GDS_VAULT_TOKEN_CACHE``; with it, on a cold
cache (the host's first batch); with it again, warm (the steady state of a worker host).
The counts come from the OpenBao audit log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import Row
from bench._world import SECRET_PATH, World

PROCESSES = 16


def _batch(world: World, cache: str | None) -> dict[str, int | float]:
    """Start PROCESSES task processes at once; the Vault requests they made, by kind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "HVAULT_", "GDS_"))}
    env.update(
        VAULT_ADDR=world.vault.addr, VAULT_ROLE_ID=world.role_id, VAULT_SECRET_ID=world.secret_id
    )
    if cache is not None:
        env["GDS_VAULT_TOKEN_CACHE"] = cache
    mark = world.vault.mark()
    started = time.perf_counter()
    tasks = [
        subprocess.Popen(
            [sys.executable, "-m", "bench._taskjob", SECRET_PATH],
            env=env,
            cwd=Path(__file__).resolve().parents[1],  # where `bench` is importable
        )
        for _ in range(PROCESSES)
    ]
    failed = sum(task.wait(timeout=300) != 0 for task in tasks)
    if failed:
        raise RuntimeError(f"{failed} of {PROCESSES} task processes failed")
    counts: dict[str, int | float] = dict(world.count(mark))
    counts["seconds"] = time.perf_counter() - started
    return counts


def _count(n: int | float, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _per_process(counts: dict[str, int | float]) -> str:
    other = f" + {counts['other']} other" if counts["other"] else ""
    return (
        f"{_count(counts['login'], 'login')} + {_count(counts['mounts'], 'mount lookup')} + "
        f"{_count(counts['read'], 'read')}{other} ({counts['seconds']:.1f} s)"
    )


def fresh_processes(world: World) -> Row:
    """Vault requests per process for PROCESSES fresh processes: no cache, cold, warm."""
    directory = tempfile.mkdtemp(prefix="gds-bench-token-cache-")
    try:
        without = _batch(world, None)
        cache = os.path.join(directory, "cache")
        cold = _batch(world, cache)
        warm = _batch(world, cache)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    per = {name: c["total"] / PROCESSES for name, c in (("w", without), ("c", cold), ("h", warm))}
    return Row(
        f"Vault requests per fresh process, {PROCESSES} processes started together (audit log)",
        "the same processes without `GDS_VAULT_TOKEN_CACHE` (with / without)",
        "1 per process warm (the read); 1 login per batch cold",
        warm["total"] == PROCESSES and warm["login"] == 0 and cold["login"] == 1,
        figure=(
            f"warm **{per['h']:.2f}** vs {per['w']:.2f} ({per['h'] / per['w']:.2f}x); "
            f"cold {per['c']:.2f} ({per['c'] / per['w']:.2f}x)"
        ),
        detail=(
            f"without the cache: {_per_process(without)}; with it, cold: {_per_process(cold)}; "
            f"warm: {_per_process(warm)}"
        ),
    )
