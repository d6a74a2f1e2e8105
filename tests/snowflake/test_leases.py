"""Leased Snowflake credentials end to end: OpenBao's database secrets engine makes users
in a real PostgreSQL, and the Snowflake double accepts exactly what PostgreSQL accepts, so
an ended or revoked lease really locks the user out (tests/postgres.py)."""

from __future__ import annotations

import json
import time

import pytest

from gds_snowflake import SnowflakeConnectionProvider, get_snowflake_connection
from gds_snowflake.cli import main

pytestmark = pytest.mark.timeout(90)


def one(connection) -> object:
    return connection.cursor().execute("select 1").fetchone()[0]


def wait_for(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_a_leased_path_connects_as_the_lease_user(leases, monkeypatch):
    """get_snowflake_connection('database/creds/<role>', account=...) logs in as the user
    the engine made (username/password mapped to ours); SNOWFLAKE_USER cannot override it."""
    monkeypatch.setenv("SNOWFLAKE_USER", "SOMEONE_ELSE")
    client = leases.client()
    path = leases.role(ttl="30s")
    with get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs()) as conn:
        assert one(conn) == 1
        provider = SnowflakeConnectionProvider(path, vault_client=client)
        lease = provider.lease_holder().lease
        user = lease.data["username"]
        assert leases.snowflake.login_count(user) == 1
        # A second connection shares the lease: no second user.
        with get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs()) as c2:
            assert one(c2) == 1
        assert client.stats.lease_reads == 1
        assert leases.snowflake.login_count(user) == 2


def test_the_lease_is_renewed_while_a_connection_is_open(leases):
    """A 2 s lease outlives 5 s of an open connection: the timer renews it (the user still
    exists in PostgreSQL), and the connection needs no new login."""
    client = leases.client()
    path = leases.role(ttl="2s", max_ttl="60s")
    conn, holder = leases.connect(path, client)
    user = holder.lease.data["username"]
    time.sleep(5.0)
    assert holder.renewals >= 3
    assert holder.replacements == 0
    assert leases.postgres.role_exists(user)
    assert one(conn) == 1
    assert conn.reconnects == 0
    conn.close()
    renewals = holder.renewals
    time.sleep(2.5)  # no open connection: no renewal, the lease runs out
    assert holder.renewals <= renewals + 1
    assert wait_for(lambda: not leases.postgres.role_exists(user), 3.0)


def test_credentials_are_replaced_before_the_max_ttl(leases):
    """Renewals capped by a 4 s max TTL: new credentials are read before it; a new
    connection logs in as the new user; the open one, whose user Vault then drops,
    logs in again as the new user and re-runs its statement."""
    client = leases.client()
    path = leases.role(ttl="2s", max_ttl="4s")
    conn, holder = leases.connect(path, client)
    first_user = holder.lease.data["username"]
    assert wait_for(lambda: holder.replacements >= 1, 5.0)
    second_user = holder.lease.data["username"]
    assert second_user != first_user
    with get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs()) as new:
        assert one(new) == 1
    assert leases.snowflake.login_count(second_user) == 1
    assert wait_for(lambda: not leases.postgres.role_exists(first_user), 5.0)
    assert one(conn) == 1  # the old user is gone: reconnect as the new one, re-run
    assert conn.reconnects == 1
    assert leases.snowflake.login_count(second_user) == 2
    conn.close()


def test_a_user_dropped_under_a_live_connection_is_replaced_on_next_use(leases):
    """The lease revoked behind the library's back (as if it ran out while a notebook sat
    idle): the next statement finds the session gone, the login is refused, new
    credentials are read, and the statement is re-run, with no error for the caller."""
    client = leases.client()
    path = leases.role(ttl="60s")
    conn, holder = leases.connect(path, client)
    old = holder.lease
    leases.vault.api("PUT", "sys/leases/revoke", {"lease_id": old.lease_id})
    assert one(conn) == 1
    assert conn.reconnects == 1
    assert holder.lease.lease_id != old.lease_id
    assert leases.snowflake.failed_login_count(old.data["username"]) == 1
    conn.close()


def test_an_ended_lease_is_never_handed_out(leases):
    """With no connection open the lease runs out; the next connection reads a new one
    instead of trying the dead user."""
    client = leases.client()
    path = leases.role(ttl="2s")
    get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs()).close()
    holder = leases.holder(path, client)
    old = holder.lease
    time.sleep(2.2)
    with get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs()) as conn:
        assert one(conn) == 1
    assert holder.lease.lease_id != old.lease_id
    assert leases.snowflake.failed_login_count(old.data["username"]) == 0


def test_revoke_on_close_drops_the_user_at_once(leases):
    """A provider with revoke_on_close=True uses a lease of its own and revokes it at
    close(); the shared lease of other providers is left alone."""
    client = leases.client()
    path = leases.role(ttl="60s")
    shared = get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs())
    with SnowflakeConnectionProvider(
        path, vault_client=client, revoke_on_close=True, **leases.connect_kwargs()
    ) as provider:
        with provider.connect() as conn:
            assert one(conn) == 1
        own_user = provider.lease_holder().lease.data["username"]
    shared_user = leases.holder(path, client).lease
    assert own_user != shared_user.data["username"]
    assert not leases.postgres.role_exists(own_user)
    assert leases.postgres.role_exists(shared_user.data["username"])
    assert one(shared) == 1 and shared.reconnects == 0
    shared.close()


