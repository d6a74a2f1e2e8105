"""The ``gds-snowflake`` command: ``doctor``, ``demo`` and ``sandbox``.

``gds-snowflake doctor [SECRET_PATH]`` checks, one line per step, everything a
connection needs: configuration, Vault reachable, Vault login, the secret, the private
key, a token, the local clock, the Snowflake login and a first statement (a step that
does not apply, such as the token step for a key pair, is skipped). A failed step prints
the fix and the steps after it are skipped. ``--format json`` prints a list of
``{step, ok, status, detail, fix}`` objects. No password, key, passphrase, token or
secret_id is ever printed.

``gds-snowflake demo`` runs the whole flow on a local OpenBao server and Snowflake double.
``gds-snowflake sandbox`` starts both and keeps them running until Ctrl-C, printing the
exports, the connect arguments and the doctor command (``--public-key FILE`` registers a
Snowflake user with your own key, to try a secret in your own Vault).

Options may come before or after the command; each command's ``--help`` shows examples.

Exit codes: 0 success (every doctor step passed; warnings allowed), 1 a step failed,
2 usage error or missing dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from gds_vault.cli import (
    add_vault_options,
    client_from_args,
    examples_help,
    printable,
    reorder_options,
)

if TYPE_CHECKING:
    from gds_snowflake.doctor import StepResult

_EXIT_CODES_HELP = """\
exit codes:
  0  every step passed (warnings allowed)
  1  a step failed (its fix is printed; later steps are skipped)
  2  usage error or missing dependency
