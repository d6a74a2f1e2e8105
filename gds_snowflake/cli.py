"""The ``gds-snowflake`` command: ``demo`` (and diagnostics).

Exit codes: 0 success, 1 a step failed, 2 usage or missing dependency.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gds-snowflake",
        description="Snowflake connections with credentials from Vault.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="run the whole flow on a local OpenBao server and Snowflake double",
        description="Start local OpenBao and Snowflake stand-ins, connect as a job would, "
        "expire the session and rotate the key, and clean up.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from gds_snowflake._demo import run_demo  # noqa: PLC0415

        return run_demo()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
