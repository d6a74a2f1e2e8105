"""The examples run, against the local OpenBao server and the Snowflake double.

Scripts run as subprocesses configured only by the environment, as they would be in
production (VAULT_*, SNOWFLAKE_VAULT_PATH), plus EXAMPLE_SNOWFLAKE_CONNECT_ARGS, which
points them at the double. The notebook's code cells run in-process in order, with the
session expired before the cells tagged ``after-idle``. The Airflow DAGs are imported
without Airflow (not a dependency of these tests) and the function-based one's task bodies
are called directly; tests/airflow/ runs both under real Airflow. The key
rotation runbook's rehearsal test is run as written.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gds_snowflake._connector import known_parameters
from gds_snowflake.testing import SnowflakeTestUser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DAG_FILE = EXAMPLES / "airflow_dag.py"
CONNECTION_DAG_FILE = EXAMPLES / "airflow_connection_dag.py"
DAY = dt.date(2024, 6, 30)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def user(make_snowflake_user) -> SnowflakeTestUser:
    """A key-pair user whose secret names the EXAMPLES database, as a job's would."""
    return make_snowflake_user(key="rsa", database="EXAMPLES", schema="PUBLIC")


@pytest.fixture
def orders(user: SnowflakeTestUser) -> SnowflakeTestUser:
    """An orders table with three orders on DAY (two regions) and one the day before."""
    with user.connect() as conn:
        cursor = conn.cursor()
        cursor.execute(
            "create or replace table orders "
            "(id int, region varchar, amount number(12, 2), order_date date)"
        )
        cursor.execute(
            "insert into orders values (1, 'EU', 10.50, '2024-06-30'), "
            "(2, 'US', 99.99, '2024-06-30'), (3, 'EU', 5.25, '2024-06-30'), "
            "(4, 'US', 1.00, '2024-06-29')"
        )
    return user


def _env(user: SnowflakeTestUser, **extra: str) -> dict[str, str]:
    env = dict(os.environ)  # already without VAULT_*/SNOWFLAKE_*/proxies (tests/conftest.py)
    env.update(user.env())
    env["EXAMPLE_SNOWFLAKE_CONNECT_ARGS"] = json.dumps(user.connect_kwargs())
    env.update(extra)
    return env


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def _fetch(user: SnowflakeTestUser, sql: str) -> list[tuple[Any, ...]]:
    with user.connect() as conn:
        return conn.cursor().execute(sql).fetchall()


# -- batch job ---------------------------------------------------------------------------


def test_batch_job_rebuilds_one_day_idempotently(orders):
    """The batch job writes one row per region for the day, and a re-run replaces them."""
    for _ in range(2):
        result = _run("batch_job.py", _env(orders), "--date", DAY.isoformat())
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [DAY.isoformat(), "2"]
    rows = _fetch(
        orders,
        "select region, orders, revenue from daily_revenue where run_date = '2024-06-30' "
        "order by region",
    )
    assert [(region, count, float(revenue)) for region, count, revenue in rows] == [
        ("EU", 2, 15.75),
        ("US", 1, 99.99),
    ]
    assert "Connected to Snowflake as" in result.stderr


def test_batch_job_configuration_error_exits_2(orders):
    """Without VAULT_ADDR the job exits 2 and its log names the variable."""
    env = _env(orders)
    del env["VAULT_ADDR"]
    result = _run("batch_job.py", env, "--date", DAY.isoformat())
    assert result.returncode == 2
    assert "VAULT_ADDR" in result.stderr


# -- logging and retry -------------------------------------------------------------------


def test_logging_example_writes_json_lines_without_secrets(user):
    """Every stderr line is JSON; the libraries' and the job's lines are there; no secret is."""
    result = _run("logging_json.py", _env(user))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    messages = {(r["logger"], r["message"]) for r in records}
    assert any(name.startswith("gds_vault") and "Logged in to Vault" in m for name, m in messages)
    assert any(
        name.startswith("gds_snowflake") and "Connected to Snowflake" in m for name, m in messages
    )
    assert ("etl.logging_example", "connected; database EXAMPLES, schema PUBLIC") in messages
    for secret in (user.secret_id, user.role_id, user.secret["private_key"].splitlines()[1]):
        assert secret not in result.stderr


