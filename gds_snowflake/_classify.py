"""What a Snowflake error means: log in again, credentials rejected, try again, bad parameter.

Decided by the error's ``errno`` (Snowflake's GS codes, or the connector's own 25xxxx
codes), its ``sqlstate`` and the connector's exception classes, so that it holds for
both connector lines. What each line raises, as "4.x | 5.x" (class errno/sqlstate),
pinned against the double by tests/snowflake/test_double.py:

- wrong password, unknown user: DatabaseError 390100/28000 | the same
- key pair refused: DatabaseError 390144/28000 | the same
- programmatic access token refused: DatabaseError 394400/08001 | the same
- OAuth token refused: DatabaseError 390303/08001 (invalid), 390318/08001 (expired) |
  the same
- a statement after expiry, the renewal refused with ``"data": null``:
  ProgrammingError 390114/08001 | DatabaseError 390114/08001, then
  ReauthenticationRequest 390114/08001
- ... refused with a ``data`` object: ProgrammingError 390114/08001 | DatabaseError
  250001/08001 "Failed to refresh session: ... missing field `sessionToken`"
- login answered HTTP 5xx until the connector's own retries run out: OperationalError
  250001/n/a | DatabaseError 250001/08001
- login still failing when ``login_timeout`` runs out: OperationalError 250001/n/a (its
  retries run out first) | OperationalError 14/HYT00
- connection closed: DatabaseError 250002/08003 | the same
- argument of the wrong type: ValueError (``int()`` of a string) | ProgrammingError 3
  (or 251007 for a bad value), no sqlstate: refused before anything is sent

- Session gone (:func:`is_session_gone`, for an error a *statement* raised): 390110 (ID
  token expired), 390111, 390112 (session expired), 390113 (master token not found),
  390114 (master token expired: the connector's renewal was refused), 390115 (master
  token invalid), 390195, 390104 (session unknown), 250002 (connection closed under
  us); the connector's ``ReauthenticationRequest``; and a failed renewal: errno 250001
  with sqlstate 08001 ("client unable to establish connection"). At statement time the
  only thing that establishes a connection is a session renewal, and it runs before
  the statement is sent (the server answered 390112 without running it), so a new
  login and a re-run are safe. The session is dead but the credentials are fine:
  reconnect with the cached credentials.
- Credentials rejected (:func:`is_credential_rejection`): 390100 (incorrect username or
  password), 390144 and 3943xx (key-pair JWT invalid, expired, fingerprint mismatch...),
  394400 (programmatic access token invalid: expired, rotated, removed, or no network
  policy), 390303 and 390318 (OAuth access token invalid, expired; see ``_tokens``) and
  anything with sqlstate 28000 (invalid authorization). Both lines give the token codes
  sqlstate 08001 (neither lists them among their credential rejections), so they are
  listed by number. The secret may have been
  rotated: read Vault again, then reconnect. The one place message text is read:
  connectors before 4.7.2 reported these as 250001 with the server's message and no
  sqlstate of their own, so for errno 250001 the messages below are matched too.
- Transient at login (:func:`is_transient_login_failure`): 250001 (could not connect,
  retries exhausted), 250003, 250005, sqlstate HYT00/HYT01 (timed out; 5.x's login
  timeout is errno 14, HYT00), and the connector's ``OperationalError`` /
  ``InterfaceError`` without an errno (network errors): retried under the shared
  RetryPolicy. A rejection is never transient.
- Bad parameter (:func:`is_parameter_rejection`, for an error ``connect`` raised): the
  connector refused an argument before sending anything: a ``ProgrammingError``
  without sqlstate (every answer from the server carries one; 5.x's "Expected type Int
  for parameter 'login_timeout'" is errno 3, its own error kind, and 251007 is an
  invalid value on both lines), or Python's ``ValueError`` / ``TypeError`` (4.x
  converting the argument itself). Not the account's fault; the doctor says so.

In every case a statement is re-run only when the error arrived before Snowflake
executed it: these errors come from the login or from the session check that precedes
execution, never from a statement that ran.
"""

