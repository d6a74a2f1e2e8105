"""Fixtures for the Airflow tests: real Airflow, OpenBao and the Snowflake double.

Most of these tests need Apache Airflow and its Snowflake provider, which the main
environment does not install (the ``airflow`` extra pins the connector to 4.x and brings
hundreds of packages). There they are skipped, with the reason; CI's Airflow pass
(``.ci/airflow``) runs them in ``.venv-airflow`` and fails if any was skipped.

Airflow never sees this machine's settings: every Airflow process, in-process or
``airflow dags test`` in a subprocess, gets an AIRFLOW_HOME of its own in a temporary
directory (SQLite metadata database, DAGs folder, task logs), no inherited AIRFLOW_*
variable, the connection as an ``AIRFLOW_CONN_<ID>`` variable and the ``VAULT_*``
variables of a test AppRole.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gds_snowflake.testing import SnowflakeTestUser
from gds_vault.testing import free_port

AIRFLOW_INSTALLED = all(
    importlib.util.find_spec(name) is not None
    for name in ("airflow", "airflow.providers.snowflake")
)
SKIP_REASON = (
    "Apache Airflow and apache-airflow-providers-snowflake are not installed here; "
    "CI's Airflow pass (.ci/airflow) runs these tests in .venv-airflow "
    "(pip install -e '.[dev,airflow]')"
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAG = REPO / "examples" / "airflow_connection_dag.py"
FUNCTION_DAG = REPO / "examples" / "airflow_dag.py"
TEST_DAGS = Path(__file__).resolve().parent / "dags"
CONN_ID = "sf_vault"
DAY = "2024-06-30"
_MACHINE_PREFIXES = ("AIRFLOW", "VAULT_", "BAO_", "HVAULT_", "SNOWFLAKE_", "GDS_")
API_SERVER_START_TIMEOUT = 60.0  # seconds; it starts in about 5 s on 2 cores


def clean_base_env() -> dict[str, str]:
    """os.environ without anything that configures Airflow, Vault or Snowflake."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_MACHINE_PREFIXES)}


def connection_json(user: SnowflakeTestUser, **extra: Any) -> str:
    """A gds_snowflake connection for ``user`` as AIRFLOW_CONN_* JSON, pointed at the double."""
    where = user.connect_kwargs()
    return json.dumps(
        {
            "conn_type": "gds_snowflake",
            "host": where["host"],
            "port": where["port"],
            "extra": {"secret_path": user.secret_path, "protocol": where["protocol"], **extra},
        }
    )


def create_orders(user: SnowflakeTestUser) -> None:
    """Three orders on DAY (two regions) and one the day before, in the user's schema."""
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


@pytest.fixture
def orders_user(make_snowflake_user) -> SnowflakeTestUser:
    """A key-pair user whose secret names the EXAMPLES database, with an orders table."""
    user = make_snowflake_user(key="rsa", database="EXAMPLES", schema="PUBLIC")
    create_orders(user)
    return user


@dataclass
class AirflowHome:
    """An isolated AIRFLOW_HOME with a migrated SQLite database and a DAGs folder."""

    path: Path
    jwt_secret: str

    @property
    def dags(self) -> Path:
        return self.path / "dags"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of an Airflow process: this home and nothing from the machine."""
        env = clean_base_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                # The connector otherwise probes cloud metadata endpoints at every login.
                "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",
            }
        )
        env.update(extra or {})
        return env

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start the ``airflow`` CLI of this interpreter's environment, output to one pipe.

        In a process group of its own, so :func:`stop` also ends the executor's workers.
        """
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            cwd=self.path,  # never the repository: tests/airflow must not shadow airflow
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def airflow(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 150
    ) -> tuple[int, str]:
        """Run the ``airflow`` CLI; returns its exit code and output (stdout and stderr)."""
        process = self.start(*args, env=env)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            output, _ = process.communicate()
            pytest.fail(
                f"airflow {' '.join(args)} did not finish in {timeout} s:\n{output[-6000:]}"
            )
        return process.returncode, output

    def task_logs(self, dag_id: str) -> dict[str, str]:
        """The task log files of a DAG's runs so far, by task id (attempts concatenated)."""
        logs: dict[str, str] = {}
        for path in sorted(self.logs.glob(f"dag_id={dag_id}/*/task_id=*/*.log")):
            task_id = path.parent.name.removeprefix("task_id=")
            logs[task_id] = logs.get(task_id, "") + path.read_text(encoding="utf-8")
        return logs


def stop(process: subprocess.Popen[Any]) -> None:
    """End a process started in its own session, and everything it started."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """An AIRFLOW_HOME with its database migrated and the DAGs under test in its folder."""
    if not AIRFLOW_INSTALLED:
        pytest.skip("Apache Airflow is not installed")
    home = AirflowHome(tmp_path_factory.mktemp("airflow_home"), secrets.token_urlsafe(32))
    home.dags.mkdir()
    for dag_file in (EXAMPLE_DAG, FUNCTION_DAG, *sorted(TEST_DAGS.glob("*.py"))):
        shutil.copy(dag_file, home.dags / dag_file.name)
    code, output = home.airflow("db", "migrate")
    assert code == 0, output
    return home


@pytest.fixture(scope="session")
def api_server(airflow_home: AirflowHome) -> Iterator[str]:
    """``airflow api-server`` on a free loopback port: the execution API LocalExecutor
    tasks talk to. Yields its execution API URL."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (airflow_home.path / "api-server.out").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=airflow_home.path,
        env=airflow_home.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + API_SERVER_START_TIMEOUT
        session = requests.Session()
        session.trust_env = False  # loopback: no proxy, no ambient CA
        while True:
            assert process.poll() is None, (airflow_home.path / "api-server.out").read_text()
            try:
                if session.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "airflow api-server did not start in time"
            time.sleep(0.25)
        yield f"{url}/execution/"
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def airflow_in_process(airflow_home: AirflowHome) -> Iterator[None]:
    """Airflow imported into this process, configured by the isolated home."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AIRFLOW"):
                patch.delenv(name)
        for name, value in airflow_home.env().items():
            if name.startswith("AIRFLOW"):
                patch.setenv(name, value)
        import airflow  # noqa: F401 - configures itself from AIRFLOW_HOME, once

        yield
