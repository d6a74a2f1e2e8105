"""Options before or after the command, for ``gds-vault`` and ``gds-snowflake``.

argparse gives each subcommand its own parser: an option the main parser does not know
is an error before the command (``gds-vault --format json get X``), and one only the main
parser knows is an error after it (``gds-vault get X -v``). Declaring every option twice
makes the two copies fight (a subcommand's default overwrites a value given before it).
Instead the options given before the command are moved after it, where the command's
parser, which declares them all, reads them in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

__all__ = ["reorder_options"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _value_counts(parsers: Iterable[argparse.ArgumentParser]) -> dict[str, int | None]:
    """Option string -> how many values follow it (None: a variable number)."""
    counts: dict[str, int | None] = {}
    for parser in parsers:
        for action in parser._actions:
            nargs = action.nargs
            count = 1 if nargs is None else nargs if isinstance(nargs, int) else None
            for option in action.option_strings:
                counts[option] = count
    return counts


def _values_after(option: str, counts: dict[str, int | None]) -> int | None:
    """How many of the next options belong to option ``option`` (None: cannot tell)."""
    if option.startswith("--"):
        name = option.partition("=")[0]
        matches = [o for o in counts if o == name] or [
            o for o in counts if o.startswith("--") and o.startswith(name)
        ]
        if len(matches) != 1:
            return None  # unknown or ambiguous: let argparse say so, from where it is
        count = counts[matches[0]]
        return 0 if "=" in option else count
    # A short option, possibly with its value attached (-ofile) or flags combined (-vv).
    count = counts.get(option[:2])
    if count is None:
        return None
    return count if len(option) == 2 else 0


def reorder_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with the options that come before the command moved just after it.

    ``gds-vault -v --addr URL get PATH`` becomes ``gds-vault get -v --addr URL PATH``, which
    the command's parser reads whole. Nothing is moved when no command follows the options
    (``gds-vault --help``), when an option cannot be told apart from its value, or after
    ``--``: argparse then reports the problem itself.

    Args:
        parser: The main parser, whose subcommands declare every option.
        argv: The arguments, without the program name.
    """
    argv = list(argv)
    commands = _subparsers(parser)
    counts = _value_counts([parser, *commands.values()])
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return argv
        if arg in commands:
            return [arg, *argv[:index], *argv[index + 1 :]]
        if not arg.startswith("-") or arg == "-":
            return argv  # a positional before the command: not ours to move
        values = _values_after(arg, counts)
        if values is None:
            return argv
        index += 1 + values
    return argv