def test_the_engine_takes_leased_credentials(leases):
    """get_snowflake_engine with a leased path: pooled connections log in as the lease's
    user, and hold the lease (renewed while the pool keeps a connection open)."""
    from sqlalchemy import text

    from gds_snowflake import get_snowflake_engine

    client = leases.client()
    path = leases.role(ttl="2s", max_ttl="60s")
    kwargs = leases.connect_kwargs()
    engine = get_snowflake_engine(path, vault_client=client, **kwargs)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar() == 1
        holder = leases.holder(path, client)
        time.sleep(3.0)
        assert holder.renewals >= 1
        with engine.connect() as conn:
            assert conn.execute(text("select 2")).scalar() == 2
    finally:
        engine.dispose()


def test_the_doctor_checks_a_leased_path_and_revokes_its_lease(leases, monkeypatch, capsys):
    """gds-snowflake doctor on database/creds/<role>: every step passes, the secret step
    says it is a dynamic secret whose renewal works, and the user is dropped at the end."""
    role_id, secret_id = leases.vault.approle("doctor-leases", policies=["leases"])
    monkeypatch.setenv("VAULT_ADDR", leases.vault.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    where = leases.snowflake.connect_kwargs()
    path = leases.role(ttl="60s")
    code = main(
        ["doctor", path, "--account", where["account"], "--host", where["host"],
         "--port", str(where["port"]), "--protocol", "http", "--format", "json"]
    )  # fmt: skip
    steps = json.loads(capsys.readouterr().out)
    assert code == 0, steps
    secret = next(s for s in steps if s["step"] == "secret")
    assert "dynamic secret" in secret["detail"] and "renewal works" in secret["detail"]
    user = secret["detail"].split("as user ")[1].split(",")[0]
    assert leases.snowflake.login_count(user) == 1
    assert not leases.postgres.role_exists(user)


def test_an_rsa_private_key_lease_logs_in_with_the_key(snowflake_double, httpserver, rsa_key):
    """credential_type=rsa_private_key: the lease's rsa_private_key is used as the key.
    OpenBao has no Snowflake plugin to make such a lease, so Vault's answer is crafted
    (its shape as the Snowflake plugin gives it); the double checks the key-pair JWT."""
    from gds_vault import TokenAuth, VaultClient

    from .conftest import pem

    user = "V_TOKEN_ETL_KEYPAIR_1"
    snowflake_double.register_user(user, public_key=rsa_key.public_key())
    httpserver.expect_request("/v1/auth/token/lookup-self").respond_with_json(
        {"data": {"ttl": 3600, "renewable": False, "type": "service", "policies": ["etl"]}}
    )
    httpserver.expect_request("/v1/sys/internal/ui/mounts/database/creds/etl").respond_with_json(
        {"data": {"path": "database/", "type": "database", "options": None}}
    )
    httpserver.expect_request("/v1/database/creds/etl").respond_with_json(
        {
            "lease_id": "database/creds/etl/AbCdEf",
            "lease_duration": 3600,
            "renewable": True,
            "data": {"username": user, "rsa_private_key": pem(rsa_key)},
        }
    )
    revoked = []
    httpserver.expect_request("/v1/sys/leases/revoke", method="PUT").respond_with_handler(
        lambda request: revoked.append(request.get_json()) or __import__("werkzeug").Response(
            status=204
        )
    )
    with VaultClient(httpserver.url_for("").rstrip("/"), auth=TokenAuth("t-crafted")) as client:
        with SnowflakeConnectionProvider(
            "database/creds/etl", vault_client=client, revoke_on_close=True,
            **snowflake_double.connect_kwargs(),
        ) as provider:  # fmt: skip
            assert provider.credentials().method == "key pair"
            with provider.connect() as conn:
                assert one(conn) == 1
    assert snowflake_double.login_count(user) == 1
    assert revoked == [{"lease_id": "database/creds/etl/AbCdEf"}]


def test_threads_connecting_at_once_share_one_lease(leases):
    """Eight threads opening their first connection on a leased path together cause one
    lease read (one user): the read is shared, not made and revoked eight times."""
    import threading

    client = leases.client()
    path = leases.role(ttl="60s")
    errors: list[BaseException] = []
    connections = []

    def work() -> None:
        try:
            connections.append(
                get_snowflake_connection(path, vault_client=client, **leases.connect_kwargs())
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [one(c) for c in connections] == [1] * 8
    holder = leases.holder(path, client)
    assert client.stats.lease_reads == 1
    assert leases.snowflake.login_count(holder.lease.data["username"]) == 8
    for conn in connections:
        conn.close()


def test_a_forked_child_never_revokes_its_parents_lease(leases):
    """revoke_on_close in a forked child is a no-op: the lease belongs to the process that
    read it, whose connections still use it."""
    import os

    client = leases.client()
    path = leases.role(ttl="60s")
    provider = SnowflakeConnectionProvider(
        path, vault_client=client, revoke_on_close=True, **leases.connect_kwargs()
    )
    conn = provider.connect()
    user = provider.lease_holder().lease.data["username"]
    pid = os.fork()
    if pid == 0:  # the child: close the provider, then leave without pytest's teardown
        code = 0
        try:
            provider.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert leases.postgres.role_exists(user)
    assert one(conn) == 1 and conn.reconnects == 0
    conn.close()
    provider.close()
    assert not leases.postgres.role_exists(user)
