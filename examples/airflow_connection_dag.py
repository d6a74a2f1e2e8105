"""An Airflow DAG that reaches Snowflake through a ``gds_snowflake`` connection.

The connection-based form of ``airflow_dag.py``: tasks name an Airflow connection, as
with any database, and the operator and the hook take the credentials from Vault when
the task runs. Install ``gds-vault-snowflake[airflow]`` where Airflow runs (scheduler,
workers, API server); the ``gds_snowflake`` connection type then appears in the UI.

The connection holds no credential, only where the secret is (JSON, or the URI form)::

    AIRFLOW_CONN_SF_VAULT='{"conn_type": "gds_snowflake",
        "extra": {"secret_path": "secret/snowflake/etl", "warehouse": "ETL_WH"}}'
    AIRFLOW_CONN_SF_VAULT='gds-snowflake://?secret_path=secret%2Fsnowflake%2Fetl&warehouse=ETL_WH'

Optional extras: ``account``, ``role``, ``database``, ``schema``, ``protocol``,
``session_parameters``; the connection's host and port go to the connector (private
link, a proxy). The workers hold the Vault identity, as for ``airflow_dag.py``::

    VAULT_ADDR=https://vault.example.com:8200
    VAULT_ROLE_ID=...  VAULT_SECRET_ID_FILE=/var/run/secrets/etl/secret-id

Costs per task. Each task runs in its own process (LocalExecutor, Celery, Kubernetes),
and its first connection logs in to Vault with the process-wide client: three Vault
requests (the AppRole login, the KV mount lookup, the secret read), then the secret
is cached (GDS_VAULT_CACHE_TTL, 300 s) and the token reused. Each ``hook.run``,
``get_records``, ``get_first`` or operator execution opens one Snowflake connection,
as SnowflakeHook does: one Snowflake login, no further Vault request while cached.

A session that expires during a long task (a connection kept from
``hook.get_conn()``) logs in again by itself and re-runs the statement that failed;
with autocommit off, inside a transaction, it raises SnowflakeTransactionLostError
instead, since the transaction's earlier statements are gone.

Parse time stays cheap: Airflow and the SQL operator are imported here, as in any DAG
file, but gds_snowflake (and the connector) only inside the task, or by Airflow when
a task asks for the connection's hook. Without Airflow installed this file still
imports (the examples' tests do that), and defines no DAG.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CONN_ID = "sf_vault"

try:  # Airflow 3
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.sdk import dag, task
except ImportError:
    try:  # Airflow 2.x
        from airflow.decorators import dag, task
        from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    except ImportError:  # no Airflow: keep the module importable and the tasks callable
        dag = None
        SQLExecuteQueryOperator = None

        def task(python_callable: Any = None, **_options: Any) -> Any:
            return python_callable if python_callable is not None else (lambda fn: fn)


# One day of daily_revenue rebuilt from orders; idempotent (delete, then insert), and
# in one transaction: SQLExecuteQueryOperator runs with autocommit off and commits at
# the end. The parameters are templated, so {{ ds }} is the run's logical date.
REBUILD_DAILY_REVENUE = [
    "create table if not exists daily_revenue "
    "(run_date date, region varchar, orders int, revenue number(12, 2))",
    "delete from daily_revenue where run_date = %(day)s",
    "insert into daily_revenue select %(day)s, region, count(*), sum(amount) "
    "from orders where order_date = %(day)s group by region",
]


@task(retries=2, retry_delay=dt.timedelta(minutes=5))
def revenue_report(ds: str | None = None) -> list[list[Any]]:
    """Read back the day's revenue per region through the hook; fail if there is none."""
    from gds_snowflake.airflow import VaultSnowflakeHook  # at run time, on the worker

    day = ds or dt.date.today().isoformat()
    hook = VaultSnowflakeHook(snowflake_conn_id=CONN_ID)
    rows = hook.get_records(
        "select region, orders, revenue from daily_revenue where run_date = %(day)s "
        "order by region",
        parameters={"day": day},
    )
    if not rows:
        raise ValueError(f"no revenue for {day}: has the upstream load run?")
    return [[region, int(orders), float(revenue)] for region, orders, revenue in rows]


if dag is not None:

    @dag(
        schedule="@daily",
        start_date=dt.datetime(2024, 1, 1),
        catchup=False,
        tags=["snowflake", "vault"],
    )
    def snowflake_revenue_by_connection() -> None:
        rebuild = SQLExecuteQueryOperator(
            task_id="rebuild_daily_revenue",
            conn_id=CONN_ID,
            sql=REBUILD_DAILY_REVENUE,
            parameters={"day": "{{ ds }}"},
        )
        rebuild >> revenue_report()

    snowflake_revenue_by_connection()
