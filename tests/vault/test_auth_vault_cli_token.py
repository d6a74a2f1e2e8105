"""The Vault CLI's token (``~/.vault-token``) as the last fallback, with the real CLI.

``bao login`` (OpenBao's build of the Vault CLI, same token helper) writes the token
file in a HOME of the test's own, as a person's ``vault login`` does; the client finds
it when nothing else is configured and re-reads it at each login.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from gds_vault import TokenAuth, VaultAuthError, VaultClient, VaultConfigError
from gds_vault.cli import main
from gds_vault.testing import find_bao

LOOKUP = "auth/token/lookup-self"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A person's home directory of this test's own (never the machine's)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def person(vault):
    """A userpass user with the reader policy, as a person who runs `vault login`."""
    vault.server.userpass("notebook.person", "pw-notebook-person-1", policies=["reader"])
    return "notebook.person", "pw-notebook-person-1"


def vault_login(vault, home: Path, person: tuple[str, str]) -> str:
    """Run the real CLI's `login -method=userpass` with HOME=home; return the new token."""
    username, password = person
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    subprocess.run(
        [
            find_bao(),
            "login",
            "-method=userpass",
            f"-address={vault.addr}",
            "-no-print",
            f"username={username}",
            f"password={password}",
        ],
        env={**environ, "HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=30,
    )
    token = (home / ".vault-token").read_text().strip()
    from tests.reliability.hygiene import register

    register(token)
    return token


def test_vault_login_is_enough_for_from_env(vault, home, person):
    """With only VAULT_ADDR and a `vault login` done, from_env uses ~/.vault-token."""
    vault_login(vault, home, person)
    with VaultClient.from_env({"VAULT_ADDR": vault.addr}) as client:
        assert isinstance(client.auth, TokenAuth)
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        status = client.token_status()
    assert status.method == "token"
    assert status.source == f"{home / '.vault-token'} (the Vault CLI's token from `vault login`)"
    assert "reader" in status.policies


def test_a_new_vault_login_takes_effect_without_a_restart(vault, home, person):
    """The token is revoked; the person runs `vault login` again in another terminal; the
    same client, still running, reads with the new token at its next call."""
    first = vault_login(vault, home, person)
    client = VaultClient.from_env({"VAULT_ADDR": vault.addr}, cache_ttl=0)
    with client:
        client.get_secret("secret/snowflake/etl")
        vault.server.revoke_token(first)
        second = vault_login(vault, home, person)
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        assert client._tokens.current() == second != first


def test_an_expired_cli_token_is_replaced_from_the_file(vault, home):
    """A non-renewable 2 s token is due for replacement at two thirds of its TTL: the
    client re-reads the file and takes the token a later `vault login` wrote."""
    token_file = home / ".vault-token"
    token_file.write_text(vault.server.create_token(policies=["reader"], ttl="2s", renewable=False))
    client = VaultClient.from_env({"VAULT_ADDR": vault.addr}, cache_ttl=0)
    with client:
        client.get_secret("secret/snowflake/etl")
        fresh = vault.server.create_token(policies=["reader"], ttl="1h")
        token_file.write_text(fresh + "\n")
        time.sleep(1.5)
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        assert client._tokens.current() == fresh


def test_gds_vault_login_says_where_the_token_came_from(vault, home, person, capsys, monkeypatch):
    """`gds-vault login` names ~/.vault-token as the source (text and JSON), never the token."""
    token = vault_login(vault, home, person)
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    assert main(["login"]) == 0
    out, err = capsys.readouterr()
    assert f"credentials from {home / '.vault-token'} (the Vault CLI's token" in out
    assert main(["login", "--format", "json"]) == 0
    json_out, json_err = capsys.readouterr()
    assert json.loads(json_out)["source"].startswith(str(home / ".vault-token"))
    assert token not in out + err + json_out + json_err


def test_explicit_settings_win_over_the_cli_token(vault, home, person):
    """VAULT_TOKEN (or any configured method) is chosen before ~/.vault-token."""
    vault_login(vault, home, person)
    token = vault.server.create_token(policies=["reader"])
    with VaultClient.from_env({"VAULT_ADDR": vault.addr, "VAULT_TOKEN": token}) as client:
        assert client.auth.source == "VAULT_TOKEN"
        assert client.auth.token_file is None


def test_auth_method_token_alone_uses_the_cli_token(vault, home, person):
    """VAULT_AUTH_METHOD=token without VAULT_TOKEN or VAULT_TOKEN_FILE uses ~/.vault-token."""
    vault_login(vault, home, person)
    environ = {"VAULT_ADDR": vault.addr, "VAULT_AUTH_METHOD": "token"}
    with VaultClient.from_env(environ) as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_variables_of_a_named_method_are_not_overridden_by_the_cli_token(vault, home, person):
    """VAULT_USERNAME without VAULT_AUTH_METHOD is an error, even with ~/.vault-token
    present: the client does not silently log in as whoever ran `vault login`."""
    vault_login(vault, home, person)
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_METHOD"):
        VaultClient.from_env({"VAULT_ADDR": vault.addr, "VAULT_USERNAME": "someone"})


def test_without_any_credentials_the_error_suggests_vault_login(vault, home):
    """No variables and no ~/.vault-token: the error lists the variables and `vault login`,
    with the path of the token file it looked for."""
    with pytest.raises(VaultConfigError, match="No Vault credentials") as info:
        VaultClient.from_env({"VAULT_ADDR": vault.addr})
    message = str(info.value)
    assert "`vault login`" in message and str(home / ".vault-token") in message


def test_removed_token_file_is_a_config_error_saying_vault_login(vault, home, person):
    """A token file removed after the client was made is a config error at the next
    login that names the file and says to run `vault login`."""
    vault_login(vault, home, person)
    client = VaultClient.from_env({"VAULT_ADDR": vault.addr})
    (home / ".vault-token").unlink()
    with client, pytest.raises(VaultConfigError, match="run `vault login`") as info:
        client.login()
    assert str(home / ".vault-token") in str(info.value)


def test_revoked_cli_token_says_run_vault_login(vault, home, person):
    """A revoked token in ~/.vault-token is a VaultAuthError telling the person to log in."""
    token = vault_login(vault, home, person)
    vault.server.revoke_token(token)
    with VaultClient.from_env({"VAULT_ADDR": vault.addr}) as client:
        with pytest.raises(VaultAuthError, match="run `vault login` again") as info:
            client.login()
    assert token not in str(info.value)
