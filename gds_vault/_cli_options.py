"""The Vault options both command lines take, and the client they make.

``gds-vault`` and ``gds-snowflake`` (its doctor) take the same options, each overriding a
``VAULT_*`` variable: ``add_vault_options`` declares them, ``client_from_args`` builds a
:class:`~gds_vault.VaultClient` from the environment with the options on top. Both are
re-exported by the public module ``gds_vault.cli``, which ``gds_snowflake`` imports them
from.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gds_vault._client import VaultClient
from gds_vault._env import BAO_ALIASES
from gds_vault._errors import VaultConfigError
from gds_vault.retry import RetryPolicy

__all__ = ["add_vault_options", "client_from_args"]

# Option name -> the variables it replaces (and their BAO_* names), dropped from the
# environment the client reads so that an explicit option wins even over a broken variable.
_REPLACES = {
    "verify": ("VAULT_CACERT", "VAULT_CAPATH", "VAULT_SKIP_VERIFY"),
    "cert": ("VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"),
    "timeout": ("VAULT_CLIENT_TIMEOUT",),
    "retry": ("VAULT_MAX_RETRIES",),
}


def add_vault_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Add the options that override VAULT_* variables (shared with ``gds-snowflake``).

    Args:
        parser: The parser (or subparser) to add them to.
        suppress: Leave unset options out of the namespace entirely, so a subcommand's
            copy of an option does not reset a value given before the subcommand.
    """
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("Vault connection (each option overrides the variable)")
    group.add_argument(
        "--addr",
        metavar="URL",
        default=default,
        help="Vault address, e.g. https://vault.example.com:8200 (VAULT_ADDR)",
    )
    group.add_argument(
        "--namespace",
        metavar="NS",
        default=default,
        help="Vault Enterprise namespace (VAULT_NAMESPACE)",
    )
    group.add_argument(
        "--ca-cert",
        metavar="FILE",
        default=default,
        help="CA certificate file to trust (VAULT_CACERT)",
    )
    group.add_argument(
        "--ca-path",
        metavar="DIR",
        default=default,
        help="directory of CA certificates to trust (VAULT_CAPATH)",
    )
    group.add_argument(
        "--client-cert",
        metavar="FILE",
        default=default,
        help="client certificate for mutual TLS (VAULT_CLIENT_CERT)",
    )
    group.add_argument(
        "--client-key",
        metavar="FILE",
        default=default,
        help="client certificate's key (VAULT_CLIENT_KEY)",
    )
    group.add_argument(
        "--tls-skip-verify",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="do not verify Vault's certificate; insecure (VAULT_SKIP_VERIFY)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=default,
        help="seconds for each HTTP call (VAULT_CLIENT_TIMEOUT; default 10)",
    )
    group.add_argument(
        "--max-retries",
        metavar="N",
        type=int,
        default=default,
        help="cap on the retries of each request (VAULT_MAX_RETRIES; default: none, "
        "retries stop at the 30 s deadline)",
    )
    group.add_argument(
        "--auth-method",
        metavar="METHOD",
        default=default,
        choices=("token", "approle", "jwt", "kubernetes", "userpass", "ldap", "cert", "aws"),
        help="token, approle, jwt, kubernetes, userpass, ldap, cert or aws (VAULT_AUTH_METHOD)",
    )
    group.add_argument(
        "--auth-mount",
        metavar="PATH",
        default=default,
        help="where the auth method is mounted (VAULT_AUTH_MOUNT)",
    )


def client_from_args(
    args: argparse.Namespace, environ: Mapping[str, str], **extra: Any
) -> VaultClient:
    """A VaultClient from the environment with the command-line options on top.

    Raises:
        VaultConfigError: A setting is missing or invalid (named in the message).
    """
    env = dict(environ)
    overrides: dict[str, Any] = dict(extra)

    def given(name: str) -> Any:
        return getattr(args, name, None)

    if given("addr") is not None:
        overrides["addr"] = args.addr
    if given("namespace") is not None:
        overrides["namespace"] = args.namespace or None
    trust = [name for name in ("ca_cert", "ca_path", "tls_skip_verify") if given(name)]
    if len(trust) > 1:
        raise VaultConfigError("Give only one of --ca-cert, --ca-path and --tls-skip-verify.")
    if trust:
        overrides["verify"] = False if trust[0] == "tls_skip_verify" else given(trust[0])
    if given("client_cert") or given("client_key"):
        cert = given("client_cert") or _variable(env, "VAULT_CLIENT_CERT")
        key = given("client_key") or _variable(env, "VAULT_CLIENT_KEY")
        if not cert:
            raise VaultConfigError("--client-key needs --client-cert (or VAULT_CLIENT_CERT).")
        overrides["cert"] = (cert, key) if key else cert
    if given("timeout") is not None:
        overrides["timeout"] = args.timeout
    if given("max_retries") is not None:
        if args.max_retries < 0:
            raise VaultConfigError(f"--max-retries must be 0 or more, not {args.max_retries}.")
        overrides["retry"] = replace(RetryPolicy(), attempts=args.max_retries + 1)
    if given("auth_method") is not None:
        env["VAULT_AUTH_METHOD"] = args.auth_method
    if given("auth_mount") is not None:
        env["VAULT_AUTH_MOUNT"] = args.auth_mount
    for setting, variables in _REPLACES.items():
        if setting in overrides:
            for variable in variables:
                env.pop(variable, None)
                env.pop(BAO_ALIASES.get(variable, variable), None)
    return VaultClient.from_env(env, **overrides)


def _variable(env: Mapping[str, str], name: str) -> str:
    """A VAULT_* variable, or its OpenBao BAO_* name when it is absent."""
    return env.get(name, "").strip() or env.get(BAO_ALIASES.get(name, name), "").strip()
