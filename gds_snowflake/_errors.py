"""Errors raised by gds_snowflake.

The tree::

    SnowflakeVaultError                  base of everything this package raises itself
    ├── SnowflakeConfigError             bad arguments or environment (no secret path, ...)
    ├── SnowflakeSecretError             the Vault secret is incomplete or malformed
    │   └── PrivateKeyError              the private key cannot be used
    │       ├── PrivateKeyPassphraseError    wrong or missing passphrase
    │       └── UnsupportedPrivateKeyError   a key type or encryption Snowflake cannot use
    ├── SnowflakeAuthenticationError     Snowflake kept rejecting credentials after a fresh
    │                                    read from Vault (revoked, locked, wrong user)
    ├── SnowflakeTransactionLostError    the session expired inside an open transaction
    └── SnowflakeForkError               connector 5.x cannot log in from this forked process

Vault failures surface as the ``gds_vault`` errors (``VaultError`` subclasses); errors from
Snowflake itself that are not about authentication surface unchanged as
``snowflake.connector`` errors, so existing ``except ProgrammingError`` code keeps working.

No message ever contains a password, a key, a passphrase or a token: messages name the
secret path, the field and the Snowflake user instead.

A failure of a lower layer (cryptography, the connector) is kept as ``cause`` and raised
``from None``, so a traceback shows this error, not a chain of the library's internals;
``exc.cause`` (and ``exc.__context__``) still hold the original for debugging.
"""

from __future__ import annotations


class SnowflakeVaultError(Exception):
    """Base class for errors raised by gds_snowflake itself.

    Args:
        cause: The lower-level exception this error was made from (kept, not chained).
    """

    #: The lower-level exception this error was made from (the connector's, cryptography's),
    #: with its own traceback; None when there is none.
    cause: BaseException | None = None

    def __init__(self, *args: object, cause: BaseException | None = None) -> None:
        super().__init__(*args)
        if cause is not None:  # the class default otherwise
            self.cause = cause


class SnowflakeConfigError(SnowflakeVaultError, ValueError):
    """The arguments or environment do not describe a usable connection."""


class SnowflakeSecretError(SnowflakeVaultError, ValueError):
    """The Snowflake secret read from Vault is incomplete or malformed."""


class PrivateKeyError(SnowflakeSecretError):
    """The private key in the secret cannot be loaded."""


class PrivateKeyPassphraseError(PrivateKeyError):
    """The private key is encrypted and the passphrase is missing or wrong."""


class UnsupportedPrivateKeyError(PrivateKeyError):
    """The key is valid but of a type or encryption that Snowflake key-pair auth cannot use."""


class SnowflakeAuthenticationError(SnowflakeVaultError):
    """Snowflake rejected the credentials even after they were read again from Vault."""


class SnowflakeTransactionLostError(SnowflakeVaultError):
    """The session expired inside an open transaction; it was reconnected, but the
    transaction's earlier statements are gone, so the statement was not re-run."""


class SnowflakeForkError(SnowflakeVaultError, RuntimeError):
    """Connector 5.x was loaded before this process was forked, so it cannot log in here.

    Its native core starts its worker threads when it is imported, and a forked child
    has none of them: a login there would hang for ever, so it is refused at once.
    """
