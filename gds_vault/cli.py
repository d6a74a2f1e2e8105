"""The ``gds-vault`` command: read secrets and check a Vault login from a shell.

Usage::

    gds-vault [OPTIONS] get PATH [KEY] [--version N] [--format text|json] [--reveal]
    gds-vault [OPTIONS] list PATH [--format text|json]
    gds-vault [OPTIONS] login [--format text|json]

Configuration comes from the VAULT_* variables, read as ``VaultClient.from_env()`` reads
them; options override them: ``--addr``, ``--namespace``, ``--ca-cert``, ``--ca-path``,
``--client-cert``, ``--client-key``, ``--tls-skip-verify``, ``--timeout``,
``--max-retries``, ``--auth-method``, ``--auth-mount``. Options may come before or after
the command (``gds-vault get PATH -v`` and ``gds-vault -v get PATH`` are the same); each
command's ``--help`` shows examples.

Secret values are printed as ``********`` unless ``--reveal`` is given; ``get PATH KEY
--reveal`` prints the bare value, for scripts. ``login`` prints the auth method, the
token's TTL, whether it is renewable and its policies, and where the credentials came
from (a variable or a file such as ``~/.vault-token``); never the token itself.

Exit codes:
    0  success
    1  Vault error: unreachable, TLS failure, sealed or unavailable, unexpected answer
    2  usage or configuration error: bad option, no VAULT_ADDR, no credentials, bad path
    3  not found: no secret, key or version at the path (or that version was deleted)
    4  permission denied: the token's policies do not allow the request
    5  authentication failed: login refused, token invalid, expired or revoked
  130  interrupted (Ctrl-C)

Errors are printed to stderr as one line (the typed error's message), without traceback.

Text from Vault (field names, values, the names under a path, error strings) is shown
with every character that is not printable escaped (``\x1b``), so that whoever wrote a
secret cannot drive the reader's terminal; a bare value (``get PATH KEY --reveal``) keeps
its line breaks and tabs. ``--format json`` is exact (JSON escapes what it must).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import warnings
from collections.abc import Sequence
from typing import IO, Any

from gds_vault import (
    VaultAuthError,
    VaultClient,
    VaultConfigError,
    VaultError,
    VaultPathError,
    VaultPermissionError,
    VaultSecretNotFoundError,
    configure_logging,
)
from gds_vault._cli_args import reorder_options
from gds_vault._cli_options import add_vault_options, client_from_args
from gds_vault._printable import printable
from gds_vault._status import duration

__all__ = [
    "EXIT_AUTH",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_USAGE",
    "add_vault_options",
    "build_parser",
    "client_from_args",
    "examples_help",
    "exit_code_for",
    "main",
    "printable",
    "reorder_options",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PERMISSION = 4
EXIT_AUTH = 5
EXIT_INTERRUPTED = 130

MASK = "********"
PROG = "gds-vault"

_EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  Vault error (unreachable, TLS, sealed or unavailable, unexpected answer)
  2  usage or configuration error (bad option, no VAULT_ADDR, no credentials, bad path)
  3  not found (no secret, key or version at the path)
  4  permission denied (the token's policies do not allow the request)
  5  authentication failed (login refused, token invalid or expired)
"""

# Shown by --help: each command's own, and all of them on `gds-vault --help`.
EXAMPLES = {
    "get": (
        "gds-vault get secret/snowflake/etl                   # field names, values masked",
        "gds-vault get secret/snowflake/etl user --reveal     # the bare value, for scripts",
        "gds-vault get secret/snowflake/etl --version 3 --format json",
        "gds-vault get secret/snowflake/etl -v --addr https://vault.example.com:8200",
    ),
    "list": (
        "gds-vault list secret/snowflake",
        "gds-vault list secret/snowflake --format json",
    ),
    "login": (
        "gds-vault login                                      # method, source, TTL, policies",
        "gds-vault login --auth-method approle --format json",
        "gds-vault --ca-cert vault-ca.pem login -vv           # options before or after",
    ),
}


