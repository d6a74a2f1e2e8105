"""Review finding 1: a token or namespace that cannot be an HTTP header value.

A two-line token file or a bad paste puts a line break into the token; requests then
refuses the header with ``InvalidHeader``, whose message quotes the value. Before the fix
that was taken for a connection error: retried until the deadline, the token verbatim in
``VaultConnectionError``, on the CLI's stderr and in every retry WARNING. Now such a
token, secret_id or namespace is a ``VaultConfigError`` naming where it came from, never
the value, and nothing is retried.
"""

from __future__ import annotations

import logging

import pytest

from gds_vault import (
    AppRoleAuth,
    RetryPolicy,
    TokenAuth,
    VaultClient,
    VaultConfigError,
    VaultConnectionError,
)
from gds_vault._transport import Transport
from gds_vault.retry import _describe
from tests.reliability.hygiene import register

pytestmark = pytest.mark.timeout(60)

HALF_A = "hvs.first-half-of-a-token-0a1b2c"
HALF_B = "hvs.second-half-of-a-token-3d4e5f"
BAD_VALUES = {
    "line feed": f"{HALF_A}\n{HALF_B}",
    "carriage return and line feed": f"{HALF_A}\r\n{HALF_B}",
    "NUL": f"{HALF_A}\x00{HALF_B}",
    "escape sequence": f"{HALF_A}\x1b[2J{HALF_B}",
    "non-ASCII": f"{HALF_A}\u2019{HALF_B}",
}
register(HALF_A, HALF_B, *BAD_VALUES.values())


def recording_policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(initial_wait=0.01, max_wait=0.01, jitter=0.0, deadline=5.0, sleep=sleeps.append)


def assert_not_echoed(text: str) -> None:
    assert HALF_A not in text
    assert HALF_B not in text


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_token_that_is_not_printable_ascii_is_a_config_error(value):
    """TokenAuth refuses a token holding a line break, control or non-ASCII character,
    naming where it came from and never the value."""
    with pytest.raises(VaultConfigError, match="VAULT_TOKEN") as info:
        TokenAuth(value, source="VAULT_TOKEN")
    assert_not_echoed(str(info.value))


def test_two_line_token_file_fails_once_without_echo(openbao, tmp_path, caplog):
    """A token file of two lines is one VaultConfigError naming the file: no retry, no
    WARNING, the token in no message or log record."""
    token_file = tmp_path / "token"
    token_file.write_text(f"{HALF_A}\n{HALF_B}\n")
    sleeps: list[float] = []
    caplog.set_level(logging.DEBUG)
    with (
        VaultClient(
            openbao.addr, auth=TokenAuth(token_file=token_file), retry=recording_policy(sleeps)
        ) as client,
        pytest.raises(VaultConfigError, match="one line") as info,
    ):
        client.get_secret("secret/anything")
    assert str(token_file) in str(info.value)
    assert_not_echoed(str(info.value))
    assert sleeps == []  # not retried
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for record in caplog.records:
        assert_not_echoed(record.getMessage())


def test_namespace_with_a_line_break_is_a_config_error(openbao):
    """VAULT_NAMESPACE with CR/LF is refused when the client is built, without echoing it."""
    namespace = "team-a\r\nX-Injected: header-smuggled-by-a-paste"
    with pytest.raises(VaultConfigError, match="VAULT_NAMESPACE") as info:
        VaultClient.from_env(
            {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": "hvs.x", "VAULT_NAMESPACE": namespace}
        )
    assert "team-a" not in str(info.value)
    assert "header-smuggled" not in str(info.value)


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_secret_id_that_is_not_printable_ascii_is_a_config_error(value):
    """AppRoleAuth refuses such a secret_id (given), naming VAULT_SECRET_ID only."""
    with pytest.raises(VaultConfigError, match="VAULT_SECRET_ID") as info:
        AppRoleAuth("role-id", value)
    assert_not_echoed(str(info.value))


def test_two_line_secret_id_file_is_a_config_error_at_login(openbao, tmp_path):
    """A secret_id file of two lines is refused at login, naming the file, not retried."""
    secret_id_file = tmp_path / "secret-id"
    secret_id_file.write_text(f"{HALF_A}\n{HALF_B}\n")
    sleeps: list[float] = []
    auth = AppRoleAuth("role-id", secret_id_file=secret_id_file)
    with (
        VaultClient(openbao.addr, auth=auth, retry=recording_policy(sleeps)) as client,
        pytest.raises(VaultConfigError, match="VAULT_SECRET_ID_FILE") as info,
    ):
        client.login()
    assert_not_echoed(str(info.value))
    assert sleeps == []


def test_cli_stderr_shows_no_token(openbao, monkeypatch, capsys, restore_package_loggers):
    """`gds-vault get` with a broken VAULT_TOKEN exits 2 with a message naming the
    variable; neither stream holds the token."""
    from gds_vault.cli import EXIT_USAGE, main

    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", f"{HALF_A}\r\n{HALF_B}")
    assert main(["-vv", "get", "secret/anything"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "VAULT_TOKEN" in captured.err
    assert_not_echoed(captured.out + captured.err)


def test_transport_never_sends_or_quotes_an_invalid_header(openbao, caplog):
    """Below the auth checks, a header value requests refuses is a VaultConfigError at
    once: not a connection error, not retried, and its message quotes no value."""
    sleeps: list[float] = []
    transport = Transport(
        openbao.addr,
        namespace=None,
        verify=True,
        cert=None,
        timeout=5.0,
        retry=recording_policy(sleeps),
    )
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(VaultConfigError) as info:
            transport.request("GET", "auth/token/lookup-self", token=f"{HALF_A}\r\n{HALF_B}")
    finally:
        transport.close()
    assert not isinstance(info.value, VaultConnectionError)
    assert_not_echoed(str(info.value))
    assert sleeps == []
    for record in caplog.records:
        assert_not_echoed(record.getMessage())


def test_retry_log_masks_registered_secrets_for_any_handler(caplog):
    """The retry WARNING and ERROR pass the cause through the redaction, so a handler that
    configure_logging did not install sees no registered secret either."""

    class Flaky(Exception):
        retryable = True

    secret = "hvs.registered-secret-in-a-cause-77aa"
    register(secret)
    caplog.set_level(logging.WARNING, logger="gds_vault.retry")
    policy = RetryPolicy(attempts=2, initial_wait=0, jitter=0, sleep=lambda _: None)
    with pytest.raises(Flaky):
        policy.call("test.flaky", lambda: (_ for _ in ()).throw(Flaky(f"bad {secret}")))
    messages = [r.getMessage() for r in caplog.records if r.name == "gds_vault.retry"]
    assert len(messages) == 2  # one WARNING for the retry, one ERROR on giving up
    assert all("[REDACTED]" in m and secret not in m for m in messages)
    assert secret not in _describe(Flaky(f"bad {secret}"))