from __future__ import annotations

from gds_snowflake._tokens import TOKEN_REJECTED_CODES

SESSION_GONE_CODES = frozenset(
    {390104, 390110, 390111, 390112, 390113, 390114, 390115, 390195, 250002}
)
CREDENTIAL_REJECTED_CODES = frozenset(
    {390100, 390144} | set(range(394300, 394400)) | TOKEN_REJECTED_CODES
)
TRANSIENT_LOGIN_CODES = frozenset({250001, 250003, 250005})
FAILED_TO_CONNECT = 250001  # ER_FAILED_TO_CONNECT_TO_DB, on both lines
CONNECTION_NOT_ESTABLISHED = "08001"  # sqlstate: client unable to establish connection
INVALID_AUTHORIZATION = "28000"  # sqlstate: invalid authorization specification
TIMEOUT_SQLSTATES = frozenset({"HYT00", "HYT01"})  # timeout expired, connection timeout

# Connectors before 4.7.2 only (250001 with the server's text); see the module docstring.
_REJECTION_MESSAGES = (
    "incorrect username or password",
    "jwt token is invalid",
    "jwt_token_invalid",
    "public key fingerprint",
    "user temporarily locked",
    "programmatic access token is invalid",
    "oauth access token",
)


def errno_of(exc: BaseException) -> int | None:
    errno = getattr(exc, "errno", None)
    try:
        return int(errno) if errno is not None else None
    except (TypeError, ValueError):
        return None


def sqlstate_of(exc: BaseException) -> str | None:
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate.upper() if isinstance(sqlstate, str) and sqlstate else None


def message_of(exc: BaseException) -> str:
    return str(getattr(exc, "msg", None) or exc).lower()


def _connector_class(exc: BaseException, *names: str) -> bool:
    """Whether ``exc`` is one of snowflake.connector.errors' classes of these names."""
    return any(
        cls.__name__ in names and cls.__module__.startswith("snowflake.connector")
        for cls in type(exc).__mro__
    )


def is_credential_rejection(exc: BaseException) -> bool:
    """Snowflake refused the user's password or key (possibly rotated since read)."""
    errno = errno_of(exc)
    if errno in CREDENTIAL_REJECTED_CODES or sqlstate_of(exc) == INVALID_AUTHORIZATION:
        return True
    return errno == FAILED_TO_CONNECT and any(m in message_of(exc) for m in _REJECTION_MESSAGES)


def is_renewal_failure(exc: BaseException) -> bool:
    """A statement failed because the connector could not renew its session (see above)."""
    return (
        errno_of(exc) == FAILED_TO_CONNECT
        and sqlstate_of(exc) == CONNECTION_NOT_ESTABLISHED
        and not is_credential_rejection(exc)
    )


def is_session_gone(exc: BaseException) -> bool:
    """The session or master token expired or no longer exists; a new login fixes it.

    For errors a statement raised (not a login: there, 250001 means "could not connect").
    """
    return (
        errno_of(exc) in SESSION_GONE_CODES
        or _connector_class(exc, "ReauthenticationRequest")
        or is_renewal_failure(exc)
    )


def is_transient_login_failure(exc: BaseException) -> bool:
    """A network-level failure or timeout at login that may succeed if tried again."""
    if is_credential_rejection(exc) or is_parameter_rejection(exc):
        return False
    errno = errno_of(exc)
    if errno in TRANSIENT_LOGIN_CODES or sqlstate_of(exc) in TIMEOUT_SQLSTATES:
        return True
    # No errno of its own (the connector's default is -1): a network error it wrapped.
    return errno in (None, -1) and _connector_class(exc, "OperationalError", "InterfaceError")


def is_parameter_rejection(exc: BaseException) -> bool:
    """``connect`` refused an argument (its type or value) before sending anything."""
    if isinstance(exc, (ValueError, TypeError)):  # 4.x converting an argument itself
        return True
    return _connector_class(exc, "ProgrammingError") and sqlstate_of(exc) is None