def test_custom_retry_example_retries_a_failed_login(user):
    """With the interactive profile a login answered 503 is retried once, logged as a WARNING."""
    user.double.fail_next_logins(1, status=503)
    # The connector retries a failed login itself first (4.x after a 1 s backoff, up to
    # 10 times for key pair; 5.x up to 6 attempts): with its retries off, the example's
    # RetryPolicy is what retries. 4.x reads that from variables, 5.x from an argument.
    if "retry_max_attempts" in known_parameters():
        env = _env(user, EXAMPLE_SNOWFLAKE_CONNECT_ARGS=json.dumps(
            {**user.connect_kwargs(), "retry_max_attempts": 1}
        ))
    else:
        env = _env(user, MAX_CON_RETRY_ATTEMPTS="0", JWT_CNXN_RETRY_ATTEMPTS="0")
    result = _run("custom_retry.py", env, "--profile", "interactive")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["profile=interactive", "attempts=2", "result=1"]
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1
    assert "snowflake.login" in warnings[0]
    assert user.login_count == 1


# -- notebook ----------------------------------------------------------------------------


def _notebook() -> dict[str, Any]:
    return json.loads((EXAMPLES / "idle_expiry.ipynb").read_text(encoding="utf-8"))


def test_notebook_is_nbformat_4():
    """The notebook is nbformat 4.5 JSON, unexecuted, with unique cell ids."""
    nb = _notebook()
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in nb["cells"]]
    assert len(ids) == len(set(ids))
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], list)
        assert isinstance(cell["metadata"], dict)
        assert re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cell["id"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None


def run_notebook(nb: dict[str, Any], before: Any) -> dict[str, Any]:
    """Run the code cells in one namespace, as a kernel would; returns each cell's last value."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    values: dict[str, Any] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        before(cell)
        tree = ast.parse("".join(cell["source"]))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        name = f"<cell {cell['id']}>"
        exec(compile(tree, name, "exec"), namespace)  # noqa: S102 - the example's own code
        if last is not None:
            code = compile(ast.Expression(last.value), name, "eval")
            values[cell["id"]] = eval(code, namespace)  # noqa: S307 - as a kernel shows it
    return values


@pytest.fixture
def restore_package_logging() -> Iterator[None]:
    """configure_logging() in the notebook changes the package loggers; put them back."""
    loggers = [logging.getLogger(name) for name in ("gds_vault", "gds_snowflake")]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers


def test_notebook_survives_idle_expiry(user, monkeypatch, restore_package_logging):
    """Run in order, the notebook's cells after an expiry just work: one re-login, no Vault read."""
    user.apply_env(monkeypatch)
    monkeypatch.setenv("EXAMPLE_SNOWFLAKE_CONNECT_ARGS", json.dumps(user.connect_kwargs()))
    marks: list[int] = []

    def before(cell: dict[str, Any]) -> None:
        if "after-idle" in cell["metadata"].get("tags", []):
            assert user.expire_sessions() >= 1
            marks.append(user.vault.mark())

    values = run_notebook(_notebook(), before)
    assert values["connect"] == (3,)
    assert [(r, float(a)) for r, a in values["after-idle-query"]] == [("EU", 15.75), ("US", 99.99)]
    assert values["reconnects"] == 1
    assert values["read-sql"]["revenue"].astype(float).tolist() == [15.75, 99.99]
    assert values["after-idle-read-sql"]["orders"].tolist() == [3]
    # connection, its re-login, the engine's first connection and its replacement
    assert user.login_count == 4
    secret = "secret/data/" + user.secret_path.split("/", 1)[1]
    assert user.vault.requests_since(marks[0], "auth/approle/login") == []
    assert user.vault.requests_since(marks[0], secret) == []


def test_notebook_after_vault_login(user, monkeypatch, tmp_path, restore_package_logging):
    """The notebook's first cell's path for a person: `vault login` left a token in
    ~/.vault-token and only VAULT_ADDR is set; the notebook runs on that token (no AppRole
    login), through the idle expiry."""
    from gds_vault import reset_default_client

    policy = "gds-snowflake-" + user.name.lower().replace("_", "-")  # as create_snowflake_user
    (tmp_path / ".vault-token").write_text(user.vault.create_token(policies=[policy]) + "\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_ADDR", user.vault.addr)
    monkeypatch.setenv("SNOWFLAKE_VAULT_PATH", user.secret_path)
    monkeypatch.setenv("EXAMPLE_SNOWFLAKE_CONNECT_ARGS", json.dumps(user.connect_kwargs()))
    reset_default_client()
    mark = user.vault.mark()

    def before(cell: dict[str, Any]) -> None:
        if "after-idle" in cell["metadata"].get("tags", []):
            assert user.expire_sessions() >= 1

    try:
        values = run_notebook(_notebook(), before)
    finally:
        reset_default_client()
    assert values["connect"] == (3,)
    assert values["reconnects"] == 1
    assert values["after-idle-read-sql"]["orders"].tolist() == [3]
    assert user.vault.requests_since(mark, "auth/approle/login") == []
    assert len(user.vault.requests_since(mark, "auth/token/lookup-self")) == 1


def test_notebook_says_which_extras_it_needs():
    """The notebook uses pandas and the SQLAlchemy engine, and its first cell says to
    install both extras."""
    nb = _notebook()
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "import pandas" in code and "get_snowflake_engine" in code
    intro = "".join(nb["cells"][0]["source"])
    assert "pip install 'gds-vault-snowflake[sqlalchemy,pandas]'" in intro
    assert "vault login" in intro


# -- Airflow DAG -------------------------------------------------------------------------


def _load_dag() -> ModuleType:
    spec = importlib.util.spec_from_file_location("airflow_dag_example", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dag_file", [DAG_FILE, CONNECTION_DAG_FILE], ids=lambda p: p.name)
def test_dag_file_parses_cheaply_without_airflow(dag_file):
    """Parsing a DAG file, as the scheduler does, imports no gds_snowflake, no connector."""
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('dag', {str(dag_file)!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "heavy = ('airflow', 'gds_snowflake', 'gds_vault', 'snowflake.connector', 'requests', "
        "'cryptography'); print(sorted(m for m in heavy if m in sys.modules), module.dag)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["[]", "None"]


def test_dag_task_bodies_and_logins_per_task(orders, monkeypatch):
    """A task counts orders; per task process: 3 Vault requests (login, mount lookup, read),
    1 Snowflake login, as the DAG's docstring says."""
    orders.apply_env(monkeypatch)  # a fresh default client, as in a new task process
    monkeypatch.setenv("EXAMPLE_SNOWFLAKE_CONNECT_ARGS", json.dumps(orders.connect_kwargs()))
    dag_module = _load_dag()
    count_orders = getattr(dag_module.count_orders, "function", dag_module.count_orders)
    check_not_empty = getattr(dag_module.check_not_empty, "function", dag_module.check_not_empty)
    secret = "secret/data/" + orders.secret_path.split("/", 1)[1]
    mark, logins = orders.vault.mark(), orders.login_count

    assert check_not_empty(count_orders(ds=DAY.isoformat())) == 3
    assert [entry["request"]["path"] for entry in orders.vault.requests_since(mark)] == [
        "auth/approle/login",
        "sys/internal/ui/mounts/" + orders.secret_path,
        secret,
    ]
    assert orders.login_count == logins + 1

    # A second connection in the same process: no Vault call, one Snowflake login.
    mark = orders.vault.mark()
    assert count_orders(ds="2024-06-29") == 1
    assert orders.vault.requests_since(mark) == []
    assert orders.login_count == logins + 2
    with pytest.raises(ValueError, match="no orders"):
        check_not_empty(count_orders(ds="2024-01-01"))


# -- key rotation runbook ----------------------------------------------------------------


def test_rotation_runbook_rehearsal_runs_as_written(make_snowflake_user, monkeypatch):
    """The runbook's rehearsal tests (key pair, PAT) pass with a job that opens a
    connection and queries."""
    text = (EXAMPLES / "key_rotation.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```python\n(.*?)```", text, flags=re.S)

    def run_job(**connect_kwargs: Any) -> None:
        from gds_snowflake import get_snowflake_connection

        with get_snowflake_connection(**connect_kwargs) as conn:
            assert conn.cursor().execute("select 1").fetchall() == [(1,)]

    namespace: dict[str, Any] = {"run_job": run_job}
    exec(compile(snippet, "key_rotation.md", "exec"), namespace)  # noqa: S102 - our own runbook
    namespace["test_job_survives_key_rotation"](make_snowflake_user, monkeypatch)
    namespace["test_job_survives_pat_rotation"](make_snowflake_user, monkeypatch)
