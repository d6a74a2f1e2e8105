"""An Airflow DAG (TaskFlow API) whose tasks query Snowflake with credentials from Vault.

Deploy it with the ``gds-vault-snowflake`` distribution installed on the workers, and
give the workers (not the DAG file) the Vault identity, e.g. in the worker's or the
KubernetesPodOperator's environment::

    VAULT_ADDR=https://vault.example.com:8200
    VAULT_ROLE_ID=...  VAULT_SECRET_ID_FILE=/var/run/secrets/etl/secret-id
    # or, on Kubernetes, the pod's service-account token:
    VAULT_JWT_ROLE=etl VAULT_JWT_FILE=/var/run/secrets/kubernetes.io/serviceaccount/token

Parse time. The scheduler (and the DAG processor) imports this file every few seconds
to find the DAG; it must be cheap and must not talk to Vault or Snowflake. So nothing
here is imported at module level except Airflow itself: ``gds_snowflake`` (and through
it requests, cryptography and the connector) is imported inside the task, when the task
runs on a worker. Nothing reads Vault or opens a connection at import either.

Fork. Airflow runs each task instance in its own process: the LocalExecutor and the
Celery worker fork (``os.fork``) a child per task, the KubernetesExecutor starts a pod.
A Vault client or Snowflake connection therefore never crosses from one task to
another. Were one made before a fork anyway (say, in a plugin at worker start-up),
gds_vault gives the child its own HTTP connection pool and fresh locks, keeps the valid
token, and a ``VaultSnowflakeConnection`` opens its own Snowflake session in the child
rather than reuse (and later log out) the parent's. That last part needs connector 4.x
(what Airflow's Snowflake provider installs): on connector 5.x a child forked after the
connector was imported cannot log in, and gds_snowflake raises SnowflakeForkError at once
instead of hanging, another reason to import it inside the task, as here.

Logins per task. Inside one task process, ``get_snowflake_connection()`` without
``vault_client`` uses the process-wide default client: the first call logs in to Vault
(one AppRole or JWT login; with GDS_VAULT_TOKEN_CACHE set on the worker, the first task
on the host does that login and later tasks skip it, see "Token cache" below), looks up
the secret's KV mount (one request, remembered)
and reads the secret (one read, then cached for GDS_VAULT_CACHE_TTL, 300 s); every
connection costs one Snowflake login. So a task that opens one connection costs three
Vault requests (login, mount lookup, read) + 1 Snowflake login; opening three
connections in the task still costs those three Vault requests. Airflow's own
``retries`` re-run the whole task in a new process: the same again per try. A
Snowflake session that expires during a long task is renewed by the connection itself
(one more Snowflake login, no Vault call), and the failed statement re-run.

Token cache. Set GDS_VAULT_TOKEN_CACHE on the workers (for example
``GDS_VAULT_TOKEN_CACHE=~/.cache/gds-vault`` in the worker's environment: a directory on
local disk that only the Airflow user can reach) and the task processes of one worker
host share one Vault token. The first task logs in and writes the token, and the KV
mount table, to 0600 files there. Later tasks take them and cost one Vault request each,
the secret read, instead of three (login, mount lookup, read). Tasks starting together
cause one login between them: the others wait on a file lock. A renewal by any task is
written back, and a token Vault refuses costs the task that finds it one login, which it
writes back. No file ever holds the secret_id. With the KubernetesExecutor every task
is a pod of its own and there is no one to share with, so leave it unset there. See the
README, "One Vault login per host".

Through an Airflow connection instead. ``airflow_connection_dag.py`` is this DAG's
connection-based form: a ``gds_snowflake`` connection names the secret, and
``SQLExecuteQueryOperator(conn_id=...)`` and ``VaultSnowflakeHook`` use it, with the
same costs per task.

Without Airflow installed this file still imports (the tests do that and run the task
bodies directly): the decorators below then leave the functions as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:
    try:  # Airflow 2.x
        from airflow.decorators import dag, task
    except ImportError:  # no Airflow: keep the module importable and the tasks callable
        dag = None

        def task(python_callable: Any = None, **_options: Any) -> Any:
            return python_callable if python_callable is not None else (lambda fn: fn)


SECRET_PATH = "secret/snowflake/etl"  # noqa: S105 - a path; or SNOWFLAKE_VAULT_PATH on workers
WAREHOUSE = "ETL_WH"


def _connect_args() -> dict[str, Any]:
    # Not a library setting: the examples' tests point the task at the local Snowflake
    # double with it. Unset in production.
    return json.loads(os.environ.get("EXAMPLE_SNOWFLAKE_CONNECT_ARGS") or "{}")


@task(retries=2, retry_delay=dt.timedelta(minutes=5))
def count_orders(ds: str | None = None) -> int:
    """Count one day's orders (``ds`` is Airflow's logical date, YYYY-MM-DD)."""
    from gds_snowflake import get_snowflake_connection  # at run time, on the worker

    day = ds or dt.date.today().isoformat()
    path = os.environ.get("SNOWFLAKE_VAULT_PATH") or SECRET_PATH
    with get_snowflake_connection(path, warehouse=WAREHOUSE, **_connect_args()) as conn:
        (count,) = conn.cursor().execute(
            "select count(*) from orders where order_date = %s", (day,)
        ).fetchone()
    return int(count)


@task
def check_not_empty(count: int) -> int:
    """Fail the run (and alert) when a day has no orders: the upstream load is late."""
    if count == 0:
        raise ValueError("no orders for the day: has the upstream load run?")
    return count


if dag is not None:

    @dag(
        schedule="@daily",
        start_date=dt.datetime(2024, 1, 1),
        catchup=False,
        tags=["snowflake", "vault"],
    )
    def snowflake_orders_check() -> None:
        check_not_empty(count_orders())

    snowflake_orders_check()
