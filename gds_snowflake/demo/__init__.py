"""``gds-snowflake demo``: tooling that runs the whole flow on local stand-ins.

Not part of the runtime; it needs the ``demo`` extra (OpenBao and the Snowflake double).
"""

from gds_snowflake.demo._scenario import run_demo

__all__ = ["run_demo"]
