"""``gds-snowflake demo`` and ``gds-snowflake sandbox``: tooling on local stand-ins.

The demo runs the whole flow and stops; the sandbox keeps OpenBao and the Snowflake
double running until Ctrl-C, for trying your own code or your own Vault against them.

Not part of the runtime; it needs the ``demo`` extra (OpenBao and the Snowflake double).
"""

from gds_snowflake.demo._sandbox import run_sandbox
from gds_snowflake.demo._scenario import run_demo

__all__ = ["run_demo", "run_sandbox"]
