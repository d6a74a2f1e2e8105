"""Which Snowflake errors mean "log in again", "credentials rejected" or "try again".

The codes are Snowflake's (GS codes, as ``errno`` on snowflake.connector errors):

- Session gone: 390110 (ID token expired), 390111, 390112 (session expired), 390113
  (master token not found), 390114 (master token expired; what the connector raises when
  its own renewal fails), 390115 (master token invalid), 390195, 390104 (session
  unknown: must log in again) and 250002 (connection closed under us). The session is
  dead but the credentials are fine: reconnect with the cached credentials.
- Credentials rejected: 390100 (incorrect username or password), 390144 and 3943xx (key
  pair JWT invalid, expired, fingerprint mismatch...). Connectors before 4.7.2 reported
  these as 250001 with the server's message, so that message is matched too. The secret
  may have been rotated: read Vault again, then reconnect.
- Transient: connection failures at login (250001 without an auth message, 250003,
  250005, and the connector's network errors): retried under the shared RetryPolicy.

In every case the statement is re-run only when the error arrived before Snowflake
executed it: these errors come from the login or from the session check that precedes
execution, never from a statement that ran.
"""

from __future__ import annotations

SESSION_GONE_CODES = frozenset(
    {390104, 390110, 390111, 390112, 390113, 390114, 390115, 390195, 250002}
)
CREDENTIAL_REJECTED_CODES = frozenset({390100, 390144} | set(range(394300, 394400)))
TRANSIENT_LOGIN_CODES = frozenset({250001, 250003, 250005})

_REJECTION_MESSAGES = (
    "incorrect username or password",
    "jwt token is invalid",
    "jwt_token_invalid",
    "public key fingerprint",
    "user temporarily locked",
)


def errno_of(exc: BaseException) -> int | None:
    errno = getattr(exc, "errno", None)
    try:
        return int(errno) if errno is not None else None
    except (TypeError, ValueError):
        return None


def message_of(exc: BaseException) -> str:
    return str(getattr(exc, "msg", None) or exc).lower()


def is_credential_rejection(exc: BaseException) -> bool:
    """Snowflake refused the user's password or key (possibly rotated since read)."""
    errno = errno_of(exc)
    if errno in CREDENTIAL_REJECTED_CODES:
        return True
    return errno == 250001 and any(m in message_of(exc) for m in _REJECTION_MESSAGES)


def is_session_gone(exc: BaseException) -> bool:
    """The session or master token expired or no longer exists; a new login fixes it."""
    return errno_of(exc) in SESSION_GONE_CODES


def is_transient_login_failure(exc: BaseException) -> bool:
    """A network-level failure at login that may succeed if tried again."""
    if is_credential_rejection(exc):
        return False
    errno = errno_of(exc)
    if errno in TRANSIENT_LOGIN_CODES:
        return True
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError") and errno is None
