"""The secret-hygiene fixture itself, and the CLIs checked against every known secret.

The fixture (tests/reliability/hygiene.py) runs around every test of the suite. These
tests show it catches a secret in each place it watches, that it does not look at test
locals, and that its report never repeats the secret. Then the CLIs, run with full
verbosity, print no known secret (the Vault token they log in with included) unless
``--reveal`` asks for a value.
"""

from __future__ import annotations

import itertools
import json
import logging

import pytest

from gds_snowflake import SnowflakeCredentials
from gds_vault import VaultAuthError
from gds_vault import _logging as vault_logging
from tests.reliability.hygiene import find_leaks, register

SECRET = "hygiene-probe-secret-0x5eed"
_roles = itertools.count()


@pytest.fixture
def probe(secret_hygiene):
    """The fixture's record for this test; emptied afterwards so the probes do not fail it."""
    register(SECRET)
    yield secret_hygiene
    secret_hygiene.texts.clear()
    secret_hygiene.errors.clear()
    secret_hygiene.objects.clear()


def test_catches_a_secret_in_a_debug_record_of_any_logger(probe):
    """A registered value in a DEBUG record of a third-party logger is found."""
    logging.getLogger("somebody.else").debug("connecting with %s", SECRET)
    leaks = find_leaks(probe, {SECRET})
    assert len(leaks) == 1
    assert "log record of somebody.else (DEBUG)" in leaks[0]
    assert SECRET not in leaks[0]  # the report masks what it found


def test_catches_a_secret_in_a_library_error_even_when_caught(probe):
    """A library error whose message holds a secret is found although the test caught it."""
    with pytest.raises(VaultAuthError):
        raise VaultAuthError(f"login refused for {SECRET}")
    leaks = find_leaks(probe, {SECRET})
    assert len(leaks) == 1
    assert "message of VaultAuthError" in leaks[0]


def test_catches_a_secret_in_a_library_repr(probe):
    """A library object whose repr shows a secret is found (here a user name set to one)."""
    SnowflakeCredentials(secret_path="secret/snowflake/x", user=SECRET, password="x" * 8)
    leaks = find_leaks(probe, {SECRET})
    assert len(leaks) == 1
    assert "repr() of SnowflakeCredentials" in leaks[0]


def test_ignores_test_locals_and_hidden_fields(probe):
    """Secrets in test variables, and in fields kept out of repr, are not leaks."""
    held = {"password": SECRET}
    SnowflakeCredentials(secret_path="secret/snowflake/x", user="ETL", password=SECRET)
    assert held["password"] == SECRET
    assert find_leaks(probe, {SECRET}) == []


def test_library_registers_the_tokens_it_obtains(rel):
    """Tokens the client logs in with are known secrets (so the fixture checks them)."""
    client = rel.client(direct=True)
    client.login()
    # The token value itself (no public seam gives it out, on purpose) and the registry.
    assert client._tokens.current() in vault_logging._registered



def known_secrets() -> list[str]:
    with vault_logging._registered_lock:
        return sorted(vault_logging._registered)


def test_gds_vault_cli_prints_no_secret_unless_asked(
    rel, monkeypatch, capsys, restore_package_loggers
):
    """get, list and login at -vv, text and JSON, print no known secret; --reveal prints the
    value asked for, and nothing else secret."""
    from gds_vault.cli import main

    role_id, secret_id = rel.server.approle(f"rel-cli-{next(_roles)}", policies=["rel-reader"])
    for name, value in {
        "VAULT_ADDR": rel.server.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }.items():
        monkeypatch.setenv(name, value)
    runs = [
        ["-vv", "get", "secret/reliability/app"],
        ["-vv", "get", "secret/reliability/app", "--format", "json"],
        ["-vv", "get", "secret/reliability/app", "password"],
        ["-vv", "list", "secret/reliability"],
        ["-vv", "login"],
        ["-vv", "login", "--format", "json"],
    ]
    output = ""
    for argv in runs:
        assert main(argv) == 0, argv
        captured = capsys.readouterr()
        output += captured.out + captured.err
    assert "Logged in" in output  # -vv really logged, so the check below means something
    leaked = [s for s in known_secrets() if s in output]
    assert leaked == [], f"{len(leaked)} known secret(s) printed"
    assert main(["get", "secret/reliability/app", "password", "--reveal"]) == 0
    revealed = capsys.readouterr()
    assert revealed.out.strip() == "pw-reliability-1"
    assert [s for s in known_secrets() if s in revealed.out + revealed.err] == ["pw-reliability-1"]
    json_out = main(["get", "secret/reliability/app", "--format", "json"])
    assert json_out == 0
    assert "pw-reliability-1" not in json.dumps(capsys.readouterr().out)
