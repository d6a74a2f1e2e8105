"""The fault matrix: each fault injected for real, and what the caller sees.

Network faults come from the fault proxy between the client and the real OpenBao dev
server (outages with the default policy's shape are in test_outages.py, a Raft leader
election in test_raft.py); protocol faults from pytest-httpserver posing as Vault
(tests/fakevault.py, shared with tests/vault/test_faults.py, whose tests pin the details
of each status); server states
from the real server (revocations, policy changes, a disabled mount, sys/seal) and the
Snowflake double. Retries really sleep (scaled-down waits), so every row's seconds can be
set against the policy's deadline. Each test asserts the outcome: the right data or the
right typed error, attempts within the policy, and no hang past deadline + one timeout.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from gds_snowflake import (
    SnowflakeAuthenticationError,
    SnowflakeConnectionProvider,
    get_snowflake_connection,
)
from gds_vault import (
    AppRoleAuth,
    RetryPolicy,
    VaultAuthError,
    VaultClient,
    VaultConnectionError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretNotFoundError,
    VaultTimeoutError,
    VaultUnavailableError,
)
from gds_vault.testing import OpenBaoServer
from tests.fakevault import DATA, HTML_502, FakeVault, approle_logins
from tests.fakevault import SECRET as FAKE_SECRET
from tests.fakevault import SECRET_PATH as FAKE_PATH
from tests.reliability.conftest import (
    SCALE,
    SECRET,
    SECRET_PATH,
    SLACK,
    bounded,
    default_shape,
    fast_policy,
    write_row,
)
from tests.reliability.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(60)


def limit_for(policy: RetryPolicy, timeout: float) -> float:
    """No call may outlast the policy's deadline plus one per-call timeout (plus slack)."""
    return policy.deadline + timeout + SLACK


def check_and_row(
    fault: str, injected: str, outcome, policy: RetryPolicy, timeout: float, attempts: int
) -> None:
    """Assert the common outcome (within the deadline, attempts capped) and record the row."""
    assert attempts <= policy.attempts
    assert outcome.seconds <= limit_for(policy, timeout)
    write_row(
        "faults",
        fault=fault,
        injected=injected,
        saw=outcome.saw,
        attempts=attempts,
        seconds=round(outcome.seconds, 2),
        deadline=policy.deadline,
    )


# -- network faults through the proxy -----------------------------------------------------------


def test_reset_mid_response_once(rel, sleeps):
    """One response cut half-way by a TCP reset: one retry and the right data."""
    policy = fast_policy(sleeps)
    client = rel.client(retry=policy)
    client.login()
    rel.proxy.set("reset", times=1)
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert outcome.error is None
    assert outcome.value == SECRET
    assert len(sleeps.waits) == 1
    check_and_row(
        "Connection reset mid-response",
        "next response cut half-way, then RST",
        outcome,
        policy,
        0.5,
        len(sleeps.waits) + 1,
    )


def test_reset_mid_response_always(rel, sleeps):
    """Every response cut: a VaultConnectionError after the policy's attempts, then recovery."""
    policy = fast_policy(sleeps)
    client = rel.client(retry=policy)
    client.login()
    rel.proxy.set("reset")
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert isinstance(outcome.error, VaultConnectionError)
    assert len(sleeps.waits) + 1 == policy.attempts
    check_and_row(
        "Resets on every response",
        "every response cut half-way, then RST",
        outcome,
        policy,
        0.5,
        len(sleeps.waits) + 1,
    )
    rel.proxy.set("pass")
    assert client.get_secret(SECRET_PATH) == SECRET


def test_delay_past_the_timeout_once(rel, sleeps):
    """One answer 1.5 s late with a 0.5 s timeout: a timeout, one retry, the right data."""
    policy = fast_policy(sleeps)
    client = rel.client(retry=policy)
    client.login()
    rel.proxy.set("delay", seconds=1.5, times=1)
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert outcome.error is None
    assert outcome.value == SECRET
    assert len(sleeps.waits) == 1
    check_and_row(
        "Answer later than the timeout",
        "next response held 1.5 s (timeout 0.5 s)",
        outcome,
        policy,
        0.5,
        len(sleeps.waits) + 1,
    )


