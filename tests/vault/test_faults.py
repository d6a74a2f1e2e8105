"""Faults a real server will not give on demand, from pytest-httpserver posing as Vault.

The fake (``tests/fakevault.py``, shared with tests/reliability) answers the three
requests a first ``get_secret`` makes with a token: the login's
``auth/token/lookup-self``, the mount detection ``sys/internal/ui/mounts/<path>``, then
the KV v2 read ``secret/data/<path>``; each test breaks the one it is about. The
policy's recording ``sleep`` keeps every retry instant and countable. The last tests
revoke a token on the real OpenBao server.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from werkzeug.wrappers import Request, Response

from gds_vault import (
    AppRoleAuth,
    RetryPolicy,
    TokenAuth,
    VaultAuthError,
    VaultClient,
    VaultConnectionError,
    VaultInvalidRequestError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretNotFoundError,
    VaultTimeoutError,
    VaultUnavailableError,
)
from gds_vault.testing import free_port
from tests.fakevault import (
    DATA,
    HTML_502,
    LOOKUP,
    MOUNTS,
    SECRET,
    SECRET_PATH,
    TOKEN,
    approle_logins,
    vault_errors,
)

# -- proxies and malformed answers ---------------------------------------------------------


def test_html_502_from_a_proxy_is_retried_then_unavailable(fake):
    """An HTML 502 page is retried; the final error blames the proxy and holds no HTML."""
    fake.fail_always(502, HTML_502, content_type="text/html")
    client = fake.client(attempts=3)
    with pytest.raises(VaultUnavailableError) as info:
        client.get_secret(SECRET_PATH)
    message = str(info.value)
    assert "proxy" in message
    assert "502" in message
    assert "<" not in message
    assert "nginx" not in message
    assert info.value.status_code == 502
    assert fake.count(DATA) == 3
    assert len(fake.sleeps) == 2


def test_html_502_then_vault_recovers(fake):
    """A proxy's HTML 502 followed by Vault's answer returns the secret."""
    fake.fail_once(502, HTML_502, content_type="text/html")
    fake.serve_secret()
    assert fake.client().get_secret(SECRET_PATH) == SECRET
    assert fake.count(DATA) == 2


def test_malformed_json_on_200_is_a_response_error_not_retried(fake):
    """A 200 whose body is not JSON is a VaultResponseError, raised on the first attempt."""
    fake.fail_always(200, '{"data": {"data": {"user": "ETL"', content_type="application/json")
    client = fake.client(attempts=3)
    with pytest.raises(VaultResponseError) as info:
        client.get_secret(SECRET_PATH)
    assert not isinstance(info.value, VaultUnavailableError)
    assert "VAULT_ADDR" in str(info.value)
    assert fake.count(DATA) == 1
    assert fake.sleeps == []


def test_html_on_200_is_a_response_error(fake):
    """A 200 carrying a web page (VAULT_ADDR at a portal) is a VaultResponseError, not data."""
    fake.fail_always(200, "<html><body>Welcome</body></html>", content_type="text/html")
    with pytest.raises(VaultResponseError, match="text/html") as info:
        fake.client().get_secret(SECRET_PATH)
    assert "Welcome" not in str(info.value)
    assert fake.count(DATA) == 1


# -- Retry-After -------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(fake):
    """429 with Retry-After: 2 waits 2 s (recorded, not slept) and then succeeds."""
    fake.fail_once(429, vault_errors("request rate limited"), headers={"Retry-After": "2"})
    fake.serve_secret()
    assert fake.client(deadline=10.0).get_secret(SECRET_PATH) == SECRET
    assert fake.sleeps == [2.0]
    assert fake.count(DATA) == 2


def test_429_retry_after_http_date_is_honoured(fake):
    """429 with Retry-After as an HTTP date waits until about that time."""

    def rate_limited(request: Request) -> Response:
        when = datetime.now(timezone.utc) + timedelta(seconds=4)
        return Response(vault_errors("request rate limited"), status=429,
                        content_type="application/json",
                        headers={"Retry-After": format_datetime(when, usegmt=True)})

    fake.http.expect_oneshot_request(DATA, method="GET").respond_with_handler(rate_limited)
    fake.serve_secret()
    assert fake.client(deadline=10.0).get_secret(SECRET_PATH) == SECRET
    assert len(fake.sleeps) == 1
    # The date has whole seconds, so the wait is between 3 and 4 s (minus request time).
    assert 2.5 < fake.sleeps[0] <= 4.0


def test_429_retry_after_past_deadline_gives_up_at_once(fake):
    """A Retry-After beyond the deadline raises the rate-limit error without waiting."""
    fake.fail_always(429, vault_errors("request rate limited"), headers={"Retry-After": "120"})
    with pytest.raises(VaultUnavailableError, match="rate-limiting") as info:
        fake.client(deadline=5.0).get_secret(SECRET_PATH)
    assert info.value.status_code == 429
    assert fake.sleeps == []
    assert fake.count(DATA) == 1


# -- retried statuses -------------------------------------------------------------------------


def test_503_sealed_says_unseal_and_is_retried(fake):
    """503 'Vault is sealed' is retried and the final error says an operator must unseal."""
    fake.fail_always(503, vault_errors("Vault is sealed"))
    with pytest.raises(VaultUnavailableError) as info:
        fake.client(attempts=3).get_secret(SECRET_PATH)
    message = str(info.value)
    assert "sealed" in message
    assert "unseal" in message
    assert fake.count(DATA) == 3
    assert len(fake.sleeps) == 2


def test_503_sealed_then_unsealed_succeeds(fake):
    """Reads succeed once Vault is unsealed again between retries."""
    fake.fail_once(503, vault_errors("Vault is sealed"))
    fake.fail_once(503, vault_errors("Vault is sealed"))
    fake.serve_secret()
    assert fake.client(attempts=4).get_secret(SECRET_PATH) == SECRET
    assert fake.count(DATA) == 3
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize("status", [412, 500, 502, 503, 504])
def test_transient_statuses_are_retried_then_succeed(fake, status):
    """412, 500, 502, 503 and 504 with Vault's JSON are retried until the read succeeds."""
    fake.fail_once(status, vault_errors("transient trouble"))
    fake.fail_once(status, vault_errors("transient trouble"))
    fake.serve_secret()
    assert fake.client(attempts=3).get_secret(SECRET_PATH) == SECRET
    assert fake.count(DATA) == 3
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize("status", [412, 500, 502, 504])
def test_transient_statuses_give_up_after_attempts(fake, status):
    """A status that stays transient ends as VaultUnavailableError after `attempts` tries."""
    fake.fail_always(status, vault_errors("still failing"))
    with pytest.raises(VaultUnavailableError) as info:
        fake.client(attempts=4).get_secret(SECRET_PATH)
    assert info.value.status_code == status
    assert fake.count(DATA) == 4
    assert len(fake.sleeps) == 3


