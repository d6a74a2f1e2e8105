"""get_secret_from_vault and the process-wide default client."""

from __future__ import annotations

import pytest

from gds_vault import (
    VaultConfigError,
    get_default_client,
    get_secret_from_vault,
    reset_default_client,
    set_default_client,
)


@pytest.fixture(autouse=True)
def fresh_default():
    set_default_client(None)
    yield
    reset_default_client()


def test_reads_with_environment(vault, monkeypatch):
    """The default client is built from VAULT_* variables on first use."""
    role_id, secret_id = vault.server.approle("default-client", policies=["reader"])
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    assert get_secret_from_vault("secret/snowflake/etl", "user") == "ETL"
    assert get_secret_from_vault("kv1/snowflake/etl")["user"] == "ETL_V1"


def test_one_client_one_login(vault, monkeypatch):
    """Many calls share one client and so one login."""
    role_id, secret_id = vault.server.approle("default-shared", policies=["reader"])
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    mark = vault.server.mark()
    for path in ("secret/snowflake/etl", "secret/team-a/app", "kv1/snowflake/etl"):
        get_secret_from_vault(path)
    assert get_default_client() is get_default_client()
    assert len(vault.server.requests_since(mark, "auth/approle/login")) == 1


def test_missing_addr_names_variable():
    """Without VAULT_ADDR the error names the variable; there is no default address."""
    with pytest.raises(VaultConfigError, match="VAULT_ADDR"):
        get_secret_from_vault("secret/snowflake/etl")


def test_closed_default_is_replaced(vault, monkeypatch):
    """A closed default client is replaced by a new one on next use."""
    monkeypatch.setenv("VAULT_ADDR", vault.addr)
    monkeypatch.setenv("VAULT_TOKEN", vault.server.create_token(policies=["reader"]))
    first = get_default_client()
    first.close()
    assert get_default_client() is not first
