"""How a ``gds_snowflake`` connection's fields become provider arguments (no Airflow needed).

The connection is a plain stand-in with the attributes every Airflow version's
``Connection`` has; tests/airflow/test_hook.py runs the same rules through real
Airflow connections.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from gds_snowflake import SnowflakeConfigError
from gds_snowflake.airflow._settings import HookSettings, settings_from_connection


@dataclass
class Conn:
    """The attributes of airflow.models.Connection / airflow.sdk.Connection read here."""

    conn_id: str = "sf_vault"
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return dict(self.extra)


def test_minimal_connection_names_only_the_secret():
    """secret_path alone is a complete connection; everything else comes from the secret,
    and the worker's SNOWFLAKE_* variables are not consulted (environ is empty)."""
    settings = settings_from_connection(Conn(extra={"secret_path": " secret/snowflake/etl "}))
    assert settings == HookSettings(conn_id="sf_vault", secret_path="secret/snowflake/etl")
    assert settings.provider_arguments() == {"secret_path": "secret/snowflake/etl", "environ": {}}


def test_every_field_reaches_the_provider():
    """Host, port and every optional extra go to the provider; login and password never do."""
    conn = Conn(
        host="xy12345.privatelink.snowflakecomputing.com",
        port=443,
        extra={
            "secret_path": "secret/snowflake/etl",
            "account": "xy12345.eu-west-1",
            "warehouse": "ETL_WH",
            "role": "ETL",
            "database": "DW",
            "schema": "RAW",
            "protocol": "HTTPS",
            "session_parameters": {"QUERY_TAG": "etl"},
        },
    )
    arguments = settings_from_connection(conn).provider_arguments()
    assert arguments == {
        "secret_path": "secret/snowflake/etl",
        "environ": {},
        "account": "xy12345.eu-west-1",
        "warehouse": "ETL_WH",
        "role": "ETL",
        "database": "DW",
        "schema": "RAW",
        "host": "xy12345.privatelink.snowflakecomputing.com",
        "port": 443,
        "protocol": "https",
        "session_parameters": {"QUERY_TAG": "etl"},
    }


def test_session_parameters_are_copied_for_each_caller():
    """Each caller gets its own session_parameters dict: the connector writes into it."""
    settings = settings_from_connection(
        Conn(extra={"secret_path": "s/p", "session_parameters": {"QUERY_TAG": "a"}})
    )
    first = settings.provider_arguments()["session_parameters"]
    first["AUTOCOMMIT"] = True
    assert settings.provider_arguments()["session_parameters"] == {"QUERY_TAG": "a"}


def test_form_values_arrive_as_text():
    """What a connection form or URI stores as text works: JSON session parameters, a
    numeric port, the extra__gds_snowflake__ prefix of older forms, the schema field."""
    conn = Conn(
        port="8080",  # type: ignore[arg-type]
        schema="RAW",
        extra={
            "extra__gds_snowflake__secret_path": "secret/snowflake/etl",
            "session_parameters": json.dumps({"QUERY_TAG": "form"}),
            "warehouse": "",
        },
    )
    settings = settings_from_connection(conn)
    assert settings.secret_path == "secret/snowflake/etl"
    assert settings.port == 8080
    assert settings.schema == "RAW"
    assert settings.session_parameters == {"QUERY_TAG": "form"}
    assert settings.warehouse is None


def test_hook_arguments_win_over_the_connection():
    """Arguments given to the hook (an operator's hook_params) override the connection."""
    conn = Conn(extra={"secret_path": "s/p", "warehouse": "CONN_WH", "role": "R"})
    settings = settings_from_connection(conn, {"warehouse": "HOOK_WH", "role": None})
    assert (settings.warehouse, settings.role) == ("HOOK_WH", "R")


def test_conn_params_hold_no_credential():
    """The view SnowflakeHook's helpers read has the keys they index, and no credential."""
    params = settings_from_connection(Conn(extra={"secret_path": "s/p", "role": "R"})).conn_params()
    assert {"account", "database", "schema", "region", "warehouse", "role"} <= set(params)
    assert params["role"] == "R"
    assert not {"user", "password", "private_key", "token"} & set(params)


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (Conn(password="hunter2-pw", extra={"secret_path": "s/p"}), "has a password"),
        (Conn(login="ETL_USER", extra={"secret_path": "s/p"}), "has a login"),
        (Conn(extra={"secret_path": "s/p", "private_key_content": "MIIE"}), "private_key_content"),
        (
            Conn(extra={"secret_path": "s/p", "token": "tk-9f2e", "password": "x"}),
            "password, token",
        ),
        (Conn(extra={"warehouse": "WH"}), "has no secret_path"),
        (Conn(extra={"secret_path": "  "}), "has no secret_path"),
        (Conn(extra={"secret_path": ["s/p"]}), "secret_path must be text"),
        (Conn(extra={"secret_path": "s/p", "protocol": "ftp"}), "https or http"),
        (Conn(port=70000, extra={"secret_path": "s/p"}), "port must be a number"),
        (Conn(port="abc", extra={"secret_path": "s/p"}), "port must be a number"),  # type: ignore[arg-type]
        (Conn(extra={"secret_path": "s/p", "session_parameters": "{oops"}), "not valid JSON"),
        (Conn(extra={"secret_path": "s/p", "session_parameters": "[1]"}), "must be a JSON object"),
        (Conn(schema="A", extra={"secret_path": "s/p", "schema": "B"}), "two schemas"),
        (
            Conn(extra={"secret_path": "a/b", "extra__gds_snowflake__secret_path": "c/d"}),
            "sets secret_path twice",
        ),
    ],
)
def test_unusable_connections_are_refused_with_the_fix(conn, message):
    """Credentials in the connection, a missing path or a malformed value: a
    SnowflakeConfigError naming the connection and saying what to change, never the value."""
    with pytest.raises(SnowflakeConfigError, match=message) as info:
        settings_from_connection(conn)
    assert "'sf_vault'" in str(info.value)
    for value in ("hunter2-pw", "MIIE", "tk-9f2e"):
        assert value not in str(info.value)


def test_unknown_extras_are_logged_by_name_only(caplog):
    """An extra this connection type does not read is logged (its name, not its value) and
    ignored; the extras DbApiHook itself reads are not unknown."""
    conn = Conn(
        extra={"secret_path": "s/p", "warehous": "TYPO_WH", "placeholder": "%s", "region": "x"}
    )
    with caplog.at_level(logging.WARNING, logger="gds_snowflake.airflow"):
        settings = settings_from_connection(conn)
    assert settings.warehouse is None
    [record] = caplog.records
    assert "region, warehous" in record.getMessage()
    assert "TYPO_WH" not in record.getMessage()
    assert "placeholder" not in record.getMessage()
