"""Auth methods: how the client obtains a Vault token.

Each method is a small object with one job, ``login(transport) -> LoginResult``. The
client's token manager decides when to call it. Credentials are kept out of ``repr()``
and every error message. One module per method; this package re-exports them.
"""

from gds_vault._auth.approle import AppRoleAuth
from gds_vault._auth.aws import AWSIAMAuth
from gds_vault._auth.base import AuthMethod, LoginResult
from gds_vault._auth.cert import CertAuth
from gds_vault._auth.jwt import KUBERNETES_TOKEN_FILE, JWTAuth
from gds_vault._auth.token import TokenAuth, vault_cli_token_path
from gds_vault._auth.userpass import LDAPAuth, UserpassAuth

__all__ = [
    "KUBERNETES_TOKEN_FILE",
    "AWSIAMAuth",
    "AppRoleAuth",
    "AuthMethod",
    "CertAuth",
    "JWTAuth",
    "LDAPAuth",
    "LoginResult",
    "TokenAuth",
    "UserpassAuth",
    "vault_cli_token_path",
]
