"""The Snowflake double's programmatic access tokens and OAuth access tokens.

Each registered user (``_registry.User``) keeps a list of :class:`Token`: a kind
(``"pat"`` or ``"oauth"``), a name (a PAT's name, as ``ALTER USER ... ADD PROGRAMMATIC
ACCESS TOKEN <name>`` gives it; OAuth tokens are numbered), the SHA-256 digest of the
value (the value itself never reaches the server process) and whether it expired. The
functions here run in the server process under the registry's lock.

What a login then gets (``_app`` answers with these bodies, as Snowflake does):

- a PAT that is unknown, removed, replaced by a rotation or expired: errno 394400
  "Programmatic access token is invalid." (one answer for all, as Snowflake gives);
- an OAuth token that is unknown or revoked: 390303 "Invalid OAuth access token.";
  one that expired: 390318 "OAuth access token expired.".

A valid PAT is also accepted as the password, as Snowflake accepts it in place of one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

__all__ = [
    "EXPIRED",
    "INVALID",
    "KINDS",
    "OK",
    "Token",
    "add_token",
    "check_token",
    "expire_tokens",
    "remove_tokens",
    "rotate_token",
]

KINDS = ("pat", "oauth")
OK, INVALID, EXPIRED = "ok", "invalid", "expired"


@dataclass(slots=True)
class Token:
    kind: str
    name: str
    digest: bytes = field(repr=False)
    expired: bool = False
    superseded: bool = False  # rotated, but kept valid for a grace period


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"token kind must be one of {', '.join(KINDS)}, not {kind!r}")


def _matching(
    tokens: list[Token], kind: str, name: str | None, *, superseded: bool = False
) -> list[Token]:
    """The tokens of this kind and name (any name for None); rotated ones if asked."""
    return [
        t
        for t in tokens
        if t.kind == kind
        and (name is None or t.name == name.upper())
        and (superseded or not t.superseded)
    ]


def add_token(tokens: list[Token], kind: str, name: str, digest: str) -> None:
    """Adds a token; a PAT's name must be new for the user (as in Snowflake)."""
    _check_kind(kind)
    if _matching(tokens, kind, name):
        raise ValueError(f"the user already has a {kind} token named {name.upper()!r}")
    tokens.append(Token(kind, name.upper(), bytes.fromhex(digest)))


def rotate_token(tokens: list[Token], kind: str, name: str, digest: str, *, keep_old: bool) -> None:
    """Gives the named token a new value; the old one stops working unless ``keep_old``.

    ``keep_old`` is the grace period of Snowflake's ``EXPIRE_ROTATED_TOKEN_AFTER_HOURS``
    (24 h by default there); without it the rotation behaves as with 0 hours, and only
    the new value works afterwards (an earlier rotation's grace period ends too).

    Raises:
        KeyError: the user has no such token.
    """
    _check_kind(kind)
    found = _matching(tokens, kind, name)
    if not found:
        raise KeyError(f"the user has no {kind} token named {name.upper()!r}")
    if keep_old:
        found[0].superseded = True  # still valid, no longer the one the name stands for
    else:
        for old in _matching(tokens, kind, name, superseded=True):
            tokens.remove(old)
    tokens.append(Token(kind, name.upper(), bytes.fromhex(digest)))


def remove_tokens(tokens: list[Token], kind: str, name: str | None) -> int:
    """Removes the named token (all of this kind for None); returns how many."""
    _check_kind(kind)
    gone = _matching(tokens, kind, name, superseded=True)  # a rotation's predecessor too
    for token in gone:
        tokens.remove(token)
    return len(gone)


def expire_tokens(tokens: list[Token], kind: str, name: str | None) -> int:
    """Marks the named token (all of this kind for None) expired; returns how many."""
    _check_kind(kind)
    hit = [t for t in _matching(tokens, kind, name, superseded=True) if not t.expired]
    for token in hit:
        token.expired = True
    return len(hit)


def check_token(tokens: list[Token], kind: str, presented: object) -> str:
    """:data:`OK`, :data:`INVALID` or :data:`EXPIRED` for a token presented at login."""
    if not isinstance(presented, str) or not presented:
        return INVALID
    digest = hashlib.sha256(presented.encode("utf-8")).digest()
    found = None
    for token in tokens:  # every digest compared, in constant time each
        if token.kind == kind and hmac.compare_digest(token.digest, digest):
            found = token
    if found is None:
        return INVALID
    return EXPIRED if found.expired else OK
