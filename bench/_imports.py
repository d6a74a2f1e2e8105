"""Import time in a fresh interpreter: ours vs hvac and snowflake.connector.

Each import runs in a new ``python`` process that times only the import statement
(interpreter start-up is the same for both and left out). Bytecode is written by a
warm-up run of each import first, so no round pays for compiling ``.pyc`` files; the
rounds then alternate the modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from statistics import median

from bench._report import Row, us

PAIRS = [("gds_vault", "hvac"), ("gds_snowflake", "snowflake.connector")]
_CHILD = (
    "import time, sys\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "sys.stdout.write(repr(time.perf_counter() - t))\n"
)


def _env() -> dict[str, str]:
    # No PYTHONDONTWRITEBYTECODE, PYTHONPROFILEIMPORTTIME, PYTHONDEVMODE...: they change
    # what an import costs. Where to find packages is kept.
    keep = ("PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") or k in keep}


def import_seconds(module: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout)


def imports(rounds: int) -> list[Row]:
    env = _env()
    modules = [m for pair in PAIRS for m in pair]
    for module in modules:  # warm-up: writes any missing .pyc, fills the OS file cache
        import_seconds(module, env)
        import_seconds(module, env)
    times: dict[str, list[float]] = {m: [] for m in modules}
    for r in range(rounds):
        order = modules if r % 2 == 0 else modules[::-1]
        for module in order:
            times[module].append(import_seconds(module, env))
    rows = []
    for ours, theirs in PAIRS:
        ratios = [a / b for a, b in zip(times[ours], times[theirs], strict=True)]
        ours_ms = median(times[ours])
        rows.append(
            Row(
                f"`import {ours}` in a fresh interpreter",
                f"`import {theirs}` (ours / theirs)",
                "< 50 ms",
                ours_ms < 0.050,
                ratios=ratios,
                detail=f"{us(ours_ms)} vs {us(median(times[theirs]))} "
                f"(min {us(min(times[ours]))}, max {us(max(times[ours]))})",
            )
        )
    return rows