# -- never retried ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, VaultInvalidRequestError),
        (401, VaultAuthError),
        (403, VaultPermissionError),
        (404, VaultSecretNotFoundError),
        (501, VaultUnavailableError),
        (505, VaultUnavailableError),
    ],
)
def test_client_errors_and_501_are_not_retried(fake, status, error):
    """400, 401, 403, 404, 501 and other 5xx than 500/502/503/504 are raised after exactly
    one request, with no wait."""
    fake.fail_always(status, vault_errors("permission denied" if status == 403 else "no"))
    with pytest.raises(error) as info:
        fake.client(attempts=4).get_secret(SECRET_PATH)
    assert info.value.status_code == status
    assert fake.count(DATA) == 1
    assert fake.sleeps == []


def test_403_policy_denial_with_live_token_does_not_log_in_again(fake):
    """A 403 while the token is still valid is a policy denial: no re-login, no retry."""
    fake.fail_always(403, vault_errors("permission denied"))
    client = fake.client()
    with pytest.raises(VaultPermissionError, match="'read'"):
        client.get_secret(SECRET_PATH)
    # One lookup at login, one to check whether the token itself was refused.
    assert fake.count(LOOKUP) == 2
    assert fake.count(DATA) == 1


def test_403_with_dead_token_relogs_in_once_and_retries_once(httpserver):
    """A 403 from a dead token causes exactly one new login and one retry, never a loop."""
    logins = approle_logins(httpserver)
    httpserver.expect_request(MOUNTS).respond_with_json(
        {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}
    )
    # Vault says every token is dead: the data read and the lookup both answer 403.
    httpserver.expect_request(LOOKUP).respond_with_json(
        {"errors": ["permission denied"]}, status=403
    )
    httpserver.expect_request(DATA).respond_with_json({"errors": ["permission denied"]}, status=403)
    recorded: list[float] = []
    retry = RetryPolicy(attempts=3, initial_wait=0.01, jitter=0.0, sleep=recorded.append)
    auth = AppRoleAuth("role-id-fake", "secret-id-fake")
    with VaultClient(httpserver.url_for("").rstrip("/"), auth=auth, retry=retry) as client, \
            pytest.raises(VaultPermissionError):
        client.get_secret(SECRET_PATH)
    assert len(logins) == 2
    assert sum(1 for request, _ in httpserver.log if request.path == DATA) == 2
    assert recorded == []