def test_answer_trickled_byte_by_byte(rel, sleeps):
    """An answer trickled a byte every 20 ms (each read within the timeout, the whole far
    beyond it): VaultTimeoutError per attempt, the call bounded by the deadline, then recovery."""
    policy = fast_policy(sleeps, attempts=3)
    client = rel.client(retry=policy)
    client.login()
    rel.proxy.set("trickle", seconds=0.02)
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert isinstance(outcome.error, VaultTimeoutError)
    assert len(sleeps.waits) + 1 == policy.attempts
    check_and_row(
        "Answer trickled byte by byte",
        "one byte every 20 ms (timeout 0.5 s)",
        outcome,
        policy,
        0.5,
        len(sleeps.waits) + 1,
    )
    rel.proxy.set("pass")
    assert client.get_secret(SECRET_PATH) == SECRET


# -- crafted answers (pytest-httpserver) ------------------------------------------------------


def test_429_with_retry_after(fake, sleeps):
    """429 with Retry-After: 1: the client waits the second asked for, then reads."""
    fake.fail_once(429, json.dumps({"errors": ["rate limited"]}), headers={"Retry-After": "1"})
    fake.serve_secret()
    policy = fast_policy(sleeps)
    outcome = bounded(
        lambda: fake.client(retry=policy, timeout=0.5).get_secret(FAKE_PATH), limit_for(policy, 0.5)
    )
    assert outcome.error is None
    assert outcome.value == FAKE_SECRET
    assert sleeps.waits[0] >= 1.0
    check_and_row(
        "429 with Retry-After",
        "429, Retry-After: 1, then 200",
        outcome,
        policy,
        0.5,
        fake.count(DATA),
    )


def test_intermittent_500s(fake, sleeps):
    """30% of reads answered 500 (seeded): 40 reads all return the right data, retries capped."""
    chance = random.Random(30)  # noqa: S311 - a fixed pattern of failures, not security

    def flaky(request: Request) -> Response:
        if chance.random() < 0.3:
            return Response(
                '{"errors":["internal error"]}', status=500, content_type="application/json"
            )
        return Response(
            json.dumps({"data": {"data": FAKE_SECRET, "metadata": {"version": 1}}}),
            content_type="application/json",
        )

    fake.http.expect_request(DATA).respond_with_handler(flaky)
    policy = fast_policy(sleeps, attempts=6)
    client = fake.client(retry=policy, timeout=0.5)

    def forty_reads() -> list[dict]:
        return [client.get_secret(FAKE_PATH) for _ in range(40)]

    outcome = bounded(forty_reads, 40 * limit_for(policy, 0.5))
    assert outcome.error is None
    assert outcome.value == [FAKE_SECRET] * 40
    failed = fake.count(DATA) - 40
    assert 0 < failed == len(sleeps.waits)
    write_row(
        "faults",
        fault="Intermittent 500s (30%)",
        injected="500 on 30% of 40 reads (seeded)",
        saw=f"success, 40/40 reads right, {failed} retries",
        attempts=fake.count(DATA),
        seconds=round(outcome.seconds, 2),
        deadline=f"{policy.deadline} per read",
    )


def test_412_then_success(fake, sleeps):
    """412 (not yet replicated) is retried and the read succeeds."""
    fake.fail_once(412, json.dumps({"errors": ["required index state not present"]}))
    fake.serve_secret()
    policy = fast_policy(sleeps)
    outcome = bounded(
        lambda: fake.client(retry=policy, timeout=0.5).get_secret(FAKE_PATH), limit_for(policy, 0.5)
    )
    assert outcome.error is None
    assert outcome.value == FAKE_SECRET
    check_and_row(
        "412 (eventual consistency)", "412 once, then 200", outcome, policy, 0.5, fake.count(DATA)
    )


def test_html_502_from_a_proxy(fake, sleeps):
    """An HTML 502 page on every read: VaultUnavailableError blaming the proxy, no HTML in it."""
    fake.fail_always(502, HTML_502, content_type="text/html")
    policy = fast_policy(sleeps)
    outcome = bounded(
        lambda: fake.client(retry=policy, timeout=0.5).get_secret(FAKE_PATH), limit_for(policy, 0.5)
    )
    assert isinstance(outcome.error, VaultUnavailableError)
    assert "proxy" in str(outcome.error)
    assert "<" not in str(outcome.error)
    assert fake.count(DATA) == policy.attempts
    check_and_row(
        "HTML 502 from a proxy",
        "nginx 502 page (text/html) on every read",
        outcome,
        policy,
        0.5,
        fake.count(DATA),
    )


