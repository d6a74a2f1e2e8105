"""What every auth method shares: the result of a login, the base class, and the POST
that most methods make, with Vault's refusals mapped to errors that say what to fix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gds_vault._errors import (
    VaultAuthError,
    VaultClientClosedError,
    VaultConfigError,
    VaultError,
    VaultInvalidRequestError,
    VaultPermissionError,
    VaultSecretNotFoundError,
)
from gds_vault._logging import register_secret
from gds_vault._paths import normalise_path
from gds_vault._printable import NOT_PRINTABLE_ASCII, is_printable_ascii
from gds_vault._secret_holder import SecretHolder

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = [
    "AuthMethod",
    "LoginResult",
    "checked_credential",
    "checked_mount",
    "login",
    "read_credential_file",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult(SecretHolder):
    """A token and what Vault said about it. Not picklable (see ``_secret_holder``).

    ``ttl`` is in seconds; 0 means the token never expires (root and some periodic tokens).
    """

    token: str = field(repr=False)
    ttl: float
    renewable: bool
    token_type: str = "service"  # noqa: S105 - a token kind, not a token
    policies: tuple[str, ...] = ()
    accessor: str = field(default="", repr=False)  # names the token for revocation; kept quiet


class AuthMethod(SecretHolder):
    """Base class of the auth methods. Subclasses implement :meth:`login`.

    Auth methods hold credentials, so they refuse to be pickled; ``copy.deepcopy`` gives
    the same object.
    """

    #: Short name for logs and errors, e.g. "approle".
    name = "auth"
    #: Whether the method proves who we are with the client's TLS certificate (cert auth).
    requires_client_cert = False

    def login(self, transport: Transport) -> LoginResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def after_fork(self) -> None:
        """Reset locks in a forked child (most methods hold none)."""

    @property
    def source(self) -> str:
        """Where the credentials come from, for people (a variable or file name, never a
        value); ``gds-vault login`` and ``gds-snowflake doctor`` show it."""
        return f"{self.name} auth"

    def cache_identity(self) -> str | None:
        """Who logs in, as a non-secret string, for the token cache shared by processes.

        The token cache (``GDS_VAULT_TOKEN_CACHE``, ``VaultClient(token_cache=...)``) lets
        the processes of one user share one token. It files each token under the Vault
        address, the namespace, this method's :attr:`name` and ``mount`` attribute, and
        this string. So:

        - Two auth objects whose name, mount and identity are equal must stand for the same
          Vault identity: logging in with either gives a token with the same policies
          (e.g. the AppRole's role_id, the JWT role with the JWT's file, a username).
        - The string must never be, contain or be derived from a secret: no secret_id,
          password, JWT, private key, token, nor a hash of one. It is hashed into a file
          name and the cache directory is readable by the user's other processes.

        Returns:
            The identity, or None (this default) when the method's tokens must not be
            shared: the client then logs in on its own, as without a cache.
        """
        return None


class DroppedAuth(AuthMethod):
    """What a closed VaultClient holds instead of its auth method: no credential at all."""

    name = "closed"

    def login(self, transport: Transport) -> LoginResult:
        raise VaultClientClosedError(
            "This VaultClient was closed; create a new one (e.g. VaultClient.from_env())."
        )

    def __repr__(self) -> str:
        return "<auth dropped at close>"


def checked_credential(value: str, what: str) -> str:
    """``value``, if it is printable ASCII as a token, secret_id or wrapping token must be.

    Args:
        value: The credential.
        what: Where it came from, for the message: "The Vault token from VAULT_TOKEN".

    Raises:
        VaultConfigError: Naming ``what``, never the value: it holds a line break (a
            two-line file, a bad paste), a control or a non-ASCII character. Such a value
            could not go into a header; refused here, it is never sent or retried.
    """
    if not is_printable_ascii(value):
        raise VaultConfigError(f"{what} {NOT_PRINTABLE_ASCII}.")
    return value


def checked_mount(mount: str) -> str:
    """An auth method's mount path, checked as secret paths are (no '.' or '..' segment,
    no empty segment, no '?', '#', '%', '\\' or control character), slashes trimmed.

    Raises:
        VaultConfigError: Naming VAULT_AUTH_MOUNT: the mount would change the login URL.
    """
    if not isinstance(mount, str):
        raise VaultConfigError(
            f"An auth mount must be a string such as 'approle', not {type(mount).__name__}; "
            "check VAULT_AUTH_MOUNT (or mount=)."
        )
    try:
        return normalise_path(mount, what="auth mount")
    except VaultError as exc:
        raise VaultConfigError(f"{exc} Check VAULT_AUTH_MOUNT (or mount=).") from None


def read_credential_file(path: str | os.PathLike[str], what: str, variable: str) -> str:
    """Read a credential file, stripped, and register its content as a secret.

    Raises:
        VaultConfigError: The file cannot be read or is empty; names the file and variable.
    """
    try:
        content = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise VaultConfigError(
            f"Cannot read the {what} file {os.fspath(path)!r} "
            f"({exc.strerror or type(exc).__name__}); "
            f"check {variable} and the file's permissions."
        ) from None
    except UnicodeDecodeError:
        raise VaultConfigError(
            f"The {what} file {os.fspath(path)!r} is not UTF-8 text; check {variable}."
        ) from None
    if not content:
        raise VaultConfigError(f"The {what} file {os.fspath(path)!r} is empty; check {variable}.")
    register_secret(content)
    return content


def login_result(body: dict[str, Any] | None, where: str) -> LoginResult:
    """The token and its properties from a login answer's ``auth`` block."""
    auth = (body or {}).get("auth")
    if not isinstance(auth, dict) or not auth.get("client_token"):
        raise VaultAuthError(f"Vault's answer to {where} carried no token; is this a login path?")
    token = str(auth["client_token"])
    register_secret(token)
    return LoginResult(
        token=token,
        ttl=float(auth.get("lease_duration") or 0),
        renewable=bool(auth.get("renewable")),
        token_type=str(auth.get("token_type") or "service"),
        policies=tuple(auth.get("token_policies") or auth.get("policies") or ()),
        accessor=str(auth.get("accessor") or ""),
    )


def login(
    transport: Transport,
    mount: str,
    body: dict[str, Any],
    advice: str,
    *,
    login_path: str = "login",
) -> LoginResult:
    """POST ``auth/<mount>/<login_path>`` and map refusals to VaultAuthError with the
    method's advice.

    The path and ``advice`` end up in error messages: they must hold no credential.
    """
    path = f"auth/{mount}/{login_path}"
    try:
        response = transport.request("POST", path, json=body, operation="vault.login")
    except VaultPermissionError as exc:
        # Vault answers 403 (not 404) for a login path where nothing is mounted.
        raise VaultAuthError(
            f"Login at {path} was refused with 'permission denied': usually no auth method "
            f"is mounted at auth/{mount}. Check the mount path "
            f"(VAULT_AUTH_MOUNT). {advice}",
            status_code=exc.status_code,
            errors=exc.errors,
        ) from None
    except (VaultInvalidRequestError, VaultAuthError) as exc:
        said = f" (Vault says: {'; '.join(exc.errors)})" if exc.errors else ""
        raise VaultAuthError(
            f"Login at {path} was refused{said}. {advice}",
            status_code=exc.status_code,
            errors=exc.errors,
        ) from None
    except VaultSecretNotFoundError as exc:
        raise VaultAuthError(
            f"No auth method is mounted at auth/{mount} (404). Check the mount path "
            "(VAULT_AUTH_MOUNT) or ask your Vault administrator where it is enabled.",
            status_code=exc.status_code,
        ) from None
    return login_result(response, path)
