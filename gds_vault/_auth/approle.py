"""AppRole auth: role_id plus secret_id (given, from a file, or response-wrapped)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from gds_vault._auth.base import (
    AuthMethod,
    LoginResult,
    checked_credential,
    checked_mount,
    login,
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

__all__ = ["AppRoleAuth"]


class AppRoleAuth(AuthMethod):
    """Log in with an AppRole: role_id plus secret_id (given, from a file, or wrapped).

    Args:
        role_id: The role's role_id (VAULT_ROLE_ID).
        secret_id: The secret_id (VAULT_SECRET_ID), or a wrapping token for it when
            ``wrapped`` is true.
        secret_id_file: Read the secret_id from this file at every login instead.
        wrapped: The secret_id given is a response-wrapping token; it is unwrapped once
            (wrapping tokens are single-use) and the secret_id kept in memory.
        mount: Where the AppRole method is mounted. Default "approle".
    """

    name = "approle"

    def __init__(
        self,
        role_id: str,
        secret_id: str | None = None,
        *,
        secret_id_file: str | os.PathLike[str] | None = None,
        wrapped: bool = False,
        mount: str = "approle",
    ) -> None:
        if not isinstance(role_id, str) or not role_id.strip():
            raise VaultConfigError("AppRoleAuth needs a role_id; set VAULT_ROLE_ID.")
        if secret_id is not None and secret_id_file is not None:
            raise VaultConfigError(
                "AppRoleAuth takes secret_id or secret_id_file, not both; "
                "set only one of VAULT_SECRET_ID and VAULT_SECRET_ID_FILE."
            )
        if secret_id is not None and not secret_id.strip():
            raise VaultConfigError("The AppRole secret_id is empty; check VAULT_SECRET_ID.")
        if secret_id is not None:
            checked_credential(secret_id.strip(), f"The AppRole {_secret_id_name(wrapped)}")
        self._role_id = role_id.strip()
        self._secret_id = secret_id.strip() if secret_id else None
        self.secret_id_file = secret_id_file
        self.wrapped = wrapped
        self.mount = checked_mount(mount)
        # A wrapping token works once; remember what it unwrapped to, per source value.
        self._unwrapped: tuple[str, str] | None = None
        self._lock = threading.Lock()
        register_secret(self._secret_id)

    def __repr__(self) -> str:
        source = (
            f"secret_id_file={os.fspath(self.secret_id_file)!r}"
            if self.secret_id_file
            else "secret_id=<hidden>"
            if self._secret_id
            else "secret_id=None"
        )
        wrapped = ", wrapped=True" if self.wrapped else ""
        return f"AppRoleAuth(role_id=<hidden>, {source}{wrapped}, mount={self.mount!r})"

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def cache_identity(self) -> str | None:
        """The role_id: every secret_id of a role logs in to the same policies."""
        return f"role_id={self._role_id}"

    @property
    def source(self) -> str:
        if self.secret_id_file is not None:
            return f"a role_id and the secret_id file {os.fspath(self.secret_id_file)}"
        return "a role_id and a " + ("response-wrapped " if self.wrapped else "") + "secret_id"

    def _secret_id_for_login(self, transport: Transport) -> str | None:
        if self.secret_id_file is not None:
            given: str | None = checked_credential(
                read_credential_file(self.secret_id_file, "secret_id", "VAULT_SECRET_ID_FILE"),
                f"The AppRole {_secret_id_name(self.wrapped, file=True)} in the file "
                f"{os.fspath(self.secret_id_file)}",
            )
        else:
            given = self._secret_id
            register_secret(given)  # in use again: kept by the redaction filter
        if not self.wrapped or given is None:
            return given
        with self._lock:
            if self._unwrapped is not None and self._unwrapped[0] == given:
                return self._unwrapped[1]
            secret_id = _unwrap_secret_id(transport, given)
            self._unwrapped = (given, secret_id)
            return secret_id

    def login(self, transport: Transport) -> LoginResult:
        body: dict[str, Any] = {"role_id": self._role_id}
        secret_id = self._secret_id_for_login(transport)
        if secret_id is not None:
            body["secret_id"] = secret_id
        return login(
            transport,
            self.mount,
            body,
            "Check VAULT_ROLE_ID and VAULT_SECRET_ID: the secret_id may have expired, "
            "used up its uses, or been destroyed; ask for a new one.",
        )


def _secret_id_name(wrapped: bool, *, file: bool = False) -> str:
    """How messages name the secret_id setting."""
    variable = "VAULT_SECRET_ID_FILE" if file else "VAULT_SECRET_ID"
    return f"wrapping token ({variable}, wrapped)" if wrapped else f"secret_id ({variable})"


def _unwrap_secret_id(transport: Transport, wrapping_token: str) -> str:
    register_secret(wrapping_token)
    try:
        body = transport.request(
            "POST", "sys/wrapping/unwrap", token=wrapping_token, operation="vault.unwrap"
        )
    except (VaultInvalidRequestError, VaultPermissionError, VaultAuthError) as exc:
        raise VaultAuthError(
            "Could not unwrap the wrapped secret_id: the wrapping token is invalid, expired "
            "or was already used (wrapping tokens work once). Ask for a new wrapped secret_id; "
            "if unwrapping happened elsewhere, investigate: someone else may hold it.",
            status_code=exc.status_code,
        ) from None
    secret_id = ((body or {}).get("data") or {}).get("secret_id")
    if not isinstance(secret_id, str) or not secret_id:
        raise VaultAuthError(
            "The wrapped response held no secret_id; was it made with "
            "`vault write -wrap-ttl=... -f auth/approle/role/<role>/secret-id`?"
        )
    register_secret(secret_id)
    return secret_id