def test_malformed_json(fake, sleeps):
    """A 200 with truncated JSON: VaultResponseError at once, never taken as data, not retried."""
    fake.fail_always(200, '{"data": {"data": {"user": "ETL"', content_type="application/json")
    policy = fast_policy(sleeps)
    outcome = bounded(
        lambda: fake.client(retry=policy, timeout=0.5).get_secret(FAKE_PATH), limit_for(policy, 0.5)
    )
    assert type(outcome.error) is VaultResponseError
    assert fake.count(DATA) == 1
    check_and_row(
        "Malformed JSON", "200 with a truncated JSON body", outcome, policy, 0.5, fake.count(DATA)
    )


# -- real server states ------------------------------------------------------------------------
# Revoking the client's own token on the server needs the token's value, which no public
# seam gives out (on purpose): these tests read it with client._tokens.current().


def test_token_revoked(rel, sleeps):
    """The token revoked on the server: one new login, one retry, the right data."""
    policy = fast_policy(sleeps)
    client = rel.client(retry=policy, direct=True)
    assert client.get_secret(SECRET_PATH) == SECRET
    rel.server.revoke_token(client._tokens.current())
    mark = rel.server.mark()
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert outcome.error is None
    assert outcome.value == SECRET
    assert rel.logins_since(mark) == 1
    reads = len(rel.server.requests_since(mark, "secret/data/reliability/app"))
    assert reads == 2  # the refused read and its one retry
    check_and_row(
        "Token revoked", "auth/token/revoke of the client's token", outcome, policy, 0.5, reads
    )


def test_secret_id_destroyed(rel, sleeps):
    """Token revoked, secret_id destroyed: one refused login, a VaultAuthError naming variables."""
    policy = fast_policy(sleeps)
    name, auth = rel.role()
    client = rel.client(retry=policy, auth=auth, direct=True)
    client.login()
    rel.server.destroy_secret_ids(name)
    rel.server.revoke_token(client._tokens.current())
    mark = rel.server.mark()
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert isinstance(outcome.error, VaultAuthError)
    assert "VAULT_SECRET_ID" in str(outcome.error)
    assert rel.logins_since(mark) == 1
    check_and_row(
        "secret_id destroyed",
        "secret_id destroyed and token revoked",
        outcome,
        policy,
        0.5,
        rel.logins_since(mark),
    )


def test_secret_id_expired(rel, sleeps):
    """A secret_id past its TTL: the token keeps working; the next login fails clearly, once."""
    policy = fast_policy(sleeps)
    _, auth = rel.role(secret_id_ttl="1s", token_ttl="60s")
    client = rel.client(retry=policy, auth=auth, direct=True)
    client.login()
    time.sleep(1.3)
    assert client.get_secret(SECRET_PATH) == SECRET  # the token is still good
    rel.server.revoke_token(client._tokens.current())
    mark = rel.server.mark()
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    assert isinstance(outcome.error, VaultAuthError)
    assert "expired" in str(outcome.error)
    assert rel.logins_since(mark) == 1
    check_and_row(
        "secret_id expired",
        "secret_id_ttl=1s passed, then the token revoked",
        outcome,
        policy,
        0.5,
        rel.logins_since(mark),
    )