"""

_SNOWFLAKE_OPTIONS = ("account", "user", "role", "warehouse", "database", "schema")

# Shown by each command's --help, and all of them by `gds-snowflake --help`.
EXAMPLES = {
    "doctor": (
        "gds-snowflake doctor secret/snowflake/etl --warehouse ETL_WH",
        "gds-snowflake doctor --format json                 # path from SNOWFLAKE_VAULT_PATH",
        "gds-snowflake doctor secret/snowflake/etl --host 127.0.0.1 --port 8080 --protocol http",
        "gds-snowflake doctor secret/snowflake/etl -v --ca-cert vault-ca.pem",
    ),
    "demo": ("gds-snowflake demo",),
    "sandbox": (
        "gds-snowflake sandbox                              # runs until Ctrl-C",
        "gds-snowflake sandbox --public-key rsa_key.pub --user ETL",
        "gds-snowflake sandbox --format json",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gds-snowflake",
        description="Snowflake connections with credentials from Vault.",
        epilog=examples_help([line for lines in EXAMPLES.values() for line in lines])
        + "Options may come before or after the command; `gds-snowflake COMMAND --help`\n"
        "lists each command's own.\n\n" + _EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="run the whole flow on a local OpenBao server and Snowflake double",
        description="Start local OpenBao and Snowflake stand-ins, connect as a job would, "
        "expire the session and rotate the key, connect a service user with a programmatic "
        "access token and rotate that, and clean up.",
        epilog=examples_help(EXAMPLES["demo"]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox = commands.add_parser(
        "sandbox",
        help="keep a local OpenBao and Snowflake double running, to try your own code or Vault",
        description="Start a local OpenBao dev server and the Snowflake double, provision a\n"
        "key-pair secret and an AppRole, and print the exports, the connect arguments\n"
        "(host/port/protocol of the double) and the doctor command. --public-key registers\n"
        "a Snowflake user with your own public key, so that a secret in your own Vault can\n"
        "log in. Runs until Ctrl-C, which stops both servers and removes their files.",
        epilog=examples_help(EXAMPLES["sandbox"]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument(
        "--public-key",
        metavar="FILE",
        help="a PEM public key (openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub) to "
        "register with the double",
    )
    sandbox.add_argument(
        "--user",
        metavar="NAME",
        help="the Snowflake user to register with --public-key (default ETL)",
    )
    sandbox.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json: one object, then a line 'ready'",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check every step a connection needs, with the fix for what fails",
        description="Check, one line per step, what get_snowflake_connection() needs:\n"
        "configuration, Vault reachable (TLS, version, sealed), Vault login (method, TTL,\n"
        "policies), the secret (fields; key pair, token or password), the private key (type,\n"
        "bits, encrypted, SHA256 fingerprint for DESC USER), a token (kind, length, expiry\n"
        "when it is a JWT), the local clock, the Snowflake login and\n"
        "`select current_user(), current_role(), current_warehouse()`, checking that the\n"
        "warehouse, database and schema asked for are in effect. A failed step prints its\n"
        "fix; later steps are skipped. Secrets are never printed.",
        epilog=examples_help(EXAMPLES["doctor"]) + _EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument(
        "secret_path",
        metavar="SECRET_PATH",
        nargs="?",
        help="the Vault secret, e.g. secret/snowflake/etl (default: SNOWFLAKE_VAULT_PATH)",
    )
    doctor.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for programs",
    )
    doctor.add_argument(
        "--ascii",
        action="store_true",
        help="ASCII marks + x ! - instead of check marks (automatic when "
        "the output cannot encode them)",
    )
    doctor.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v INFO, -vv DEBUG (never secrets)",
    )
    snowflake = doctor.add_argument_group(
        "Snowflake (as get_snowflake_connection's arguments; override SNOWFLAKE_* and the "
        "secret's fields)"
    )
    for name in _SNOWFLAKE_OPTIONS:
        snowflake.add_argument(f"--{name}", metavar=name.upper(), help=f"the {name} to use")
    snowflake.add_argument(
        "--login-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds the Snowflake login may take (default 30)",
    )
    testing = doctor.add_argument_group(
        "where Snowflake is (for testing against a local double, or through a proxy)"
    )
    testing.add_argument(
        "--host", help="Snowflake host instead of <account>.snowflakecomputing.com"
    )
    testing.add_argument("--port", type=int, help="Snowflake port (default 443)")
    testing.add_argument("--protocol", choices=("https", "http"), help="default https")
    add_vault_options(doctor)
    return parser


def _options_given(args: argparse.Namespace, argv: Sequence[str]) -> list[str]:
    """The long options that were given on the command line (names only)."""
    given = []
    for item in argv:
        if item.startswith("--"):
            name = item[2:].partition("=")[0]
            if name not in ("format", "ascii", "verbose") and f"--{name}" not in given:
                given.append(f"--{name}")
    return given


_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
_ASCII_MARKS = {"ok": "+", "warn": "!", "fail": "x", "skip": "-"}


def _can_encode(stream: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def render_text(
    results: Sequence[StepResult], stream: IO[str], *, ascii: bool | None = None
) -> None:
    """One line per step with a mark and, for failures and warnings, the fix.

    Args:
        results: The doctor's results, in order.
        stream: Where to write.
        ascii: Marks ``+ x ! -`` instead of ``✓ ✗ ! -``, and other non-ASCII text
            replaced; default: when ``stream`` cannot encode the marks.
    """
    if ascii is None:
        ascii = not _can_encode(stream, "".join(_MARKS.values()))
    marks = _ASCII_MARKS if ascii else _MARKS
    width = max(len(r.title) for r in results)
    lines = []
    for r in results:
        # Details quote Vault, Snowflake and the secret: escaped, they cannot drive the
        # reader's terminal.
        lines.append(f"{marks[r.status]} {r.title:<{width}}  {printable(r.detail)}")
        if r.fix and r.status in ("fail", "warn"):
            lines.append(f"  {'':<{width}}  fix: {printable(r.fix)}")
    failed = [r.title for r in results if r.status == "fail"]
    warned = sum(r.status == "warn" for r in results)
    if failed:
        lines.append(f"FAILED at: {', '.join(failed)}; the steps after it were not run.")
    else:
        lines.append("All checks passed" + (f" ({warned} with warnings)." if warned else "."))
    text = "\n".join(lines) + "\n"
    if ascii:
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            text = text.encode(encoding, "replace").decode(encoding)
        except LookupError:
            text = text.encode("ascii", "replace").decode("ascii")
    stream.write(text)
    stream.flush()


def render_json(results: Sequence[StepResult], stream: IO[str]) -> None:
    """The results as a JSON list of ``{step, ok, status, detail, fix}`` objects."""
    stream.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    stream.flush()


def _doctor(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from gds_snowflake.doctor import run_doctor

    if args.verbose:
        from gds_vault import configure_logging

        configure_logging("DEBUG" if args.verbose > 1 else "INFO")
    environ = os.environ
    options = {n: getattr(args, n) for n in _SNOWFLAKE_OPTIONS if getattr(args, n) is not None}
    connect_kwargs: dict[str, object] = {"login_timeout": args.login_timeout}
    for name in ("host", "port", "protocol"):
        if getattr(args, name) is not None:
            connect_kwargs[name] = getattr(args, name)
    results = run_doctor(
        args.secret_path,
        make_client=lambda: client_from_args(args, environ),
        environ=environ,
        snowflake_options=options,
        connect_kwargs=connect_kwargs,
        options_given=_options_given(args, argv),
    )
    if args.format == "json":
        render_json(results, sys.stdout)
    else:
        render_text(results, sys.stdout, ascii=True if args.ascii else None)
    return 1 if any(r.status == "fail" for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gds-snowflake`` with ``argv`` (default: sys.argv[1:]); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(reorder_options(parser, arguments))
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "demo":
        from gds_snowflake.demo import run_demo

        return run_demo()
    if args.command == "sandbox":
        from gds_snowflake.demo import run_sandbox

        return run_sandbox(public_key=args.public_key, user=args.user, fmt=args.format)
    if args.command == "doctor":
        try:
            return _doctor(args, arguments)
        except KeyboardInterrupt:
            print("gds-snowflake: interrupted", file=sys.stderr)
            return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
