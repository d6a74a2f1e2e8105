"""Import time in a fresh interpreter: ours vs hvac and snowflake.connector.

Each import runs in a new ``python`` process that times only the import statement
(interpreter start-up is the same for both and left out). Bytecode is written by a
warm-up run of each import first, so no round pays for compiling ``.pyc`` files; the
rounds then alternate the modules.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from statistics import median

from bench import _lines
from bench._report import Row, us

# (ours, theirs), each imported by every connector line's interpreter, or by this one only.
PAIRS = [("gds_vault", "hvac", False), ("gds_snowflake", "snowflake.connector", True)]
_CHILD = (
    "import time, sys\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "sys.stdout.write(repr(time.perf_counter() - t))\n"
)


def _env() -> dict[str, str]:
    # No PYTHONDONTWRITEBYTECODE, PYTHONPROFILEIMPORTTIME, PYTHONDEVMODE...: they change
    # what an import costs. Where to find packages is kept (this checkout first, so the
    # other line's interpreter imports the same gds_snowflake).
    keep = ("PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in _lines.env().items() if not k.startswith("PYTHON") or k in keep}


def import_seconds(module: str, env: dict[str, str], python: str = sys.executable) -> float:
    out = subprocess.run(
        [python, "-c", _CHILD.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout)


def imports(rounds: int, lines: list[_lines.Line] | None = None) -> list[Row]:
    """One row per pair and line: gds_vault vs hvac here, gds_snowflake vs the connector
    on each connector line."""
    env = _env()
    lines = lines or [_lines.Line(sys.executable, version("snowflake-connector-python"), True)]
    jobs = [  # (row key, module, interpreter)
        (f"{ours}|{line.label}", module, line.python)
        for ours, theirs, every_line in PAIRS
        for line in (lines if every_line else lines[:1])
        for module in (ours, theirs)
    ]
    for _, module, python in jobs:  # warm-up: writes any missing .pyc, fills the OS file cache
        import_seconds(module, env, python)
        import_seconds(module, env, python)
    times: dict[tuple[str, str], list[float]] = {(key, m): [] for key, m, _ in jobs}
    for r in range(rounds):
        for key, module, python in jobs if r % 2 == 0 else jobs[::-1]:
            times[key, module].append(import_seconds(module, env, python))
    rows = []
    for ours, theirs, every_line in PAIRS:
        for line in lines if every_line else lines[:1]:
            key = f"{ours}|{line.label}"
            mine, other = times[key, ours], times[key, theirs]
            ratios = [a / b for a, b in zip(mine, other, strict=True)]
            suffix = f", {line.label}" if every_line else ""
            rows.append(
                Row(
                    f"`import {ours}` in a fresh interpreter{suffix}",
                    f"`import {theirs}` (ours / theirs)",
                    "< 50 ms",
                    median(mine) < 0.050,
                    ratios=ratios,
                    detail=f"{us(median(mine))} vs {us(median(other))} "
                    f"(min {us(min(mine))}, max {us(max(mine))})",
                )
            )
    return rows