# -- timeouts and refused connections ------------------------------------------------------


def test_slow_answer_past_timeout_is_a_timeout_error(fake):
    """An answer slower than the client timeout is a retried VaultTimeoutError naming the knob."""
    started: list[float] = []

    def slow(request: Request) -> Response:
        started.append(time.monotonic())
        time.sleep(0.3)
        return Response('{"data": {"data": {}}}', content_type="application/json")

    fake.http.expect_request(DATA).respond_with_handler(slow)
    client = fake.client(attempts=2, timeout=0.2)
    with pytest.raises(VaultTimeoutError) as info:
        client.get_secret(SECRET_PATH)
    assert "VAULT_CLIENT_TIMEOUT" in str(info.value)
    assert "0.2 s" in str(info.value)
    assert len(started) == 2
    assert len(fake.sleeps) == 1


def test_connection_refused_names_the_address_and_is_retried():
    """Connection refused is retried, then a VaultConnectionError naming the address."""
    port = free_port()  # nothing listens here
    recorded: list[float] = []
    retry = RetryPolicy(attempts=3, initial_wait=0.01, jitter=0.0, sleep=recorded.append)
    with VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth(TOKEN), retry=retry) as client, \
            pytest.raises(VaultConnectionError) as info:
        client.get_secret(SECRET_PATH)
    message = str(info.value)
    assert not isinstance(info.value, VaultTimeoutError)
    assert f"127.0.0.1:{port}" in message
    assert "VAULT_ADDR" in message
    assert TOKEN not in message
    assert len(recorded) == 2  # three attempts in all


def test_retry_warnings_are_logged_per_attempt(fake, caplog):
    """Each retried fault logs one WARNING with the operation and the cause."""
    caplog.set_level("WARNING", logger="gds_vault")
    fake.fail_once(502, vault_errors("upstream"))
    fake.serve_secret()
    fake.client().get_secret(SECRET_PATH)
    warnings = [r.getMessage() for r in caplog.records if r.name == "gds_vault.retry"]
    assert len(warnings) == 1
    assert re.search(r"vault\.read .*attempt 1 of 3.*VaultUnavailableError", warnings[0])
    assert TOKEN not in caplog.text


# -- a revoked token on the real server ------------------------------------------------------


def test_revoked_token_causes_one_login_and_the_read_succeeds(vault, make_client):
    """Once the server revokes the client's token, the next read logs in once and succeeds."""
    client = make_client(vault.role())
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    old_token = client._tokens.current()
    vault.server.revoke_token(old_token)
    client.clear_cache()
    mark = vault.server.mark()
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert len(vault.server.requests_since(mark, "auth/approle/login")) == 1
    assert client._tokens.current() != old_token
    assert client.stats.logins == 2


def test_revoked_token_twice_logs_in_once_each_time(vault, make_client):
    """Each revocation costs exactly one new login; reads in between cost none."""
    client = make_client(vault.role(), cache_ttl=0)
    mark = vault.server.mark()
    for _ in range(2):
        client.get_secret("secret/snowflake/etl")
        vault.server.revoke_token(client._tokens.current())
        client.get_secret("secret/snowflake/etl")
        client.get_secret("secret/snowflake/etl")
    assert len(vault.server.requests_since(mark, "auth/approle/login")) == 3
