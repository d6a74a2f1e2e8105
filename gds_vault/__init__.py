"""gds_vault: a focused client for HashiCorp Vault and OpenBao.

Read secrets with AppRole, token (or the Vault CLI's ``vault login``), JWT/Kubernetes,
userpass/LDAP, TLS certificate or AWS IAM auth, automatic KV v1/v2 detection, a secret
cache and one retry policy; dynamic secrets with their leases (``read_lease``)::

    from gds_vault import VaultClient
    with VaultClient.from_env() as client:
        user = client.get_secret("secret/snowflake/etl", key="user")
"""

from logging import NullHandler as _NullHandler
from logging import getLogger as _getLogger

from gds_vault._auth import (
    AppRoleAuth,
    AuthMethod,
    AWSIAMAuth,
    CertAuth,
    JWTAuth,
    LDAPAuth,
    TokenAuth,
    UserpassAuth,
)
from gds_vault._client import VaultClient
from gds_vault._default import (
    get_default_client,
    get_secret_from_vault,
    reset_default_client,
    set_default_client,
)
from gds_vault._errors import (
    VaultAuthError,
    VaultClientClosedError,
    VaultConfigError,
    VaultConnectionError,
    VaultError,
    VaultInvalidRequestError,
    VaultLeasedSecretError,
    VaultLeaseError,
    VaultPathError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretDeletedError,
    VaultSecretNotFoundError,
    VaultTimeoutError,
    VaultTLSError,
    VaultUnavailableError,
)
from gds_vault._lease import Lease
from gds_vault._logging import RedactionFilter, configure_logging, redact, register_secret
from gds_vault._status import TokenStatus, VaultHealth, VaultStats
from gds_vault._tls import VaultInsecureWarning
from gds_vault.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AWSIAMAuth",
    "AppRoleAuth",
    "AuthMethod",
    "CertAuth",
    "JWTAuth",
    "LDAPAuth",
    "Lease",
    "RedactionFilter",
    "RetryPolicy",
    "TokenAuth",
    "TokenStatus",
    "UserpassAuth",
    "VaultAuthError",
    "VaultClient",
    "VaultClientClosedError",
    "VaultConfigError",
    "VaultConnectionError",
    "VaultError",
    "VaultHealth",
    "VaultInsecureWarning",
    "VaultInvalidRequestError",
    "VaultLeaseError",
    "VaultLeasedSecretError",
    "VaultPathError",
    "VaultPermissionError",
    "VaultResponseError",
    "VaultSecretDeletedError",
    "VaultSecretNotFoundError",
    "VaultStats",
    "VaultTLSError",
    "VaultTimeoutError",
    "VaultUnavailableError",
    "__version__",
    "configure_logging",
    "get_default_client",
    "get_secret_from_vault",
    "redact",
    "register_secret",
    "reset_default_client",
    "set_default_client",
]

_getLogger(__name__).addHandler(_NullHandler())

# Shown under the name users import them by: a traceback says
# `gds_vault.VaultConnectionError`, not the private module it is defined in.
for _name in __all__:
    _public = globals()[_name]
    if isinstance(_public, type) and _public.__module__.startswith(__name__ + "._"):
        _public.__module__ = __name__
del _name, _public
