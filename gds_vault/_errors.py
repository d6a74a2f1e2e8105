"""Errors raised by gds_vault.

The tree::

    VaultError                          base of every failure talking to Vault
    ├── VaultConfigError                bad settings or environment (no VAULT_ADDR, ...)
    ├── VaultPathError                  a secret path or argument that cannot be valid
    ├── VaultLeaseError                 a lease cannot be renewed (expired, revoked, not
    │                                   renewable), or a path gave no lease
    ├── VaultLeasedSecretError          get_secret() on a dynamic secret: it has a lease
    │                                   (the error carries it: ``.lease``)
    ├── VaultConnectionError            transport: refused, reset, DNS (retried)
    │   ├── VaultTimeoutError           no answer within the timeout (retried)
    │   └── VaultTLSError               certificate not trusted or refused, or the
    │                                   address's scheme not the server's (never retried)
    └── VaultResponseError              Vault answered, and the answer is a failure
        ├── VaultAuthError              login rejected, token invalid or expired
        ├── VaultPermissionError        the token's policies do not allow the request
        ├── VaultSecretNotFoundError    nothing at that path (or that key, or version)
        │   └── VaultSecretDeletedError a KV v2 version that was deleted or destroyed
        ├── VaultInvalidRequestError    400: Vault refused the request as malformed
        └── VaultUnavailableError       sealed, standby, rate limited, 5xx, non-JSON answer
                                        (retried, except 501 and the like: see retryable)

    VaultClientClosedError (RuntimeError)   API misuse: the client was closed

Each error's message says what failed and what to do about it. Messages name variables,
paths, mounts and policies; they never contain a token, secret_id, JWT or secret value.
Where the library knows the one thing to do, ``fix`` holds it on its own (the message
ends with it too); ``gds-snowflake doctor`` prints it as the step's fix.

A failure of a lower layer (requests, ssl, a file) is kept as ``cause`` and raised
``from None``: the traceback shows this error and its frames, not three chained
tracebacks from inside requests and urllib3. ``exc.cause`` (and ``exc.__context__``)
still hold the original, with its own traceback, for debugging.
``retryable`` tells the retry policy whether trying again can help. It belongs to the
type (a class attribute); only a :class:`VaultResponseError` may be told otherwise when it
is made (``retryable=``), where the HTTP status decides (a 501 is a
VaultUnavailableError that retrying cannot fix).
"""

from __future__ import annotations


class VaultError(Exception):
    """Base class for every failure talking to Vault.

    Args:
        cause: The lower-level exception this error was made from (kept, not chained).
        fix: What to do about it, on its own, when there is one thing to do.
    """

    #: Whether the same request may succeed if sent again (used by RetryPolicy).
    retryable: bool = False
    #: The lower-level exception this error was made from (a requests or ssl error, an
    #: OSError), with its own traceback; None when Vault's answer itself was the failure.
    cause: BaseException | None = None
    #: What to do, when the library knows one thing to do (also the end of the message).
    fix: str | None = None

    def __init__(
        self, *args: object, cause: BaseException | None = None, fix: str | None = None
    ) -> None:
        super().__init__(*args)
        if cause is not None:  # class defaults otherwise: copies and pickles stay small
            self.cause = cause
        if fix is not None:
            self.fix = fix


class VaultConfigError(VaultError, ValueError):
    """The client's settings or environment are missing or invalid."""


class VaultPathError(VaultError, ValueError):
    """A secret path, key or version argument that can never be valid."""


class VaultConnectionError(VaultError):
    """Vault could not be reached: connection refused or reset, DNS, or TLS failure."""

    retryable = True


class VaultTimeoutError(VaultConnectionError):
    """Vault did not answer within the client's timeout."""


class VaultTLSError(VaultConnectionError):
    """TLS failed: Vault's certificate is not trusted (or expired, or for another host),
    Vault refused ours (mutual TLS), or the address's scheme is not the server's
    (``https://`` to a plain-HTTP port, ``http://`` to a TLS one).

    Never retried: none of these fixes itself. The message, and ``fix``, say what to set
    (VAULT_ADDR's scheme, VAULT_CACERT, VAULT_CLIENT_CERT...).
    """

    retryable = False


class VaultResponseError(VaultError):
    """Vault answered with a failure status or a response that is not Vault's JSON.

    Args:
        retryable: Whether sending the request again may help, when the status decides
            rather than the class (None: the class's ``retryable``).

    Attributes:
        status_code: The HTTP status, or None when there was no usable status.
        errors: The ``errors`` list from Vault's JSON body (already free of secrets:
            Vault reports what was wrong, not the values sent).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: tuple[str, ...] = (),
        retry_after: float | None = None,
        data: object = None,
        retryable: bool | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        if retryable is not None:  # the status decides; None keeps the class's answer
            self.retryable = retryable
        self.status_code = status_code
        self.errors = errors
        #: The ``data`` field of a 404 answer (KV v2 puts version metadata there; never
        #: secret values). None for other statuses.
        self.data = data
        #: Seconds the server asked us to wait before retrying (Retry-After), if any.
        self.retry_after = retry_after


class VaultAuthError(VaultResponseError):
    """Logging in failed, or the token is invalid, expired or revoked."""


class VaultPermissionError(VaultResponseError):
    """The token is valid but its policies do not allow this request."""


class VaultSecretNotFoundError(VaultResponseError, KeyError):
    """Nothing exists at the path, or the secret has no such key or version."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else ""


class VaultSecretDeletedError(VaultSecretNotFoundError):
    """The requested KV v2 version was soft-deleted or destroyed."""


class VaultInvalidRequestError(VaultResponseError):
    """Vault rejected the request as malformed (HTTP 400)."""


class VaultUnavailableError(VaultResponseError):
    """Vault is sealed, in standby, rate limiting, failing (5xx), or behind a broken proxy."""

    retryable = True


class VaultLeaseError(VaultError):
    """A lease cannot be renewed: it expired, was revoked or is not renewable; or the
    path read with ``read_lease`` gave no lease at all.

    Attributes:
        lease_id: The lease concerned (None when the path gave none).
    """

    def __init__(self, message: str, *, lease_id: str | None = None) -> None:
        super().__init__(message)
        self.lease_id = lease_id


class VaultLeasedSecretError(VaultError):
    """``get_secret`` read a dynamic secret (one Vault gives with a lease, such as
    ``database/creds/<role>``): each read creates new credentials, which a cache would
    keep past their lease, so it is not cached. The lease Vault created is not lost:
    it is ``.lease`` (a :class:`~gds_vault.Lease`), to use or revoke.
    """

    def __init__(self, message: str, *, lease: object = None, answer: object = None) -> None:
        super().__init__(message)
        #: The lease the read created (a gds_vault.Lease), with its credentials.
        self.lease = lease
        self._answer = answer  # Vault's body, until the client makes the lease of it


class VaultClientClosedError(RuntimeError):
    """The client was used after ``close()``; create a new VaultClient."""
