"""Both commands take options before or after the command, and every command's --help
shows examples that parse (so they cannot drift from the options)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex

import pytest

from gds_snowflake import cli as snowflake_cli
from gds_vault import cli as vault_cli
from gds_vault.cli import reorder_options

pytestmark = pytest.mark.timeout(60)


# -- gds-vault, against the real dev server ------------------------------------------------


@pytest.fixture
def token_env(openbao, monkeypatch):
    openbao.kv_put("secret", "cliargs/app", {"user": "ARGS"})
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "secret/cliargs/app", "-v"],  # the example: was a usage error
        ["-v", "get", "secret/cliargs/app"],
        ["get", "-v", "secret/cliargs/app"],
        ["--format", "json", "-v", "get", "secret/cliargs/app"],  # was a usage error too
        ["--timeout", "5", "get", "secret/cliargs/app", "--format", "json", "-v"],
    ],
    ids=" ".join,
)
def test_gds_vault_options_anywhere(token_env, capsys, restore_package_loggers, argv):
    """-v, --format and the Vault options work before the command, after it, or between
    its arguments; -v turns on INFO logging wherever it is."""
    assert vault_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "user" in out
    assert logging.getLogger("gds_vault").level == logging.INFO


def test_gds_vault_verbosity_adds_up_on_both_sides(token_env, capsys, restore_package_loggers):
    """`-v get PATH -v` is -vv (DEBUG), as if both were on one side."""
    assert vault_cli.main(["-v", "get", "secret/cliargs/app", "-v"]) == 0
    assert logging.getLogger("gds_vault").level == logging.DEBUG


def test_an_option_value_that_is_a_command_name_is_a_value():
    """`--addr get get PATH`: the first `get` is --addr's value, the second the command."""
    parser = vault_cli.build_parser()
    args = parser.parse_args(reorder_options(parser, ["--addr", "get", "get", "secret/x"]))
    assert (args.addr, args.command, args.path) == ("get", "get", "secret/x")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-h"], ["-h"]),  # no command: left to the main parser
        (["--", "get"], ["--", "get"]),
        (["--unknown", "get", "x"], ["--unknown", "get", "x"]),  # argparse reports it
        (["--addr=http://v:8200", "list", "x"], ["list", "--addr=http://v:8200", "x"]),
        (["-vv", "--ver", "login"], ["-vv", "--ver", "login"]),  # --ver: ambiguous
        (["--verb", "login"], ["login", "--verb"]),  # an unambiguous prefix
    ],
)
def test_reorder_moves_only_what_it_can_tell_apart(argv, expected):
    """Options move after the command only when each option and its value are known."""
    assert reorder_options(vault_cli.build_parser(), argv) == expected


def test_unknown_option_is_still_a_usage_error(capsys):
    """An option no command knows is exit 2, wherever it is."""
    assert vault_cli.main(["get", "secret/x", "--bogus"]) == 2
    assert vault_cli.main(["--bogus", "get", "secret/x"]) == 2


# -- gds-snowflake -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [["--format", "json"], ["--addr", "http://127.0.0.1:9"], ["-v"], ["--warehouse", "WH"]],
    ids=" ".join,
)
def test_gds_snowflake_doctor_options_before_the_command(before):
    """Doctor options (its own and the Vault ones) parse before `doctor` as after it."""
    parser = snowflake_cli.build_parser()
    ahead = parser.parse_args(reorder_options(parser, [*before, "doctor", "secret/x"]))
    behind = parser.parse_args(reorder_options(parser, ["doctor", "secret/x", *before]))
    assert vars(ahead) == vars(behind)
    assert ahead.command == "doctor" and ahead.secret_path == "secret/x"


def test_gds_snowflake_doctor_runs_with_options_before(monkeypatch, capsys):
    """`gds-snowflake --format json --addr URL doctor PATH` runs and prints JSON."""
    monkeypatch.setenv("VAULT_TOKEN", "hvs.cli-arguments-unused-token")
    code = snowflake_cli.main(
        ["--format", "json", "--addr", f"http://127.0.0.1:{_closed_port()}", "doctor", "secret/x"]
    )
    assert code == 1
    steps = json.loads(capsys.readouterr().out)
    assert steps[1]["step"] == "vault" and steps[1]["status"] == "fail"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- --help examples ----------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize(
    ("module", "program"), [(vault_cli, "gds-vault"), (snowflake_cli, "gds-snowflake")]
)
def test_every_command_help_has_examples_that_parse(module, program, capsys):
    """Each command's --help has an examples block; each example parses (options on
    either side) as that command, and `PROGRAM --help` lists them all."""
    parser = module.build_parser()
    commands = _commands(parser)
    assert set(commands) == set(module.EXAMPLES)
    for name in commands:
        assert module.main([name, "--help"]) == 0
        text = capsys.readouterr().out
        examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert examples, name
        for line in examples:
            words = shlex.split(line, comments=True)
            assert words[0] == program
            args = parser.parse_args(reorder_options(parser, words[1:]))
            assert args.command == name, line
    assert module.main(["--help"]) == 0
    overview = capsys.readouterr().out
    for lines in module.EXAMPLES.values():
        for line in lines:
            assert line in overview
    assert "Options may come before or after the command" in overview
