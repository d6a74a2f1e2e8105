"""What Airflow reads before importing any hook: the entry point and the provider info.

These run without Airflow (the main environment); tests/airflow/test_hook.py checks that
real Airflow accepts them.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import gds_snowflake.airflow
from gds_snowflake.airflow import CONNECTION_TYPE, get_provider_info
from gds_snowflake.airflow._provider_info import EXTRA_FIELDS


def test_public_surface():
    """gds_snowflake.airflow exports exactly these names."""
    assert sorted(gds_snowflake.airflow.__all__) == [
        "CONNECTION_TYPE",
        "VaultSnowflakeHook",
        "get_provider_info",
    ]


def test_entry_point_is_registered_by_the_distribution():
    """Installing the distribution registers get_provider_info under apache_airflow_provider,
    with the distribution's own name, as Airflow requires."""
    [entry] = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == "gds-vault-snowflake"
    ]
    assert entry.load() is get_provider_info
    assert get_provider_info()["package-name"] == entry.dist.name


def test_provider_info_declares_the_connection_type_and_its_form():
    """One connection type, gds_snowflake, whose form hides login and password, makes host
    and port optional and shows every extra field with a label and help text."""
    info = get_provider_info()
    assert {"package-name", "name", "description"} <= set(info)
    [connection_type] = info["connection-types"]
    assert connection_type["connection-type"] == CONNECTION_TYPE == "gds_snowflake"
    assert connection_type["hook-class-name"] == "gds_snowflake.airflow.VaultSnowflakeHook"
    behaviour = connection_type["ui-field-behaviour"]
    assert {"login", "password"} <= set(behaviour["hidden-fields"])
    assert behaviour["relabeling"] == {"host": "Host (optional)", "port": "Port (optional)"}
    fields = connection_type["conn-fields"]
    assert list(fields) == [
        "secret_path",
        "account",
        "warehouse",
        "role",
        "database",
        "schema",
        "protocol",
        "session_parameters",
    ]
    for name, spec in fields.items():
        assert spec["label"], name
        assert len(spec["description"]) > 20, name
        # Extra fields' placeholders carry the prefix: "schema" alone is the standard field.
        assert f"extra__gds_snowflake__{name}" in behaviour["placeholders"]
    assert fields["secret_path"]["schema"] == {"type": "string"}
    assert fields["session_parameters"]["schema"] == {"type": ["object", "null"]}
    assert {f.name for f in EXTRA_FIELDS} == set(fields)


def test_provider_info_is_a_cheap_import():
    """Airflow loads the entry point while configuring itself: it imports neither Airflow
    nor the connector, requests, cryptography, SQLAlchemy or pandas."""
    code = (
        "import sys; from gds_snowflake.airflow import get_provider_info; get_provider_info(); "
        "heavy = [m for m in ('airflow', 'snowflake.connector', 'requests', 'cryptography', "
        "'sqlalchemy', 'pandas', 'gds_snowflake.airflow._hook') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hook_without_airflow_says_what_to_install():
    """Asking for the hook where Airflow is missing is an ImportError naming the extra."""
    code = (
        "import sys; sys.modules['airflow'] = None\n"  # as if Airflow were not installed
        "import gds_snowflake.airflow\n"
        "try:\n    gds_snowflake.airflow.VaultSnowflakeHook\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'gds-vault-snowflake[airflow]'" in out.stdout
