"""``gds-snowflake doctor``: tooling that walks every step a connection needs.

Not part of the runtime: nothing in ``gds_snowflake``'s connection path imports it. The
runner and output model live in :mod:`gds_snowflake.doctor._runner`, the steps in
``_vault_steps`` (config to secret) and ``_snowflake_steps`` (key to session).
"""

from gds_snowflake.doctor._runner import CLOCK_LIMIT, CLOCK_OK, QUERY, STEPS, StepResult, run_doctor

__all__ = ["CLOCK_LIMIT", "CLOCK_OK", "QUERY", "STEPS", "StepResult", "run_doctor"]
