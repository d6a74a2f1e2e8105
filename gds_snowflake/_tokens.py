"""Token credentials: a programmatic access token (PAT) or an OAuth access token.

A secret's ``token`` field holds a Snowflake programmatic access token, sent with
``authenticator="PROGRAMMATIC_ACCESS_TOKEN"``. With an ``authenticator`` field saying
``oauth`` the token is an OAuth access token instead (sent with ``authenticator="OAUTH"``),
which something else keeps fresh in Vault: this library only reads it. The field names
are :class:`~gds_snowflake._credentials.SecretLayout`'s ``token`` and ``authenticator``.

With several kinds of credential in one secret the order is key pair, then token, then
password (``_credentials``). A token is checked only when it is the one used:

- empty (or only whitespace) while no key pair is present: an error, not a silent fall
  back to the password beside it;
- surrounding whitespace is dropped, as for every field (the newline ``token=@pat.txt``
  keeps from a file); whitespace inside it (a token wrapped over two lines, a
  ``Bearer`` prefix), control or non-ASCII characters: an error naming the position,
  never the value;
- an ``authenticator`` other than ``oauth`` or ``programmatic_access_token`` (any case):
  an error naming the two.

What Snowflake answers when it refuses one (the double answers the same, and
tests/snowflake/test_double_tokens.py pins what each connector line then raises; the
classification is in ``_classify``):

- PAT: errno 394400 "Programmatic access token is invalid." whether it expired, was
  rotated or removed, or the user lacks the network policy PATs require by default
  (recorded in snowflake-connector-python's test/data/wiremock/mappings/auth/pat/
  invalid_token.json; the drivers' e2e tests, snowflakedb/drivers
  jdbc/.../PatTests.java and odbc_tests/.../pat.cpp, assert the code).
- OAuth: 390318 when the access token expired, 390303 "Invalid OAuth access token."
  when Snowflake does not accept it (revoked, another account, a role it does not
  allow): ``OAUTH_ACCESS_TOKEN_EXPIRED_GS_CODE`` and
  ``OAUTH_ACCESS_TOKEN_INVALID_GS_CODE`` in snowflake-connector-python's network.py;
  ``OAUTH_ACCESS_TOKEN_EXPIRED`` / ``OAUTH_ACCESS_TOKEN_INVALID`` in the 5.x core
  (snowflakedb/drivers sf_core/src/rest/snowflake/mod.rs). Neither connector line renews
  a token given as ``token=`` (only its own OAuth flows do), so both raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from gds_snowflake._errors import SnowflakeSecretError

__all__ = [
    "OAUTH",
    "OAUTH_TOKEN_EXPIRED",
    "OAUTH_TOKEN_INVALID",
    "PAT",
    "PAT_INVALID",
    "TOKEN_REJECTED_CODES",
    "TokenKind",
    "checked_token",
    "missing_token",
    "rejection_advice",
    "token_kind",
    "token_problem",
]

PAT_INVALID = 394400  # "Programmatic access token is invalid."
OAUTH_TOKEN_INVALID = 390303  # "Invalid OAuth access token."
OAUTH_TOKEN_EXPIRED = 390318  # "OAuth access token expired."
TOKEN_REJECTED_CODES = frozenset({PAT_INVALID, OAUTH_TOKEN_INVALID, OAUTH_TOKEN_EXPIRED})
_SHOWN_VALUE_LIMIT = 40  # characters of an unknown authenticator value quoted back


@dataclass(frozen=True, slots=True)
class TokenKind:
    """What a secret's token is, and how the connector is told."""

    name: str  #: what the secret's ``authenticator`` field says: "programmatic_access_token"
    method: str  #: how logs and messages call it: "programmatic access token"
    authenticator: str  #: the connector's ``authenticator=`` value

    @property
    def article(self) -> str:
        """The article before :attr:`method` in a sentence: "a" or "an"."""
        return "an" if self.method[0].lower() in "aeiou" else "a"


PAT = TokenKind(
    "programmatic_access_token", "programmatic access token", "PROGRAMMATIC_ACCESS_TOKEN"
)
OAUTH = TokenKind("oauth", "OAuth token", "OAUTH")
_KINDS = {kind.name: kind for kind in (PAT, OAUTH)}