def examples_help(examples: Sequence[str], *, title: str = "examples") -> str:
    """An ``examples:`` block for an epilog, one indented command per line."""
    return f"{title}:\n" + "".join(f"  {line}\n" for line in examples) + "\n"


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error (see the module docstring)."""
    if isinstance(exc, VaultConfigError | VaultPathError):
        return EXIT_USAGE
    if isinstance(exc, VaultSecretNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, VaultPermissionError):
        return EXIT_PERMISSION
    if isinstance(exc, VaultAuthError):
        return EXIT_AUTH
    return EXIT_ERROR


def _add_verbose(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log to stderr: -v for INFO, -vv for DEBUG (paths, never secrets)",
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for programs",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gds-vault``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=textwrap.fill(
            "Read secrets from Vault (or OpenBao) and check the login, configured by the "
            "VAULT_* variables. Secret values are masked unless --reveal is given; the token "
            "is never printed."
        ),
        epilog=examples_help([line for lines in EXAMPLES.values() for line in lines])
        + "Options may come before or after the command; `gds-vault COMMAND --help` lists\n"
        "each command's own.\n\n" + _EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_vault_options(parser)
    _add_verbose(parser, default=0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=textwrap.fill(description),
            epilog=examples_help(EXAMPLES[name]) + _EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # Every option is declared here: main() moves those given before the command after
        # it (reorder_options), so this parser reads them all.
        add_vault_options(sub, suppress=True)
        _add_verbose(sub, default=argparse.SUPPRESS)
        return sub

    get = command(
        "get",
        "read a secret (values masked unless --reveal)",
        "Read a KV secret (v1 or v2, found automatically). Field names are shown with their "
        "values masked as ******** unless --reveal is given. With KEY and --reveal, only the "
        "bare value is printed (text format), for use in scripts.",
    )
    get.add_argument("path", metavar="PATH", help="mount and path, e.g. secret/snowflake/etl")
    get.add_argument("key", metavar="KEY", nargs="?", help="print only this field")
    get.add_argument("--version", type=int, metavar="N", help="KV v2 version (default: latest)")
    get.add_argument("--reveal", action="store_true", help="print the values themselves")
    _add_format(get)

    listing = command(
        "list",
        "list the names under a path",
        "List the secrets and folders under a KV path; folders end with '/'.",
    )
    listing.add_argument("path", metavar="PATH", help="mount and folder, e.g. secret/snowflake")
    _add_format(listing)

    login = command(
        "login",
        "log in and show the token's method, TTL, renewability and policies",
        "Log in as the environment says (token, AppRole, JWT, userpass, LDAP, certificate, "
        "AWS, or the Vault CLI's ~/.vault-token) and show where the credentials came from "
        "and what Vault says about the token: method, TTL, renewable, policies. The token "
        "itself is never shown.",
    )
    _add_format(login)
    return parser


def _render(value: Any) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def _cmd_get(client: VaultClient, args: argparse.Namespace, out: IO[str]) -> int:
    if args.key is not None:
        value = client.get_secret(args.path, key=args.key, version=args.version)
        fields = {args.key: value}
    else:
        fields = client.get_secret(args.path, version=args.version)
    shown = fields if args.reveal else {name: MASK for name in fields}
    if args.format == "json":
        print(json.dumps(shown, indent=2, sort_keys=True), file=out)
        return EXIT_OK
    if args.key is not None and args.reveal:
        value = fields[args.key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        print(printable(text, keep="\n\r\t"), file=out)  # for scripts: lines kept
        return EXIT_OK
    if not fields:
        print(f"{PROG}: the secret at {printable(args.path)} has no fields", file=sys.stderr)
        return EXIT_OK
    names = {name: printable(str(name)) for name in shown}
    width = max(len(name) for name in names.values())
    for name, value in shown.items():
        print(f"{names[name]:<{width}}  {_render(value)}", file=out)
    if not args.reveal:
        print(f"{PROG}: values masked; add --reveal to print them", file=sys.stderr)
    return EXIT_OK


def _cmd_list(client: VaultClient, args: argparse.Namespace, out: IO[str]) -> int:
    names = client.list_secrets(args.path)
    if args.format == "json":
        print(json.dumps(names), file=out)
    else:
        for name in names:
            print(printable(name), file=out)
    return EXIT_OK


def token_summary(client: VaultClient) -> dict[str, Any]:
    """Log in and describe the token as a dict (never the token itself or its accessor).

    Raises:
        VaultAuthError: The login was refused.
        VaultError: Vault could not be reached or answered oddly.
    """
    status = client.token_status()
    summary: dict[str, Any] = {
        "addr": client.addr,
        "namespace": client.settings.namespace,
        "method": status.method,
        "mount": status.mount,
        "source": status.source,
    }
    if not status.lookup_allowed:
        # A token without the default policy may not look itself up; the login still worked.
        summary["lookup"] = "denied"
        return summary
    summary.update(
        token_type=status.token_type,
        ttl=status.ttl,
        renewable=status.renewable,
        policies=list(status.policies),
        identity_policies=list(status.identity_policies),
        display_name=status.display_name,
        expire_time=status.expire_time,
        num_uses=status.num_uses,
    )
    return summary


def _cmd_login(client: VaultClient, args: argparse.Namespace, out: IO[str]) -> int:
    summary = token_summary(client)
    if args.format == "json":
        print(json.dumps(summary, indent=2, sort_keys=True), file=out)
        return EXIT_OK
    where = f" (namespace {summary['namespace']})" if summary["namespace"] else ""
    mount = f" at auth/{summary['mount']}" if summary["mount"] else ""
    print(f"Logged in to {summary['addr']}{where} with {summary['method']}{mount}.", file=out)
    if summary["source"]:
        print(f"  credentials from {printable(summary['source'])}", file=out)
    if summary.get("lookup") == "denied":
        print("  (the token may not look itself up, so its TTL and policies are unknown)", file=out)
        return EXIT_OK
    rows = [
        ("token type", summary["token_type"] or "unknown"),
        ("TTL", duration(summary["ttl"]) + (f" ({summary['ttl']} s)" if summary["ttl"] else "")),
        ("renewable", "yes" if summary["renewable"] else "no"),
        ("policies", ", ".join(summary["policies"]) or "none"),
    ]
    if summary["identity_policies"]:
        rows.append(("identity policies", ", ".join(summary["identity_policies"])))
    if summary["expire_time"]:
        rows.append(("expires", str(summary["expire_time"])))
    if summary["num_uses"]:
        rows.append(("uses left", str(summary["num_uses"])))
    if summary["display_name"]:
        rows.append(("display name", str(summary["display_name"])))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {printable(value)}", file=out)  # Vault's words
    return EXIT_OK


_COMMANDS = {"get": _cmd_get, "list": _cmd_list, "login": _cmd_login}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gds-vault`` with ``argv`` (default: sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(reorder_options(parser, arguments))
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.verbose:
        configure_logging("DEBUG" if args.verbose > 1 else "INFO")
    try:
        with _quiet_client(args) as client:
            return _COMMANDS[args.command](client, args, sys.stdout)
    except VaultError as exc:
        print(f"{PROG}: {printable(str(exc))}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _quiet_client(args: argparse.Namespace) -> VaultClient:
    """The client, with its construction warnings (legacy HVAULT_* variables, TLS
    verification off) printed as one line each instead of a Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = client_from_args(args, os.environ, cache_ttl=0)
    for warning in caught:
        print(f"{PROG}: warning: {printable(str(warning.message))}", file=sys.stderr)
    return client


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
