"""The gds-vault command against a real OpenBao dev server: output, masking, exit codes."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from gds_vault import cli
from gds_vault.cli import MASK, main
from gds_vault.testing import free_port

pytestmark = pytest.mark.timeout(60)

SECRET = {"account": "acme", "user": "ETL", "password": "pw-etl-1"}  # see conftest.vault
_names = itertools.count()


@pytest.fixture
def approle_env(vault, monkeypatch) -> tuple[str, str]:
    """VAULT_ADDR plus a fresh AppRole (policy reader) in the environment."""
    role_id, secret_id = vault.server.approle(
        f"cli-role-{next(_names)}", policies=["reader"], token_ttl="1h"
    )
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    return role_id, secret_id


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_get_masks_every_value(approle_env, capsys):
    """`get PATH` lists the field names with ******** and no value, and says how to reveal."""
    code, out, err = run(capsys, "get", "secret/snowflake/etl")
    assert code == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines == {"account": MASK, "password": MASK, "user": MASK}
    for value in SECRET.values():
        assert value not in out
    assert "--reveal" in err


def test_get_reveal_prints_values(approle_env, capsys):
    """`get PATH --reveal` prints each field with its value."""
    code, out, _ = run(capsys, "get", "secret/snowflake/etl", "--reveal")
    assert code == 0
    assert dict(line.split(None, 1) for line in out.splitlines()) == SECRET


def test_get_json_masked_and_revealed(approle_env, capsys):
    """`--format json` prints a JSON object, masked by default and real with --reveal."""
    code, out, _ = run(capsys, "get", "secret/snowflake/etl", "--format", "json")
    assert code == 0
    assert json.loads(out) == {name: MASK for name in SECRET}
    code, out, _ = run(capsys, "get", "secret/snowflake/etl", "--format", "json", "--reveal")
    assert code == 0
    assert json.loads(out) == SECRET


def test_get_single_key(approle_env, capsys):
    """`get PATH KEY` masks the one field; with --reveal it prints the bare value for scripts."""
    code, out, _ = run(capsys, "get", "secret/snowflake/etl", "password")
    assert (code, out.split()) == (0, ["password", MASK])
    code, out, _ = run(capsys, "get", "secret/snowflake/etl", "password", "--reveal")
    assert (code, out) == (0, "pw-etl-1\n")
    code, out, _ = run(
        capsys, "get", "secret/snowflake/etl", "user", "--reveal", "--format", "json"
    )
    assert (code, json.loads(out)) == (0, {"user": "ETL"})


def test_get_version(vault, approle_env, capsys):
    """`--version N` reads that KV v2 version."""
    vault.server.kv_put("secret", "cli/versioned", {"value": "first"})
    vault.server.kv_put("secret", "cli/versioned", {"value": "second"})
    code, out, _ = run(capsys, "get", "secret/cli/versioned", "value", "--version", "1", "--reveal")
    assert (code, out) == (0, "first\n")


def test_list(approle_env, capsys):
    """`list PATH` prints one name per line, or a JSON list."""
    code, out, _ = run(capsys, "list", "secret/snowflake")
    assert code == 0
    assert "etl" in out.splitlines()
    code, out, _ = run(capsys, "list", "secret/snowflake", "--format", "json")
    assert code == 0
    assert "etl" in json.loads(out)


def test_login_shows_method_ttl_policies_without_secrets(approle_env, capsys):
    """`login` shows the method, TTL, renewability and policies; never role_id or secret_id."""
    role_id, secret_id = approle_env
    code, out, err = run(capsys, "login")
    assert code == 0
    assert "with approle at auth/approle" in out
    ttl = re.search(r"TTL +(1h|59m \d+s) \((\d+) s\)", out)
    assert ttl is not None
    assert 3500 < int(ttl.group(2)) <= 3600
    assert "renewable" in out
    assert "yes" in out
    assert "default, reader" in out
    assert role_id not in out + err
    assert secret_id not in out + err


def test_login_never_prints_the_token(vault, monkeypatch, capsys):
    """With token auth, `login` (text and JSON) describes the token but never prints it."""
    token = vault.server.create_token(policies=["reader"], ttl="30m")
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_TOKEN", token)
    code, out, err = run(capsys, "login")
    assert code == 0
    assert "with token" in out
    assert "reader" in out
    assert token not in out + err
    code, out, err = run(capsys, "login", "--format", "json")
    summary = json.loads(out)
    assert code == 0
    assert summary["method"] == "token"
    assert 0 < summary["ttl"] <= 1800
    assert summary["policies"] == ["default", "reader"]
    assert token not in out + err


def test_unreachable_address_is_exit_1_without_traceback(approle_env, capsys):
    """A Vault that does not answer is exit code 1 with the typed error's one-line message."""
    addr = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "--addr", addr, "--max-retries", "0", "get", "secret/x")
    assert code == cli.EXIT_ERROR == 1
    assert out == ""
    assert err.startswith(f"gds-vault: Could not reach Vault at {addr}")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_invalid_address_is_usage_error(approle_env, capsys):
    """An --addr that is not an address is a configuration error: exit code 2."""
    code, _, err = run(capsys, "get", "secret/x", "--addr", "vault.example.com")
    assert code == cli.EXIT_USAGE == 2
    assert "is not an address" in err