def token_kind(authenticator: str | None, *, path: str, field: str) -> TokenKind:
    """The kind of token a secret holds, from its ``authenticator`` field (None: a PAT).

    Raises:
        SnowflakeSecretError: The field names something else.
    """
    if authenticator is None:
        return PAT
    kind = _KINDS.get(authenticator.lower())
    if kind is not None:
        return kind
    shown = authenticator[:_SHOWN_VALUE_LIMIT]  # repr() below escapes control characters
    more = "..." if len(authenticator) > _SHOWN_VALUE_LIMIT else ""
    raise SnowflakeSecretError(
        f"Field {field!r} of secret {path} says {shown!r}{more}, which this library does not "
        f"use; it takes 'oauth' (the token is an OAuth access token) or "
        f"'programmatic_access_token' (the default when the field is absent). Correct it "
        f"(vault kv patch {path} {field}=oauth), or remove it for a programmatic access "
        "token, a key pair or a password."
    )


def token_problem(token: str) -> str | None:
    """What makes ``token`` (already stripped) unusable as a token, or None; never the value."""
    for position, char in enumerate(token, start=1):
        if char in "\r\n":
            what = "a line break"
        elif char == " ":
            what = "a space"
        elif char.isspace():
            what = "whitespace"
        elif not (char.isascii() and char.isprintable()):
            what = "a control or non-ASCII character"
        else:
            continue
        return f"contains {what} at character {position} of {len(token)}"
    return None


def checked_token(token: str | None, kind: TokenKind, *, path: str, field: str) -> str:
    """The token, once checked to be one line of printable ASCII without spaces.

    Args:
        token: The field's value, stripped; None when the field is empty.
        kind: What the token is, for the message.
        path, field: Where it came from, for the message.

    Raises:
        SnowflakeSecretError: The token is empty or holds whitespace, control or
            non-ASCII characters. The message names the position, never the value.
    """
    if token is None:
        raise SnowflakeSecretError(
            f"Field {field!r} of secret {path} is empty; store the {kind.method} "
            f"(vault kv patch {path} {field}=@token.txt), or remove the field to log in "
            "with a key pair or password."
        )
    problem = token_problem(token)
    if problem is not None:
        raise SnowflakeSecretError(
            f"Field {field!r} of secret {path} {problem}; {kind.article} {kind.method} is one "
            f"line with no spaces. Store it again, without line breaks or a prefix such as "
            f"'Bearer ' (vault kv patch {path} {field}=@token.txt)."
        )
    return token


def missing_token(kind: TokenKind, *, path: str, field: str, said_by: str) -> SnowflakeSecretError:
    """The error for an ``authenticator`` field without a token beside it."""
    return SnowflakeSecretError(
        f"Field {said_by!r} of secret {path} says {kind.name!r} but the secret has no "
        f"{field!r} field; add the {kind.method} (vault kv patch {path} {field}=@token.txt), "
        f"or remove {said_by!r} to log in with a key pair or password."
    )


def rejection_advice(kind: TokenKind, errno: int | None, *, user: str, path: str) -> str:
    """What to check when Snowflake keeps refusing a token (after a fresh Vault read)."""
    if kind is OAUTH:
        state = {
            OAUTH_TOKEN_EXPIRED: "has expired",
            OAUTH_TOKEN_INVALID: "is not valid for this account (revoked, or issued "
            "for another account, user or role)",
        }.get(errno or 0, "was refused")
        return (
            f"The OAuth access token in {path} {state}. This library only reads it: whatever "
            "refreshes it in Vault (a job holding the refresh token, or the OAuth client) "
            f"must write a new one before the old expires; check that it runs, then "
            f"`gds-snowflake doctor {path}`."
        )
    return (
        f"The programmatic access token in {path} has expired, been rotated or removed, or "
        f"user {user} is not subject to the network policy that programmatic access tokens "
        f"require by default. SHOW USER PROGRAMMATIC ACCESS TOKENS FOR USER {user} lists "
        "the user's tokens with their expiry; ALTER USER ... ROTATE PROGRAMMATIC ACCESS "
        f"TOKEN gives a new one, to store with vault kv patch {path} token=@pat.txt; a "
        "missing network policy needs ALTER USER ... SET NETWORK_POLICY (or an "
        "authentication policy whose PAT_POLICY does not require one)."
    )
