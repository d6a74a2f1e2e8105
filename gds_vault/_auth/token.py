"""Token auth: a token given directly, a token file (a Vault Agent sink), or the token the
Vault CLI's ``vault login`` left in ``~/.vault-token``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gds_vault._auth.base import (
    AuthMethod,
    LoginResult,
    checked_credential,
    read_credential_file,
)
from gds_vault._errors import (
    VaultAuthError,
    VaultConfigError,
    VaultInvalidRequestError,
    VaultPermissionError,
)
from gds_vault._logging import register_secret

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["VAULT_CLI_TOKEN_FILE", "TokenAuth", "vault_cli_token_path"]

# In the home directory, as the Vault CLI writes it.
VAULT_CLI_TOKEN_FILE = ".vault-token"  # noqa: S105 - a file name


def vault_cli_token_path(environ: Mapping[str, str] | None = None) -> Path:
    """``~/.vault-token``: where ``vault login`` (and ``bao login``) store the token.

    The home directory is HOME from ``environ`` when it has one, else the process's, as
    the Vault CLI's default token helper finds it.
    """
    home = (environ or {}).get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / VAULT_CLI_TOKEN_FILE


class TokenAuth(AuthMethod):
    """Use an existing token: given directly, or read from a file at every login.

    A file suits a Vault Agent sink: the agent rewrites it and the client re-reads it when
    its cached token is due for replacement or Vault refuses it.

    Args:
        token: The token itself (e.g. from VAULT_TOKEN).
        token_file: A file holding the token (e.g. a Vault Agent sink file).
        source: How diagnostics name where the token came from (never the token), e.g.
            "VAULT_TOKEN". Default: "a token given in code", or the file's path.
    """

    name = "token"

    def __init__(
        self,
        token: str | None = None,
        *,
        token_file: str | os.PathLike[str] | None = None,
        source: str | None = None,
    ):
        if bool(token) == bool(token_file):
            raise VaultConfigError(
                "TokenAuth needs exactly one of token (VAULT_TOKEN) or "
                "token_file (VAULT_TOKEN_FILE)."
            )
        self._token = token.strip() if token else None
        self.token_file = token_file
        self._source = source
        self._file_variable = "VAULT_TOKEN_FILE"
        self._fix = "obtain a new one (e.g. `vault login`) and update " + (
            "the file" if token_file else "VAULT_TOKEN"
        )
        self._passed_over = ""
        self._choose = ""
        if self._token:
            checked_credential(self._token, f"The Vault token from {self.source}")
        register_secret(self._token)

    def passed_over(self, others: tuple[tuple[str, str], ...], token_variable: str) -> None:
        """Note the other methods' variables that were set but lost to this token (the
        environment chooser calls it), so that diagnostics and a refusal say so.

        Args:
            others: (variable, method) pairs, e.g. ("VAULT_ROLE_ID", "approle").
            token_variable: The variable the token came from, e.g. "VAULT_TOKEN".
        """
        if not others:
            return
        names = " and ".join(variable for variable, _ in others)
        verb = "is" if len(others) == 1 else "are"
        self._passed_over = (
            f"{names} {verb} set too but not used: a token wins when VAULT_AUTH_METHOD is unset"
        )
        self._choose = (
            f"To log in with {others[0][1]} instead, set VAULT_AUTH_METHOD={others[0][1]} "
            f"(or unset {token_variable})."
        )

    @classmethod
    def vault_cli(cls, environ: Mapping[str, str] | None = None) -> TokenAuth:
        """The token ``vault login`` stored in ``~/.vault-token``, re-read at every login.

        A ``vault login`` in another terminal therefore takes effect at the client's next
        login (when its token is due for replacement, or refused) without a restart.
        """
        path = vault_cli_token_path(environ)
        auth = cls(token_file=path, source=f"{path} (the Vault CLI's token from `vault login`)")
        auth._file_variable = "the Vault CLI's token file (run `vault login`)"
        auth._fix = "run `vault login` again"
        return auth

    def cache_identity(self) -> str | None:
        """None: a given token needs no login, and keying a cache by it would derive the
        key from a secret (its accessor is known only by asking Vault, the request saved)."""
        return None

    def __repr__(self) -> str:
        source = (
            f"token_file={os.fspath(self.token_file)!r}" if self.token_file else "token=<hidden>"
        )
        return f"TokenAuth({source})"

    @property
    def source(self) -> str:
        base = self._base_source()
        return f"{base} ({self._passed_over})" if self._passed_over else base

    def _base_source(self) -> str:
        if self._source:
            return self._source
        if self.token_file is not None:
            return f"the token file {os.fspath(self.token_file)}"
        return "a token given in code"

    def current_token(self) -> str:
        """The token now: the one given, or the token file's content read afresh.

        Raises:
            VaultConfigError: The file cannot be read, is empty, or holds more than one
                line of printable ASCII (never showing what it holds).
        """
        if self._token:
            register_secret(self._token)  # in use again: kept by the redaction filter
            return self._token
        assert self.token_file is not None
        token = read_credential_file(self.token_file, "token", self._file_variable)
        return checked_credential(
            token,
            f"The Vault token in the file {os.fspath(self.token_file)} ({self._file_variable})",
        )

    def login(self, transport: Transport) -> LoginResult:
        token = self.current_token()
        try:
            body = transport.request(
                "GET", "auth/token/lookup-self", token=token, operation="vault.token.lookup"
            )
        except (VaultPermissionError, VaultAuthError, VaultInvalidRequestError):
            chosen = ""
            if self._passed_over:
                chosen = f" {self._passed_over[0].upper()}{self._passed_over[1:]}. {self._choose}"
            raise VaultAuthError(
                f"The token from {self._base_source()} is invalid, expired or revoked; "
                f"{self._fix}.{chosen}",
                status_code=403,
                fix=f"{self._fix[0].upper()}{self._fix[1:]}.{chosen}",
            ) from None
        data = (body or {}).get("data") or {}
        return LoginResult(
            token=token,
            ttl=float(data.get("ttl") or 0),
            renewable=bool(data.get("renewable")),
            token_type=str(data.get("type") or "service"),
            policies=tuple(data.get("policies") or ()),
        )
