"""README's two set-up commands, and CI running exactly the test one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands():
    """README's set-up section holds two one-line commands: the demo and the tests."""
    commands = _commands()
    assert len(commands) == 2
    assert "gds-snowflake demo" in commands[0]
    assert "pytest" in commands[1]


def test_setup_commands_make_and_activate_a_virtual_environment_first():
    """Each set-up command creates and activates .venv before pip runs (Debian and Ubuntu
    refuse a system-wide pip install), and ends with its job."""
    for command in _commands():
        steps = [step.strip() for step in command.split("&&")]
        assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"], command
        assert steps[2].startswith("python3 -m pip install -e ")
    assert _commands()[0].endswith("gds-snowflake demo")
    assert _commands()[1].endswith("python3 -m pytest")


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the README's test command verbatim (its first pass, on connector 5.x)."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = _commands()[1]
    assert test_command in ci.splitlines()  # a line of its own, not part of another