def test_missing_vault_addr_is_usage_error(monkeypatch, capsys):
    """Without VAULT_ADDR the command exits 2 and names the variable."""
    monkeypatch.setenv("VAULT_TOKEN", "hvs.not-used-because-no-address")
    code, out, err = run(capsys, "login")
    assert (code, out) == (2, "")
    assert "VAULT_ADDR is not set" in err


def test_not_found_is_exit_3(approle_env, capsys):
    """A missing secret, or a missing key, is exit code 3 with the path in the message."""
    code, _, err = run(capsys, "get", "secret/snowflake/nope")
    assert code == cli.EXIT_NOT_FOUND == 3
    assert "No secret at secret/snowflake/nope" in err
    code, _, err = run(capsys, "get", "secret/snowflake/etl", "role")
    assert code == 3
    assert "has no key 'role'" in err
    assert "pw-etl-1" not in err


def test_permission_denied_is_exit_4(vault, monkeypatch, capsys):
    """A secret the policies do not cover is exit code 4, naming the capability needed."""
    role_id, secret_id = vault.server.approle(f"cli-narrow-{next(_names)}", policies=["narrow"])
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    code, _, err = run(capsys, "get", "secret/snowflake/etl")
    assert code == cli.EXIT_PERMISSION == 4
    assert "Permission denied" in err
    assert "'read'" in err


def test_auth_failure_is_exit_5_without_the_secret_id(approle_env, monkeypatch, capsys):
    """A refused login is exit code 5, and the message does not echo the secret_id."""
    monkeypatch.setenv("VAULT_SECRET_ID", "0c1f1e55-bad0-4bad-8bad-000000000000")
    code, _, err = run(capsys, "login")
    assert code == cli.EXIT_AUTH == 5
    assert "Login at auth/approle/login was refused" in err
    assert "0c1f1e55" not in err


def test_options_override_the_environment(vault, approle_env, monkeypatch, capsys):
    """--addr (before or after the command) wins over a wrong VAULT_ADDR."""
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    code, out, _ = run(
        capsys, "get", "secret/snowflake/etl", "user", "--reveal", "--addr", vault.addr
    )
    assert (code, out) == (0, "ETL\n")
    code, out, _ = run(capsys, "--addr", vault.addr, "list", "secret/snowflake")
    assert code == 0
    assert "etl" in out


def test_conflicting_tls_options_are_usage_error(approle_env, capsys):
    """--ca-cert together with --tls-skip-verify is refused as a usage error."""
    code, _, err = run(capsys, "login", "--ca-cert", "/tmp/ca.pem", "--tls-skip-verify")
    assert code == 2
    assert "only one of --ca-cert, --ca-path and --tls-skip-verify" in err


def test_usage_error_and_help(capsys):
    """A missing argument exits 2; --help exits 0 and documents the exit codes."""
    assert main(["get"]) == 2
    assert "PATH" in capsys.readouterr().err
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("3  not found", "4  permission denied", "5  authentication failed"):
        assert line in out
        assert line in cli.__doc__


def test_console_entry_in_a_subprocess(vault, approle_env):
    """`python -m gds_vault.cli` works as the console script: masked JSON, then exit code 3."""
    command = [sys.executable, "-m", "gds_vault.cli"]
    result = subprocess.run(
        [*command, "get", "secret/snowflake/etl", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {name: MASK for name in SECRET}
    result = subprocess.run(
        [*command, "get", "secret/snowflake/missing"],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "No secret at" in result.stderr


def test_ca_cert_option_trusts_a_private_ca(openbao_tls, monkeypatch, capsys):
    """Against a TLS server, login fails (exit 1, TLS advice) until --ca-cert names its CA."""
    monkeypatch.setenv("VAULT_ADDR", openbao_tls.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao_tls.create_token(policies=["default"]))
    code, _, err = run(capsys, "login", "--max-retries", "0")
    assert code == 1
    assert "TLS verification failed" in err
    assert "VAULT_CACERT" in err
    code, out, _ = run(capsys, "--ca-cert", openbao_tls.ca_cert, "login")
    assert code == 0
    assert f"Logged in to {openbao_tls.addr} with token" in out
