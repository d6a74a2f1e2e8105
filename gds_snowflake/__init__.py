"""gds_snowflake: Snowflake connections whose credentials come from Vault.

::

    from gds_snowflake import get_snowflake_connection
    with get_snowflake_connection("secret/snowflake/etl", warehouse="WH") as conn:
        conn.cursor().execute("select current_user()").fetchall()
"""

from logging import NullHandler as _NullHandler
from logging import getLogger as _getLogger

from gds_snowflake._connection import ReauthCursor, VaultSnowflakeConnection
from gds_snowflake._credentials import SecretLayout, SnowflakeCredentials
from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    SnowflakeAuthenticationError,
    SnowflakeConfigError,
    SnowflakeForkError,
    SnowflakeSecretError,
    SnowflakeTransactionLostError,
    SnowflakeVaultError,
    UnsupportedPrivateKeyError,
)
from gds_snowflake._keys import LoadedKey, load_private_key
from gds_snowflake._provider import SnowflakeConnectionProvider, get_snowflake_connection
from gds_snowflake._sqlalchemy import get_snowflake_engine  # imports SQLAlchemy when called

__version__ = "0.1.0"

__all__ = [
    "LoadedKey",
    "PrivateKeyError",
    "PrivateKeyPassphraseError",
    "ReauthCursor",
    "SecretLayout",
    "SnowflakeAuthenticationError",
    "SnowflakeConfigError",
    "SnowflakeConnectionProvider",
    "SnowflakeCredentials",
    "SnowflakeForkError",
    "SnowflakeSecretError",
    "SnowflakeTransactionLostError",
    "SnowflakeVaultError",
    "UnsupportedPrivateKeyError",
    "VaultSnowflakeConnection",
    "__version__",
    "get_snowflake_connection",
    "get_snowflake_engine",
    "load_private_key",
]

_getLogger(__name__).addHandler(_NullHandler())

# Shown under the name users import them by: a traceback says
# `gds_snowflake.SnowflakeAuthenticationError`, not the private module it is defined in.
for _name in __all__:
    _public = globals()[_name]
    if isinstance(_public, type) and _public.__module__.startswith(__name__ + "._"):
        _public.__module__ = __name__
del _name, _public