def test_token_at_its_max_ttl(httpserver, sleeps):
    """Renewal refused at the max TTL (Vault answers 500, as OpenBao does): one renewal try,
    then a new login; the 500 is not retried while the token runs out."""
    logins = approle_logins(httpserver, ttl=30, label="maxttl")
    httpserver.expect_request("/v1/auth/token/renew-self", method="POST").respond_with_json(
        {"errors": ["1 error occurred:\n\t* past the max TTL, cannot renew\n\n"]}, status=500
    )
    FakeVault(httpserver).serve_secret()
    now = [0.0]
    policy = fast_policy(sleeps)
    auth = AppRoleAuth("role-id-fake", "secret-id-fake-maxttl")
    with VaultClient(
        httpserver.url_for("").rstrip("/"),
        auth=auth,
        retry=policy,
        cache_ttl=0,
        timeout=0.5,
        clock=lambda: now[0],
    ) as client:
        assert client.get_secret(FAKE_PATH) == FAKE_SECRET
        now[0] = 21.0  # past two thirds of the 30 s TTL: the next call refreshes the token
        outcome = bounded(lambda: client.get_secret(FAKE_PATH), limit_for(policy, 0.5))
    renewals = sum(1 for request, _ in httpserver.log if request.path.endswith("renew-self"))
    assert outcome.error is None
    assert outcome.value == FAKE_SECRET
    assert renewals == 1
    assert len(logins) == 2
    assert sleeps.waits == []
    check_and_row(
        "Token at its max TTL",
        "renew-self answers 500 'past the max TTL'",
        outcome,
        policy,
        0.5,
        renewals + 1,
    )


def test_policy_revoked(rel, sleeps):
    """The role's policy no longer allows the path: VaultPermissionError, no re-login, no retry."""
    policy = fast_policy(sleeps)
    client = rel.client(retry=policy, direct=True)
    assert client.get_secret(SECRET_PATH) == SECRET
    mark = rel.server.mark()
    rel.server.write_policy(
        "rel-reader", 'path "secret/data/elsewhere/*" { capabilities = ["read"] }'
    )
    try:
        outcome = bounded(lambda: client.get_secret(SECRET_PATH), limit_for(policy, 0.5))
    finally:
        from tests.reliability.conftest import RELIABILITY_POLICY

        rel.server.write_policy("rel-reader", RELIABILITY_POLICY)
    assert isinstance(outcome.error, VaultPermissionError)
    assert "'read'" in str(outcome.error)
    assert "\n" not in str(outcome.error)  # one readable line, not Go's multi-error layout
    assert "error occurred" not in str(outcome.error)
    assert rel.logins_since(mark) == 0
    reads = len(rel.server.requests_since(mark, "secret/data/reliability/app"))
    assert reads == 1
    assert sleeps.waits == []
    check_and_row(
        "Policy revoked",
        "the role's policy rewritten without the path",
        outcome,
        policy,
        0.5,
        reads,
    )
    assert client.get_secret(SECRET_PATH) == SECRET  # allowed again once restored


@pytest.fixture(scope="module")
def own_server():
    """A separate OpenBao server for destructive states (sealing, disabling mounts)."""
    with OpenBaoServer() as server:
        server.write_policy(
            "reader",
            'path "secret/data/*" { capabilities = ["read"] }\n'
            'path "rel-kv/*" { capabilities = ["read"] }\n',
        )
        server.kv_put("secret", "app", SECRET)
        yield server


