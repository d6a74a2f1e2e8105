"""A test DAG (not an example): one task whose Snowflake session expires half-way.

The task keeps a connection from ``VaultSnowflakeHook.get_conn()``, queries, then writes
the file named by GDS_TEST_READY and waits for GDS_TEST_GO: in between, the test expires
the user's Snowflake sessions in the double. The task then queries again on the same
connection and cursor (which must log in again by itself), and once more through
``hook.get_first`` and the SQL operator downstream. It prints what it saw as one JSON
line (``MID_TASK_RESULT {...}``) for the test to read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import dag, task

WAIT_TIMEOUT = 60.0  # seconds for the test to expire the session


@task
def long_running_query() -> int:
    from gds_snowflake.airflow import VaultSnowflakeHook

    hook = VaultSnowflakeHook(snowflake_conn_id="sf_vault")
    conn = hook.get_conn()
    cursor = conn.cursor()
    before = cursor.execute("select count(*) from orders").fetchone()[0]
    Path(os.environ["GDS_TEST_READY"]).write_text("ready", encoding="utf-8")
    go = Path(os.environ["GDS_TEST_GO"])
    deadline = time.monotonic() + WAIT_TIMEOUT
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never expired the session")
        time.sleep(0.05)
    after = cursor.execute("select count(*) from orders where order_date = '2024-06-30'")
    after_count = after.fetchone()[0]
    first = hook.get_first("select count(*) from orders")
    result = {
        "before": before,
        "after": after_count,
        "get_first": first[0],
        "reconnects": conn.reconnects,
    }
    conn.close()
    print("MID_TASK_RESULT " + json.dumps(result), flush=True)
    return int(after_count)


@dag(schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False)
def gds_mid_task_expiry() -> None:
    count = long_running_query()
    count >> SQLExecuteQueryOperator(
        task_id="operator_after_expiry",
        conn_id="sf_vault",
        sql="select count(*) from orders",
    )


gds_mid_task_expiry()
