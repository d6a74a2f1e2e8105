"""VaultSnowflakeHook in this process, with real Airflow: registration, form, every query path.

Airflow is imported here with an AIRFLOW_HOME of its own (the ``airflow_in_process``
fixture); the connection comes from ``AIRFLOW_CONN_SF_VAULT``, Vault settings from the
VAULT_* variables of a test AppRole, as on a worker.
"""

from __future__ import annotations

import atexit
import json
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from gds_snowflake import SnowflakeConfigError, VaultSnowflakeConnection
from gds_snowflake.airflow import CONNECTION_TYPE, get_provider_info
from gds_snowflake.airflow._provider_info import EXTRA_FIELDS
from gds_snowflake.testing import SnowflakeTestUser

from .conftest import AIRFLOW_INSTALLED, CONN_ID, SKIP_REASON, connection_json

if not AIRFLOW_INSTALLED:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("airflow_in_process"),
]


@pytest.fixture
def use_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Any]:
    """Point AIRFLOW_CONN_SF_VAULT and VAULT_* at a user; returns a hook factory."""

    def use(user: SnowflakeTestUser, connection: str | None = None, **extra: Any) -> Any:
        from gds_snowflake.airflow import VaultSnowflakeHook

        user.apply_env(monkeypatch)  # VAULT_* and a fresh process-wide Vault client
        monkeypatch.setenv("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true")
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}", connection or connection_json(user, **extra)
        )
        return lambda **kwargs: VaultSnowflakeHook(snowflake_conn_id=CONN_ID, **kwargs)

    return use


def _requests(user: SnowflakeTestUser, mark: int) -> list[str]:
    return [entry["request"]["path"] for entry in user.vault.requests_since(mark)]


# -- registration and the connection form ------------------------------------------------


def test_connection_type_is_registered_through_the_entry_point():
    """Airflow's ProvidersManager finds gds_snowflake and a connection of that type
    builds a VaultSnowflakeHook, as SQLExecuteQueryOperator asks it to."""
    import jsonschema
    from airflow.sdk import Connection
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from gds_snowflake.airflow import VaultSnowflakeHook

    # What a task process consults to turn a connection into a hook.
    manager = ProvidersManagerTaskRuntime()
    assert "gds-vault-snowflake" in manager.providers
    info = manager.hooks[CONNECTION_TYPE]
    assert info is not None
    assert info.hook_class_name == "gds_snowflake.airflow.VaultSnowflakeHook"
    assert info.connection_id_attribute_name == "snowflake_conn_id"
    assert info.package_name == "gds-vault-snowflake"
    connection = Connection(conn_id="x", conn_type=CONNECTION_TYPE, extra='{"secret_path": "a/b"}')
    hook = connection.get_hook(hook_params={"warehouse": "WH"})
    assert type(hook) is VaultSnowflakeHook
    assert hook.get_conn_id() == "x"
    assert hook.warehouse == "WH"
    # The runtime schema Airflow validates every provider's info against.
    import airflow

    schema_path = airflow.__path__[0] + "/provider_info.schema.json"
    with open(schema_path, encoding="utf-8") as schema:
        jsonschema.validate(get_provider_info(), json.load(schema))


def test_connection_form_shows_the_fields_with_help_text():
    """The UI's form for gds_snowflake: no login or password, host and port optional, and
    every extra field with a title and a description (Airflow 3's hook metadata API)."""
    services = pytest.importorskip(
        "airflow.api_fastapi.core_api.services.ui.connections",
        reason="the React UI's hook metadata exists from Airflow 3",
    )
    [meta] = [
        m for m in services.HookMetaService.hook_meta_data() if m.connection_type == CONNECTION_TYPE
    ]
    assert meta.hook_name == "Snowflake (credentials from Vault)"
    standard = meta.standard_fields
    assert standard.login.hidden
    assert standard.password.hidden
    assert standard.url_schema.hidden
    assert standard.host.title == "Host (optional)"
    assert not standard.host.hidden
    assert standard.port.title == "Port (optional)"
    assert not standard.port.hidden
    assert set(meta.extra_fields) == {field.name for field in EXTRA_FIELDS}
    for field in EXTRA_FIELDS:
        shown = meta.extra_fields[field.name]
        assert shown["schema"]["title"] == field.label
        assert shown["description"] == field.description
    assert meta.extra_fields["secret_path"]["schema"]["type"] == "string"  # required
    assert meta.extra_fields["warehouse"]["schema"]["type"] == ["string", "null"]