@pytest.fixture
def own_client(own_server):
    made: list[VaultClient] = []

    def make(policy: RetryPolicy) -> VaultClient:
        role_id, secret_id = own_server.approle(
            f"own-{len(made)}-{time.monotonic_ns()}", policies=["reader"]
        )
        client = VaultClient(
            own_server.addr,
            auth=AppRoleAuth(role_id, secret_id),
            retry=policy,
            timeout=0.5,
            cache_ttl=0,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_mount_disabled_then_remounted(own_server, own_client, sleeps):
    """A disabled mount is a not-found error naming it; remounted as KV v1, the new data is read."""
    own_server.enable_kv("rel-kv", version=2)
    own_server.kv_put("rel-kv", "app", {"user": "V2"})
    policy = fast_policy(sleeps)
    client = own_client(policy)
    assert client.get_secret("rel-kv/app") == {"user": "V2"}
    own_server.api("DELETE", "sys/mounts/rel-kv")
    outcome = bounded(lambda: client.get_secret("rel-kv/app"), limit_for(policy, 0.5))
    assert isinstance(outcome.error, VaultSecretNotFoundError)
    assert "Nothing is mounted at rel-kv/" in str(outcome.error)
    assert sleeps.waits == []
    check_and_row(
        "Mount disabled", "sys/mounts/rel-kv deleted under the client", outcome, policy, 0.5, 1
    )
    own_server.enable_kv("rel-kv", version=1)
    own_server.kv_put("rel-kv", "app", {"user": "V1"}, version=1)
    assert client.get_secret("rel-kv/app") == {"user": "V1"}


def test_sealed_then_unsealed(own_server, own_client, sleeps):
    """Sealed with sys/seal and unsealed 1 s later: the read retries through it and succeeds."""
    policy = fast_policy(sleeps, attempts=10, deadline=6.0, max_wait=0.5)
    client = own_client(policy)
    assert client.get_secret("secret/app") == SECRET
    own_server.seal()
    unsealer = threading.Timer(1.0, own_server.unseal)
    unsealer.start()
    outcome = bounded(lambda: client.get_secret("secret/app"), limit_for(policy, 0.5))
    unsealer.join()
    assert outcome.error is None
    assert outcome.value == SECRET
    assert len(sleeps.waits) >= 1
    check_and_row(
        "Sealed, then unsealed",
        "sys/seal, sys/unseal 1 s later",
        outcome,
        policy,
        0.5,
        len(sleeps.waits) + 1,
    )


def test_sealed_for_good(own_server, own_client, sleeps):
    """A server that stays sealed: VaultUnavailableError saying an operator must unseal it."""
    policy = fast_policy(sleeps)
    client = own_client(policy)
    client.login()
    own_server.seal()
    try:
        outcome = bounded(lambda: client.get_secret("secret/app"), limit_for(policy, 0.5))
    finally:
        own_server.unseal()
    assert isinstance(outcome.error, VaultUnavailableError)
    assert "unseal" in str(outcome.error)
    assert len(sleeps.waits) + 1 == policy.attempts
    check_and_row(
        "Sealed for good", "sys/seal, never unsealed", outcome, policy, 0.5, len(sleeps.waits) + 1
    )


# -- Snowflake -------------------------------------------------------------------------------


def snowflake_row(fault: str, injected: str, outcome, policy: RetryPolicy, logins: int) -> None:
    assert outcome.seconds <= policy.deadline + 10 + SLACK  # the double's login timeout is 10 s
    write_row(
        "faults",
        fault=fault,
        injected=injected,
        saw=outcome.saw,
        attempts=logins,
        seconds=round(outcome.seconds, 2),
        deadline=policy.deadline,
    )


def test_snowflake_session_expired(world, sleeps):
    """An expired session: one new Snowflake login, the statement re-run, no Vault read."""
    policy = fast_policy(sleeps)
    user, path = world.user(password="pw-rel-expired")
    conn = get_snowflake_connection(
        path, vault_client=world.client(retry=policy), **world.connect_kwargs()
    )
    cursor = conn.cursor()
    cursor.execute("select 1")
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    outcome = bounded(lambda: cursor.execute("select 2").fetchall(), policy.deadline + 10)
    assert outcome.error is None
    assert outcome.value == [(2,)]
    assert conn.reconnects == 1
    assert world.secret_reads(mark, path) == 0
    snowflake_row(
        "Snowflake session expired",
        "session and master token expired",
        outcome,
        policy,
        world.snowflake.login_count(user) - 1,
    )
    conn.close()


def test_snowflake_password_rotated(world, sleeps):
    """Password rotated in Vault and Snowflake mid-session: Vault read once more, then success."""
    policy = fast_policy(sleeps)
    user, path = world.user(password="pw-rel-old")
    conn = get_snowflake_connection(
        path, vault_client=world.client(retry=policy), **world.connect_kwargs()
    )
    conn.cursor().execute("select 1")
    world.snowflake.set_password(user, "pw-rel-new")
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "password": "pw-rel-new"},
    )
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    outcome = bounded(lambda: conn.cursor().execute("select 3").fetchall(), policy.deadline + 10)
    assert outcome.error is None
    assert outcome.value == [(3,)]
    assert world.secret_reads(mark, path) == 1
    assert world.snowflake.failed_login_count(user) == 1
    snowflake_row(
        "Snowflake password rotated",
        "new password in Vault and Snowflake, session expired",
        outcome,
        policy,
        world.snowflake.login_count(user) - 1 + world.snowflake.failed_login_count(user),
    )
    conn.close()


