"""The README's first command: the demo runs end to end on local servers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from gds_snowflake.demo import run_demo

pytestmark = pytest.mark.timeout(120)


def test_demo_runs_and_shows_each_step(snowflake_double_environment):
    """run_demo() succeeds and reports the reconnect and the key rotation as measured."""
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert f"this job: connector {version('snowflake-connector-python')}" in text
    assert "fakesnow 0.12." in text
    assert "select count(*), sum(amount) -> (3, 115.74)" in text
    assert "1 reconnect, 1 extra Snowflake login, 0 Vault reads" in text
    assert "old key rejected 1 time(s), 1 fresh Vault read" in text
    assert "programmatic access token, select count(*) -> (3,)" in text
    assert "old PAT rejected 1 time(s), 1 fresh Vault read" in text
    assert "Vault logins by this process: 1" in text
    assert text.rstrip().endswith("the AppRole shown above)")  # the demo ends with next steps
    assert "Next steps:" in text and "gds-snowflake sandbox" in text
    assert "VAULT_ADDR" not in os.environ  # the demo restores the environment
    assert os.environ["SNOWFLAKE_DISABLE_PLATFORM_DETECTION"] == "true"  # as the test set it


def test_demo_command_prints_no_credential(snowflake_double_environment, monkeypatch):
    """`gds-snowflake demo` exits 0, prints neither secret_id nor key material, warns about
    nothing, and leaves this environment's connector as it was."""
    monkeypatch.delenv("SNOWFLAKE_DISABLE_PLATFORM_DETECTION")  # the demo sets it itself
    connector = version("snowflake-connector-python")
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "gds_snowflake.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[9] Done" in result.stdout
    assert "PRIVATE KEY" not in result.stdout
    assert "demo-passphrase" not in result.stdout
    assert "Warning" not in result.stderr
    assert version("snowflake-connector-python") == connector
