"""TLS certificate auth: the client certificate of the mutual-TLS connection is the
credential; the login request itself carries at most a role name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gds_vault._auth.base import AuthMethod, LoginResult, checked_mount, login
from gds_vault._errors import VaultConfigError

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["CertAuth"]


class CertAuth(AuthMethod):
    """Log in with the client's TLS certificate (Vault's ``cert`` method).

    The certificate and key are the client's mutual-TLS settings (``cert=`` of
    :class:`~gds_vault.VaultClient`, or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY); Vault
    matches the certificate against the CAs or certificates registered on the mount.

    Args:
        role: The certificate role to log in as (VAULT_CERT_ROLE); None lets Vault pick
            the role whose certificate matches. Default None.
        mount: Where the method is mounted. Default "cert".
    """

    name = "cert"
    requires_client_cert = True

    def __init__(self, role: str | None = None, *, mount: str = "cert") -> None:
        if role is not None and (not isinstance(role, str) or not role.strip()):
            raise VaultConfigError("The certificate role name is empty; check VAULT_CERT_ROLE.")
        self.role = role.strip() if role else None
        self.mount = checked_mount(mount)

    def cache_identity(self) -> str | None:
        """The certificate role; None without one, since Vault then picks the role that
        matches the certificate and two certificates may match different roles."""
        return f"role={self.role}" if self.role else None

    def __repr__(self) -> str:
        return f"CertAuth(role={self.role!r}, mount={self.mount!r})"

    @property
    def source(self) -> str:
        role = f", role {self.role!r}" if self.role else ""
        return f"the client certificate (VAULT_CLIENT_CERT){role}"

    def login(self, transport: Transport) -> LoginResult:
        if transport.cert is None:
            raise VaultConfigError(
                "Certificate auth needs a client certificate: set VAULT_CLIENT_CERT and "
                "VAULT_CLIENT_KEY (or pass cert=(certificate, key) to VaultClient)."
            )
        body: dict[str, Any] = {"name": self.role} if self.role else {}
        which = f"role {self.role!r}" if self.role else "any certificate role"
        return login(
            transport,
            self.mount,
            body,
            f"The certificate in VAULT_CLIENT_CERT is not accepted by {which} on "
            f"auth/{self.mount}: it must be signed by (or be) a certificate registered there "
            f"(vault write auth/{self.mount}/certs/<role> certificate=@ca.pem), be valid "
            "now and meet the role's constraints; ask your Vault administrator.",
        )