def test_snowflake_login_refused_for_good(world, sleeps):
    """Credentials refused for good: SnowflakeAuthenticationError after two logins at most."""
    policy = fast_policy(sleeps)
    user, path = world.user(password="pw-rel-refused")
    world.snowflake.set_password(user, "pw-rel-nobody-knows")
    outcome = bounded(
        lambda: get_snowflake_connection(
            path, vault_client=world.client(retry=policy), **world.connect_kwargs()
        ),
        policy.deadline + 10,
    )
    assert isinstance(outcome.error, SnowflakeAuthenticationError)
    assert path in str(outcome.error)
    assert user in str(outcome.error)
    failed = world.snowflake.failed_login_count(user)
    assert 1 <= failed <= 2
    snowflake_row(
        "Snowflake login refused for good",
        "password changed in Snowflake only",
        outcome,
        policy,
        failed,
    )


def test_snowflake_pat_rotated(world, sleeps):
    """PAT rotated in Snowflake and Vault mid-session: refused once, Vault read once more,
    the statement re-run with the new token."""
    policy = fast_policy(sleeps)
    user, path, _ = world.token_user("pat")
    conn = get_snowflake_connection(
        path, vault_client=world.client(retry=policy), **world.connect_kwargs()
    )
    conn.cursor().execute("select 1")
    new = world.snowflake.rotate_pat(user)
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "token": new},
    )
    world.snowflake.expire_sessions(user)
    mark = world.vault.mark()
    outcome = bounded(lambda: conn.cursor().execute("select 3").fetchall(), policy.deadline + 10)
    assert outcome.error is None
    assert outcome.value == [(3,)]
    assert world.secret_reads(mark, path) == 1
    assert world.snowflake.failed_login_count(user) == 1
    snowflake_row(
        "Snowflake PAT rotated",
        "ROTATE in Snowflake, new token in Vault, session expired",
        outcome,
        policy,
        world.snowflake.login_count(user) - 1 + world.snowflake.failed_login_count(user),
    )
    conn.close()


def test_snowflake_pat_revoked(world, sleeps):
    """PAT removed in Snowflake while Vault still holds it: SnowflakeAuthenticationError
    after one refused login and one fresh Vault read, with the PAT's advice."""
    policy = fast_policy(sleeps)
    user, path, _ = world.token_user("pat")
    world.snowflake.revoke_pat(user)
    client = world.client(retry=policy)
    outcome = bounded(
        lambda: get_snowflake_connection(path, vault_client=client, **world.connect_kwargs()),
        policy.deadline + 10,
    )
    assert isinstance(outcome.error, SnowflakeAuthenticationError)
    assert "errno 394400" in str(outcome.error)
    assert "network policy" in str(outcome.error)
    assert client.stats.secret_reads == 2
    failed = world.snowflake.failed_login_count(user)
    assert failed == 1
    snowflake_row(
        "Snowflake PAT revoked",
        "REMOVE in Snowflake only (Vault still holds it)",
        outcome,
        policy,
        failed,
    )


LOGIN_PATH = "/session/v1/login-request"


@pytest.fixture
def snowflake_proxy(world) -> Iterator[FaultProxy]:
    """A fault proxy in front of the Snowflake double (it also counts login requests)."""
    with FaultProxy(("127.0.0.1", world.snowflake.port)) as proxy:
        yield proxy


def through(proxy: FaultProxy, world) -> dict:
    return {**world.connect_kwargs(), "port": proxy.port}


@pytest.mark.parametrize("status", [503, 429])
def test_snowflake_transient_login_failures(world, snowflake_proxy, sleeps, status):
    """Four 503s (or 429s) at Snowflake login: the connector tries twice per connect by
    itself, the policy retries the connect twice, and the connection opens."""
    policy = fast_policy(sleeps)
    _user, path = world.user(password=f"pw-rel-{status}")
    client = world.client(retry=policy)
    client.get_secret(path)
    world.snowflake.fail_next_logins(4, status=status)
    outcome = bounded(
        lambda: get_snowflake_connection(
            path, vault_client=client, **through(snowflake_proxy, world)
        ),
        policy.deadline + 10,
    )
    assert outcome.error is None
    logins = snowflake_proxy.count(LOGIN_PATH)
    assert logins == 5
    assert len(sleeps.waits) == 2
    snowflake_row(
        f"Snowflake login {status} four times",
        f"four HTTP {status} answers to the login",
        outcome,
        policy,
        logins,
    )
    outcome.value.close()


