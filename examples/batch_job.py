"""A nightly batch job: daily revenue per region, from Snowflake, with credentials from Vault.

The job never sees a password or a key. Where it runs (cron, a Kubernetes CronJob, a CI
runner) it gets an AppRole and the path of its Snowflake secret::

    export VAULT_ADDR=https://vault.example.com:8200
    export VAULT_ROLE_ID=...                 # the job's AppRole
    export VAULT_SECRET_ID_FILE=/run/secrets/etl-secret-id   # or VAULT_SECRET_ID
    export SNOWFLAKE_VAULT_PATH=secret/snowflake/etl
    python examples/batch_job.py --date 2024-06-30 --warehouse ETL_WH

It is idempotent: a re-run for the same date replaces that date's rows, in one
transaction (autocommit off; the ``with`` block commits, or rolls back on error).

Exit codes: 0 done; 1 the job failed (Snowflake or Vault said no; see the log);
2 the configuration is wrong (a VAULT_* variable, the secret's path or its fields).

EXAMPLE_SNOWFLAKE_CONNECT_ARGS is not a library setting: the examples read it (a JSON
object of extra ``snowflake.connector.connect`` arguments) so that their tests can point
them at the local Snowflake double. In production leave it unset, or use it for options
such as ``{"login_timeout": 30}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from typing import Any

logger = logging.getLogger("batch_job")


def connect_args_from_env() -> dict[str, Any]:
    """Extra connect() arguments from EXAMPLE_SNOWFLAKE_CONNECT_ARGS (JSON), if set."""
    extra = json.loads(os.environ.get("EXAMPLE_SNOWFLAKE_CONNECT_ARGS") or "{}")
    if not isinstance(extra, dict):
        raise ValueError("EXAMPLE_SNOWFLAKE_CONNECT_ARGS must be a JSON object")
    return extra


def run(conn: Any, run_date: dt.date) -> int:
    """Rebuild one day of daily_revenue from orders; returns the number of regions written."""
    cursor = conn.cursor()
    cursor.execute(
        "create table if not exists daily_revenue "
        "(run_date date, region varchar, orders int, revenue number(12, 2))"
    )
    cursor.execute("delete from daily_revenue where run_date = %s", (run_date.isoformat(),))
    cursor.execute(
        "insert into daily_revenue "
        "select %s, region, count(*), sum(amount) from orders "
        "where order_date = %s group by region",
        (run_date.isoformat(), run_date.isoformat()),
    )
    written = cursor.execute(
        "select count(*) from daily_revenue where run_date = %s", (run_date.isoformat(),)
    ).fetchone()[0]
    return int(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    yesterday = dt.date.today() - dt.timedelta(days=1)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=yesterday,
                        help="the day to rebuild (default: yesterday)")
    parser.add_argument("--secret-path", default=None,
                        help="Vault secret (default: SNOWFLAKE_VAULT_PATH)")
    parser.add_argument("--warehouse", default=None, help="overrides the secret's warehouse")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)

    # Imported here, not at the top: `--help` and argument errors stay instant.
    from snowflake.connector.errors import Error as SnowflakeError

    from gds_snowflake import (
        SnowflakeConfigError,
        SnowflakeSecretError,
        SnowflakeVaultError,
        get_snowflake_connection,
    )
    from gds_vault import VaultConfigError, VaultError, configure_logging

    handler = configure_logging(level="INFO", fmt=args.log_format)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    try:
        with get_snowflake_connection(
            args.secret_path, warehouse=args.warehouse, autocommit=False, **connect_args_from_env()
        ) as conn:
            written = run(conn, args.date)
    except (VaultConfigError, SnowflakeConfigError, SnowflakeSecretError) as exc:
        logger.error("configuration problem: %s", exc)
        return 2
    except (VaultError, SnowflakeVaultError, SnowflakeError) as exc:
        logger.error("job failed: %s", exc)
        return 1
    logger.info("daily_revenue for %s: %d region(s) written", args.date, written)
    print(f"{args.date} {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
