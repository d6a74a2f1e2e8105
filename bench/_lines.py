"""The connector lines one benchmark run compares: this interpreter's and the double's.

After the README's dev install this interpreter has connector 5.x. The Snowflake
double's own environment (gds_snowflake.testing._environment, built on first use) has
connector 4.x, and it has everything gds_snowflake needs at run time, so the 4.x side
of a row is measured there: the same code, imported from this checkout through
PYTHONPATH, against the same servers, in the same run. Run from an environment that has
4.x itself and there is one line only (the double then runs from this interpreter).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # where `bench`, `gds_vault`, `gds_snowflake` are


@dataclass(frozen=True)
class Line:
    """A Python interpreter and the connector version it imports."""

    python: str
    connector: str
    here: bool  # this very interpreter (else: run in a subprocess)

    @property
    def label(self) -> str:
        return f"connector {self.connector}"

    @property
    def major(self) -> int:
        return int(self.connector.split(".")[0])


def env() -> dict[str, str]:
    """The environment for a subprocess on either line: this checkout importable first,
    and the connector kept off cloud metadata endpoints (loopback only)."""
    result = dict(os.environ)
    result["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result["SNOWFLAKE_DISABLE_PLATFORM_DETECTION"] = "true"
    return result


def lines() -> list[Line]:
    """This interpreter's line first, then the double's if it is another line."""
    from gds_snowflake.testing._environment import server_interpreter

    here = Line(sys.executable, version("snowflake-connector-python"), here=True)
    python = server_interpreter(report=lambda line: print(line, file=sys.stderr, flush=True))
    # Not realpath: a venv's python is a symlink to the same base interpreter as ours.
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return [here]
    found = subprocess.run(
        [
            python,
            "-c",
            "from importlib.metadata import version as v; print(v('snowflake-connector-python'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    other = Line(python, found, here=False)
    return [here] if other.major == here.major else [here, other]