def recording_connect(seen: list[int | None]):
    """snowflake.connector.connect, noting the login_timeout each login was given."""
    import snowflake.connector

    def connect(**kwargs):
        seen.append(kwargs.get("login_timeout"))
        return snowflake.connector.connect(**kwargs)

    return connect


def test_snowflake_unreachable_at_login_then_back(world, snowflake_proxy, sleeps, caplog):
    """Default shape x0.2 (deadline 6 s): Snowflake refuses connections for 1.5 s; the login
    is retried until it is back, the connector's own retries bounded by the time left."""
    caplog.set_level(logging.WARNING, logger="gds_vault.retry")
    policy = default_shape(sleeps, SCALE)
    _user, path = world.user(password="pw-rel-unreachable")
    client = world.client(retry=policy)
    client.get_secret(path)  # Vault's part is cached: this row is about Snowflake alone
    seen: list[int | None] = []
    provider = SnowflakeConnectionProvider(
        path, vault_client=client, connect=recording_connect(seen),
        **through(snowflake_proxy, world),
    )
    snowflake_proxy.set("refuse")
    threading.Timer(1.5, snowflake_proxy.set, ("pass",)).start()
    outcome = bounded(provider.connect, policy.deadline + 10)
    assert outcome.error is None
    assert 1.5 <= outcome.seconds <= 1.5 + policy.max_wait + policy.jitter + SLACK
    assert len(seen) == len(sleeps.waits) + 1 >= 2
    assert all(t is not None and t <= policy.deadline for t in seen)  # the time left, rounded up
    assert seen == sorted(seen, reverse=True)
    warnings = [r.getMessage() for r in caplog.records if r.name == "gds_vault.retry"]
    assert len(warnings) == len(sleeps.waits)
    assert all("snowflake.login" in w for w in warnings)
    snowflake_row(
        "Snowflake unreachable at login",
        "connection refused by Snowflake for 1.5 s (default shape x0.2, deadline 6 s)",
        outcome,
        policy,
        len(seen),
    )
    outcome.value.close()


def test_vault_and_snowflake_share_one_deadline(rel, world, snowflake_proxy, sleeps):
    """Default shape x0.2 (deadline 6 s): Vault refuses for 3 s, then Snowflake refuses for
    good. get_snowflake_connection() reads Vault once it is back and retries the login only
    in what is left of the same 6 s: it fails within one deadline, not two."""
    policy = default_shape(sleeps, SCALE)
    _user, path = world.user(password="pw-rel-shared")
    role_id, secret_id = world.vault.approle("sf-shared-deadline", policies=["snowflake"])
    client = rel.client(auth=AppRoleAuth(role_id, secret_id), retry=policy, timeout=2.0)
    seen: list[int | None] = []
    provider = SnowflakeConnectionProvider(
        path, vault_client=client, connect=recording_connect(seen),
        **through(snowflake_proxy, world),
    )
    rel.proxy.set("refuse")
    snowflake_proxy.set("refuse")
    threading.Timer(3.0, rel.proxy.set, ("pass",)).start()
    outcome = bounded(provider.connect, 2 * policy.deadline + 10)
    assert outcome.error is not None
    # The connector's own error, as it is: 4.x raises OperationalError 250001, 5.x
    # DatabaseError 250001 (08001) for a refused connection; both are DatabaseErrors.
    from snowflake.connector.errors import DatabaseError

    assert isinstance(outcome.error, DatabaseError)
    assert getattr(outcome.error, "errno", None) == 250001
    assert policy.deadline <= outcome.seconds <= policy.deadline + SLACK
    assert seen  # Vault was read, then the login tried...
    assert max(t for t in seen if t is not None) <= policy.deadline - 3.0 + 1  # ...in the rest
    snowflake_row(
        "Vault down 3 s, then Snowflake down",
        "Vault refused for 3 s, Snowflake refused for good (default shape x0.2, deadline 6 s)",
        outcome,
        policy,
        len(seen),
    )
