"""Auth methods: how the client obtains a Vault token.

Each method is a small object with one job, ``login(transport) -> LoginResult``. The
client's token manager decides when to call it. Credentials are kept out of ``repr()``
and every error message.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gds_vault._errors import (
    VaultAuthError,
    VaultConfigError,
    VaultInvalidRequestError,
    VaultPermissionError,
    VaultSecretNotFoundError,
)
from gds_vault._logging import register_secret

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["AppRoleAuth", "AuthMethod", "JWTAuth", "LoginResult", "TokenAuth"]

logger = logging.getLogger(__name__)

KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    """A token and what Vault said about it.

    ``ttl`` is in seconds; 0 means the token never expires (root and some periodic tokens).
    """

    token: str = field(repr=False)
    ttl: float
    renewable: bool
    token_type: str = "service"  # noqa: S105 - a token kind, not a token
    policies: tuple[str, ...] = ()
    accessor: str = field(default="", repr=False)  # names the token for revocation; kept quiet


class AuthMethod:
    """Base class of the auth methods. Subclasses implement :meth:`login`."""

    #: Short name for logs and errors, e.g. "approle".
    name = "auth"

    def login(self, transport: Transport) -> LoginResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def after_fork(self) -> None:
        """Reset locks in a forked child (most methods hold none)."""

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


def _read_file(path: str | os.PathLike[str], what: str, variable: str) -> str:
    """Read a credential file, stripped; a typed error says which file and what to do."""
    try:
        content = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise VaultConfigError(
            f"Cannot read the {what} file {os.fspath(path)!r} "
            f"({exc.strerror or type(exc).__name__}); "
            f"check {variable} and the file's permissions."
        ) from None
    if not content:
        raise VaultConfigError(f"The {what} file {os.fspath(path)!r} is empty; check {variable}.")
    return content


def _auth_from_login_response(body: dict[str, Any] | None, where: str) -> LoginResult:
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


def _login(transport: Transport, path: str, body: dict[str, Any], advice: str) -> LoginResult:
    """POST a login and map refusals to VaultAuthError with the method's advice."""
    try:
        response = transport.request("POST", path, json=body, operation="vault.login")
    except VaultPermissionError as exc:
        # Vault answers 403 (not 404) for a login path where nothing is mounted.
        raise VaultAuthError(
            f"Login at {path} was refused with 'permission denied': usually no auth method "
            f"is mounted at {path.rsplit('/', 1)[0]}. Check the mount path "
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
        mount = path.rsplit("/", 1)[0]
        raise VaultAuthError(
            f"No auth method is mounted at {mount} (404). Check the mount path "
            "(VAULT_AUTH_MOUNT) or ask your Vault administrator where it is enabled.",
            status_code=exc.status_code,
        ) from None
    return _auth_from_login_response(response, path)


class TokenAuth(AuthMethod):
    """Use an existing token: given directly, or read from a file at every login.

    A file suits a Vault Agent sink: the agent rewrites it and the client re-reads it when
    its cached token is due for replacement.

    Args:
        token: The token itself (e.g. from VAULT_TOKEN).
        token_file: A file holding the token (e.g. a Vault Agent sink file).
    """

    name = "token"

    def __init__(
        self, token: str | None = None, *, token_file: str | os.PathLike[str] | None = None
    ):
        if bool(token) == bool(token_file):
            raise VaultConfigError(
                "TokenAuth needs exactly one of token (VAULT_TOKEN) or "
                "token_file (VAULT_TOKEN_FILE)."
            )
        self._token = token.strip() if token else None
        self.token_file = token_file
        register_secret(self._token)

    def __repr__(self) -> str:
        source = (
            f"token_file={os.fspath(self.token_file)!r}" if self.token_file else "token=<hidden>"
        )
        return f"TokenAuth({source})"

    def cache_identity(self) -> str | None:
        """None: a given token needs no login, and keying a cache by it would derive the
        key from a secret (its accessor is known only by asking Vault, the request saved)."""
        return None

    def current_token(self) -> str:
        if self._token:
            return self._token
        assert self.token_file is not None
        token = _read_file(self.token_file, "token", "VAULT_TOKEN_FILE")
        register_secret(token)
        return token

    def login(self, transport: Transport) -> LoginResult:
        token = self.current_token()
        source = "the token file" if self.token_file else "VAULT_TOKEN"
        try:
            body = transport.request(
                "GET", "auth/token/lookup-self", token=token, operation="vault.token.lookup"
            )
        except (VaultPermissionError, VaultAuthError, VaultInvalidRequestError):
            raise VaultAuthError(
                f"The token from {source} is invalid, expired or revoked; obtain a new one "
                "(e.g. `vault login`) and update "
                f"{'the file' if self.token_file else 'VAULT_TOKEN'}.",
                status_code=403,
            ) from None
        data = (body or {}).get("data") or {}
        return LoginResult(
            token=token,
            ttl=float(data.get("ttl") or 0),
            renewable=bool(data.get("renewable")),
            token_type=str(data.get("type") or "service"),
            policies=tuple(data.get("policies") or ()),
        )


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
        self._role_id = role_id.strip()
        self._secret_id = secret_id.strip() if secret_id else None
        self.secret_id_file = secret_id_file
        self.wrapped = wrapped
        self.mount = mount.strip("/")
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

    def _secret_id_for_login(self, transport: Transport) -> str | None:
        if self.secret_id_file is not None:
            given: str | None = _read_file(self.secret_id_file, "secret_id", "VAULT_SECRET_ID_FILE")
            register_secret(given)
        else:
            given = self._secret_id
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
        return _login(
            transport,
            f"auth/{self.mount}/login",
            body,
            "Check VAULT_ROLE_ID and VAULT_SECRET_ID: the secret_id may have expired, "
            "used up its uses, or been destroyed; ask for a new one.",
        )


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


class JWTAuth(AuthMethod):
    """Log in with a JWT read from a file at every login (JWT/OIDC or Kubernetes methods).

    Args:
        role: The Vault role to log in as (VAULT_JWT_ROLE).
        jwt: The JWT itself, for short scripts; prefer ``jwt_file`` for rotating tokens.
        jwt_file: A file holding the JWT; re-read at each login, since such tokens rotate.
        mount: Where the method is mounted. Default "jwt".
    """

    name = "jwt"

    def __init__(
        self,
        role: str,
        *,
        jwt: str | None = None,
        jwt_file: str | os.PathLike[str] | None = None,
        mount: str = "jwt",
    ) -> None:
        if not isinstance(role, str) or not role.strip():
            raise VaultConfigError("JWTAuth needs the Vault role name; set VAULT_JWT_ROLE.")
        if bool(jwt) == bool(jwt_file):
            raise VaultConfigError("JWTAuth needs exactly one of jwt or jwt_file (VAULT_JWT_FILE).")
        self.role = role.strip()
        self._jwt = jwt.strip() if jwt else None
        self.jwt_file = jwt_file
        self.mount = mount.strip("/")
        register_secret(self._jwt)

    @classmethod
    def kubernetes(
        cls,
        role: str,
        *,
        jwt_file: str | os.PathLike[str] = KUBERNETES_TOKEN_FILE,
        mount: str = "kubernetes",
    ) -> JWTAuth:
        """The Kubernetes method: the pod's service-account token, re-read at each login."""
        auth = cls(role, jwt_file=jwt_file, mount=mount)
        auth.name = "kubernetes"
        return auth

    def __repr__(self) -> str:
        source = f"jwt_file={os.fspath(self.jwt_file)!r}" if self.jwt_file else "jwt=<hidden>"
        return f"JWTAuth(role={self.role!r}, {source}, mount={self.mount!r})"

    def cache_identity(self) -> str | None:
        """The role and the JWT's file (whose subject the role binds); None for a JWT given
        directly, whose subject only the (secret) JWT itself tells."""
        if self.jwt_file is None:
            return None
        return f"role={self.role} jwt_file={os.path.abspath(self.jwt_file)}"

    def login(self, transport: Transport) -> LoginResult:
        if self._jwt:
            jwt = self._jwt
        else:
            assert self.jwt_file is not None
            jwt = _read_file(self.jwt_file, "JWT", "VAULT_JWT_FILE")
            register_secret(jwt)
        return _login(
            transport,
            f"auth/{self.mount}/login",
            {"role": self.role, "jwt": jwt},
            f"Check that role {self.role!r} exists on auth/{self.mount} and that the JWT's "
            "issuer, audience and subject match the role's bound claims.",
        )
