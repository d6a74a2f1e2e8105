"""Review finding 4, output: text from Vault cannot drive the reader's terminal.

Whoever can write a secret (or make Vault's errors say something) chooses its field names
and values. Before the fix ``gds-vault`` printed them raw, so an escape sequence in a field
name could rewrite the screen, set the window title or hide lines. Now every character
that is not printable is shown escaped (``\\x1b``), in the CLI's output and in the
libraries' messages; only a value asked for bare (``get PATH KEY --reveal``, for scripts)
keeps its line breaks and tabs.
"""

from __future__ import annotations

import json

import pytest

from gds_snowflake import SecretLayout, SnowflakeSecretError
from gds_snowflake._credentials import parse_secret
from gds_vault import VaultInvalidRequestError, VaultSecretNotFoundError
from gds_vault.cli import main
from tests.fakevault import DATA, SECRET_PATH, fake  # noqa: F401 - the fake fixture

pytestmark = pytest.mark.timeout(60)

ESC = "\x1b"
NAME = f"user{ESC}[2J{ESC}]0;owned\x07"
VALUE = f"line one\nline two\ttab {ESC}[31mred{ESC}[0m \x9b2J"
SECRET = {NAME: VALUE, "plain": "ok"}
CONTROL = [ESC, "\x07", "\x9b"]


@pytest.fixture
def cli_env(openbao, monkeypatch):
    openbao.kv_put("secret", "terminal/app", SECRET)
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.create_token(policies=["root"]))


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_no_control(text: str) -> None:
    for char in CONTROL:
        assert char not in text, f"{char!r} printed raw"


@pytest.mark.parametrize(
    "argv",
    [
        ("get", "secret/terminal/app"),
        ("get", "secret/terminal/app", "--reveal"),
        ("get", "secret/terminal/app", "nope"),
    ],
    ids=["get", "get --reveal", "missing key"],
)
def test_cli_text_output_escapes_control_characters(cli_env, capsys, argv):
    """Field names, values, listed names and error messages are shown escaped."""
    _, output = run(capsys, *argv)
    assert_no_control(output)
    if argv[0] == "get":
        assert "user\\x1b[2J" in output  # the name is still recognisable


def test_list_escapes_names(fake, monkeypatch, capsys):  # noqa: F811
    """Names listed under a path (Vault's answer) are shown escaped."""
    from tests.fakevault import TOKEN

    fake.http.expect_request("/v1/sys/internal/ui/mounts/secret/terminal").respond_with_json(
        {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}
    )
    fake.http.expect_request("/v1/secret/metadata/terminal", method="LIST").respond_with_json(
        {"data": {"keys": [f"evil{ESC}[8m", "folder/"]}}
    )
    monkeypatch.setenv("VAULT_ADDR", fake.addr)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    code, output = run(capsys, "list", "secret/terminal")
    assert code == 0
    assert_no_control(output)
    assert "evil\\x1b[8m" in output


def test_bare_value_keeps_line_breaks_only(cli_env, capsys):
    """`get PATH KEY --reveal` prints the value for scripts: newlines and tabs kept,
    escape sequences escaped."""
    code, output = run(capsys, "get", "secret/terminal/app", NAME, "--reveal")
    assert code == 0
    assert_no_control(output)
    assert "line one\nline two\ttab \\x1b[31mred" in output


def test_json_output_is_exact(cli_env, capsys):
    """--format json keeps every character (JSON escapes them), so scripts get the value."""
    code, output = run(capsys, "get", "secret/terminal/app", "--reveal", "--format", "json")
    assert code == 0
    assert_no_control(output)
    assert json.loads(output) == SECRET


def test_vault_error_text_is_escaped_in_messages(fake):  # noqa: F811
    """Vault's error strings, quoted in the library's messages, are escaped."""
    fake.http.expect_request(DATA).respond_with_json(
        {"errors": [f"bad{ESC}[2J request\x07"]}, status=400
    )
    with pytest.raises(VaultInvalidRequestError) as info:
        fake.client().get_secret(SECRET_PATH)
    assert_no_control(str(info.value))
    assert "bad\\x1b[2J request" in str(info.value)


def test_missing_key_message_escapes_field_names(fake):  # noqa: F811
    """The list of a secret's keys in a not-found message is escaped."""
    fake.http.expect_request(DATA).respond_with_json(
        {"data": {"data": {NAME: "x"}, "metadata": {"version": 1}}}
    )
    with pytest.raises(VaultSecretNotFoundError) as info:
        fake.client().get_secret(SECRET_PATH, key="nope")
    assert_no_control(str(info.value))


def test_snowflake_messages_escape_field_names():
    """The fields a Snowflake secret lacks or holds are named escaped."""
    with pytest.raises(SnowflakeSecretError) as info:
        parse_secret({NAME: "x", "password": "pw-terminal-1"}, "secret/sf", SecretLayout())
    assert_no_control(str(info.value))
    assert "user\\x1b[2J" in str(info.value)
