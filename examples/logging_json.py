"""JSON logs for a job: gds_vault, gds_snowflake, the connector's warnings and your own lines.

``configure_logging(fmt="json")`` writes one JSON object per line (time, level, logger,
message, exception) to stderr, through a redaction filter that masks anything token- or
key-shaped as a second line of defence. The libraries log method and path of each Vault
call at DEBUG, logins, renewals and reconnects at INFO, retries at WARNING and final
failures at ERROR; never a token, secret_id, password or key.

The handler it returns can carry other loggers too, so a log shipper (Fluent Bit, Vector,
the Datadog agent, CloudWatch) gets one format for the whole job::

    python examples/logging_json.py 2>> /var/log/etl/job.jsonl

Configured with ``logging.config.dictConfig`` instead? Add the same handler object after
dictConfig, or call ``configure_logging`` last: it only touches the ``gds_vault`` and
``gds_snowflake`` loggers (and replaces a handler it added before, so re-running a
notebook cell does not duplicate lines).

Environment as for the batch job (VAULT_ADDR, the auth variables, SNOWFLAKE_VAULT_PATH;
EXAMPLE_SNOWFLAKE_CONNECT_ARGS only for the tests, see batch_job.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys

log = logging.getLogger("etl.logging_example")


def configure() -> logging.Handler:
    """JSON lines on stderr for the libraries, the job's own logger and the connector."""
    from gds_vault import configure_logging

    level = os.environ.get("LOG_LEVEL", "INFO")
    handler = configure_logging(level=level, fmt="json")
    # The job's own logs, in the same format and through the same redaction filter.
    etl = logging.getLogger("etl")
    etl.addHandler(handler)
    etl.setLevel(level)
    # snowflake.connector is chatty at INFO (every query, every chunk); keep its warnings.
    connector = logging.getLogger("snowflake.connector")
    connector.addHandler(handler)
    connector.setLevel(logging.WARNING)
    return handler


def main() -> int:
    configure()
    from gds_snowflake import get_snowflake_connection

    extra = json.loads(os.environ.get("EXAMPLE_SNOWFLAKE_CONNECT_ARGS") or "{}")
    with get_snowflake_connection(**extra) as conn:
        database, schema = conn.cursor().execute(
            "select current_database(), current_schema()"
        ).fetchone()
        log.info("connected; database %s, schema %s", database, schema)
    log.info("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