def test_airflow_2_form_widgets_come_from_the_same_fields():
    """Airflow 2's WTForms widgets list the same fields, labels and help texts."""
    pytest.importorskip("flask_appbuilder", reason="Airflow 2's form needs flask-appbuilder")
    from gds_snowflake.airflow import VaultSnowflakeHook

    widgets = VaultSnowflakeHook.get_connection_form_widgets()
    assert list(widgets) == [field.name for field in EXTRA_FIELDS]
    for field in EXTRA_FIELDS:
        assert widgets[field.name].kwargs["description"] == field.description
    behaviour = VaultSnowflakeHook.get_ui_field_behaviour()
    assert {"login", "password"} <= set(behaviour["hidden_fields"])


# -- queries ------------------------------------------------------------------------------


def test_hook_queries_through_vault_credentials(orders_user, use_connection):
    """get_first, get_records, run and test_connection work; the first connection costs
    three Vault requests (login, mount lookup, read), later ones none; one Snowflake login
    per call, as SnowflakeHook opens a connection per call."""
    hook = use_connection(orders_user, warehouse="ETL_WH")()
    mark, logins = orders_user.vault.mark(), orders_user.login_count
    assert hook.get_first("select count(*) from orders") == (4,)
    mount, path = orders_user.secret_path.split("/", 1)
    assert _requests(orders_user, mark) == [
        "auth/approle/login",
        f"sys/internal/ui/mounts/{mount}/{path}",
        f"{mount}/data/{path}",
    ]
    mark = orders_user.vault.mark()
    rows = hook.get_records(
        "select region, count(*) from orders where order_date = %(day)s group by region "
        "order by region",
        parameters={"day": "2024-06-30"},
    )
    assert [tuple(row) for row in rows] == [("EU", 2), ("US", 1)]
    results = hook.run(
        [
            "create or replace table hook_run (n int)",
            "insert into hook_run values (1), (2)",
            "select sum(n) from hook_run",
        ],
        autocommit=True,
        handler=lambda cursor: cursor.fetchall(),
    )
    assert results[-1] == [(3,)]  # a list of statements: one result per statement
    assert len(hook.query_ids) == 3
    assert hook.test_connection() == (True, "Connection successfully tested")
    assert _requests(orders_user, mark) == []
    assert orders_user.login_count == logins + 4


def test_get_conn_is_the_reauthenticating_connection(orders_user, use_connection):
    """get_conn() returns a VaultSnowflakeConnection: after the session expires the same
    cursor's next statement logs in again, with no Vault request."""
    hook = use_connection(orders_user)()
    conn = hook.get_conn()
    assert isinstance(conn, VaultSnowflakeConnection)
    cursor = conn.cursor()
    assert cursor.execute("select count(*) from orders").fetchone() == (4,)
    assert orders_user.expire_sessions() >= 1
    mark, logins = orders_user.vault.mark(), orders_user.login_count
    assert cursor.execute("select 2").fetchone() == (2,)
    assert conn.reconnects == 1
    assert orders_user.login_count == logins + 1
    assert _requests(orders_user, mark) == []
    conn.close()


def test_dataframes_and_engine_come_through_the_vault_engine(orders_user, use_connection):
    """get_pandas_df (whole or in chunks) and get_sqlalchemy_engine use gds_snowflake's
    engine: no credential in its URL, no pandas warning about raw DB-API connections, a pool
    that survives expiry."""
    import sqlalchemy as sa

    hook = use_connection(orders_user)()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="pandas only supports SQLAlchemy")
        frame = hook.get_pandas_df(
            "select region, sum(amount) as revenue from orders where order_date = %s "
            "group by region order by region",
            parameters=("2024-06-30",),
        )
    assert frame["region"].tolist() == ["EU", "US"]
    assert [float(v) for v in frame["revenue"]] == [15.75, 99.99]
    chunks = list(hook.get_pandas_df_by_chunks("select id from orders order by id", chunksize=3))
    assert [chunk["id"].tolist() for chunk in chunks] == [[1, 2, 3], [4]]
    engine = hook.get_sqlalchemy_engine(engine_kwargs={"pool_size": 1})
    try:
        assert str(engine.url) == "snowflake://"
        with engine.connect() as connection:
            assert connection.execute(sa.text("select 7")).scalar() == 7
        orders_user.expire_sessions()
        with engine.connect() as connection:  # pre-ping replaces the expired session
            assert connection.execute(sa.text("select 8")).scalar() == 8
    finally:
        engine.dispose()


