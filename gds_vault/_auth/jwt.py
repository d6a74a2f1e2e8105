"""JWT auth (the jwt/oidc and kubernetes methods): a role and a JWT re-read at each login."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gds_vault._auth.base import (
    AuthMethod,
    LoginResult,
    checked_mount,
    login,
    read_credential_file,
)
from gds_vault._errors import VaultConfigError
from gds_vault._logging import register_secret

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["KUBERNETES_TOKEN_FILE", "JWTAuth"]

KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


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
        self.mount = checked_mount(mount)
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

    @property
    def source(self) -> str:
        if self.jwt_file is not None:
            return f"role {self.role!r} and the JWT file {os.fspath(self.jwt_file)}"
        return f"role {self.role!r} and a JWT given in code"

    def cache_identity(self) -> str | None:
        """The role and the JWT's file (whose subject the role binds); None for a JWT given
        directly, whose subject only the (secret) JWT itself tells."""
        if self.jwt_file is None:
            return None
        return f"role={self.role} jwt_file={os.path.abspath(self.jwt_file)}"

    def login(self, transport: Transport) -> LoginResult:
        if self._jwt:
            jwt = self._jwt
            register_secret(jwt)  # in use again: kept by the redaction filter
        else:
            assert self.jwt_file is not None
            jwt = read_credential_file(self.jwt_file, "JWT", "VAULT_JWT_FILE")
        return login(
            transport,
            self.mount,
            {"role": self.role, "jwt": jwt},
            f"Check that role {self.role!r} exists on auth/{self.mount} and that the JWT's "
            "issuer, audience and subject match the role's bound claims.",
        )