def test_snowpark_session_logs_in_again_too(orders_user, use_connection):
    """get_snowpark_session() runs on the re-authenticating connection."""
    pytest.importorskip("snowflake.snowpark", reason="Snowpark comes with the Snowflake provider")
    hook = use_connection(orders_user)()
    session = hook.get_snowpark_session()
    try:
        assert [tuple(r) for r in session.sql("select 1 as a").collect()] == [(1,)]
        orders_user.expire_sessions()
        assert [tuple(r) for r in session.sql("select 2 as a").collect()] == [(2,)]
        assert session.connection.reconnects == 1
    finally:
        # Closing the connection first: Session.close() would cancel queries with a
        # system function the double lacks.
        session.connection.close()
        session.close()
        # Snowpark closes every session again at exit, logging to streams pytest closed.
        atexit.unregister(session._close_at_exit)


def test_connection_as_uri(orders_user, use_connection):
    """The URI form (gds-snowflake://host:port?secret_path=...) works, session parameters
    given as JSON text included."""
    where = orders_user.connect_kwargs()
    query = urlencode(
        {
            "secret_path": orders_user.secret_path,
            "protocol": where["protocol"],
            "session_parameters": json.dumps({"QUERY_TAG": "uri-test"}),
        }
    )
    uri = f"gds-snowflake://{where['host']}:{where['port']}?{query}"
    hook = use_connection(orders_user, connection=uri)()
    assert hook.get_first("select 5") == (5,)
    assert hook.connection_settings.session_parameters == {"QUERY_TAG": "uri-test"}


def test_connection_decides_not_the_workers_snowflake_variables(
    orders_user, use_connection, monkeypatch
):
    """SNOWFLAKE_USER / SNOWFLAKE_WAREHOUSE on a worker change nothing: the connection and
    the secret say who connects, for get_conn and for the engine alike."""
    import sqlalchemy as sa

    hook = use_connection(orders_user)()
    monkeypatch.setenv("SNOWFLAKE_USER", "SOMEONE_ELSE")
    monkeypatch.setenv("SNOWFLAKE_WAREHOUSE", "NOT_THIS_WH")
    logins = orders_user.login_count
    assert hook.get_first("select 1") == (1,)
    engine = hook.get_sqlalchemy_engine()
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("select 1")).scalar() == 1
    finally:
        engine.dispose()
    assert orders_user.login_count == logins + 2  # both logged in as the secret's user
    assert "warehouse" not in hook.snowflake_provider.overrides


def test_hook_arguments_override_the_connection(orders_user, use_connection):
    """Hook arguments (an operator's hook_params) win over the connection's extras."""
    hook = use_connection(orders_user, warehouse="CONN_WH", role="CONN_ROLE")(
        warehouse="HOOK_WH", session_parameters={"QUERY_TAG": "hook"}
    )
    settings = hook.connection_settings
    assert (settings.warehouse, settings.role) == ("HOOK_WH", "CONN_ROLE")
    assert settings.session_parameters == {"QUERY_TAG": "hook"}
    assert hook.get_uri() == "snowflake://?warehouse=HOOK_WH&role=CONN_ROLE"
    assert hook.get_first("select 1") == (1,)


# -- what the hook refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ({"password": "pw-in-airflow"}, "has a password"),
        ({"login": "ETL_USER"}, "has a login"),
        ({"extra": {"secret_path": "secret/x", "private_key_content": "k"}}, "private_key_content"),
        ({"extra": {"warehouse": "WH"}}, "has no secret_path"),
    ],
)
def test_connections_with_credentials_or_without_a_path_are_refused(
    orders_user, use_connection, connection, expected
):
    """A credential in the Airflow connection, or no secret_path, is a SnowflakeConfigError
    naming the connection and the fix, before anything reaches Vault or Snowflake."""
    fields = {"conn_type": CONNECTION_TYPE, "extra": {"secret_path": orders_user.secret_path}}
    fields.update(connection)
    hook = use_connection(orders_user, connection=json.dumps(fields))()
    mark, logins = orders_user.vault.mark(), orders_user.login_count
    with pytest.raises(SnowflakeConfigError, match=expected) as info:
        hook.get_conn()
    assert CONN_ID in str(info.value)
    assert "pw-in-airflow" not in str(info.value)
    assert _requests(orders_user, mark) == []
    assert orders_user.login_count == logins


def test_authentication_arguments_are_refused():
    """An authenticator (or region, MFA, browser option) is refused at construction."""
    from gds_snowflake.airflow import VaultSnowflakeHook

    with pytest.raises(SnowflakeConfigError, match="authenticator"):
        VaultSnowflakeHook(snowflake_conn_id=CONN_ID, authenticator="externalbrowser")
