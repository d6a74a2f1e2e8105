"""The Snowflake double's programmatic access tokens and OAuth tokens, as a test drives them.

:class:`TokenControl` is the part of :class:`~gds_snowflake.testing._double.SnowflakeDouble`
that gives users tokens and takes them away, named after the SQL an administrator runs
(``ALTER USER ... ADD | ROTATE | REMOVE PROGRAMMATIC ACCESS TOKEN``). Token values are
made here, in the test's process, and returned to the caller, as Snowflake returns a new
PAT's ``token_secret`` once; only their SHA-256 digests go to the server process
(``_token_store`` keeps them there), and no log line names a value.

What the connector raises for a refused token, on each line, is in the docstring of
``gds_snowflake._classify``; tests/snowflake/test_tokens.py pins it.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
from typing import Any

__all__ = ["DEFAULT_PAT_NAME", "TokenControl", "new_oauth_token", "new_pat"]

logger = logging.getLogger(__name__)

DEFAULT_PAT_NAME = "GDS_PAT"
_oauth_hints = itertools.count(1)


def new_pat() -> str:
    """A fresh random programmatic access token (URL-safe text, one line)."""
    return secrets.token_urlsafe(64)


def new_oauth_token() -> str:
    """A fresh random OAuth access token, shaped as Snowflake OAuth's (``ver:1-hint:...``)."""
    return f"ver:1-hint:{next(_oauth_hints)}-{secrets.token_urlsafe(48)}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _registered(token: str) -> str:
    """The token, registered with gds_vault's redaction filter (a test's logs may show it)."""
    from gds_vault import register_secret

    register_secret(token)
    return token


class TokenControl:
    """Programmatic access tokens and OAuth access tokens of the double's users."""

    def _call(self, operation: str, **arguments: Any) -> Any:  # SnowflakeDouble's
        raise NotImplementedError

    # -- programmatic access tokens ------------------------------------------------------

    def add_pat(self, user: str, name: str = DEFAULT_PAT_NAME, *, token: str | None = None) -> str:
        """``ALTER USER <user> ADD PROGRAMMATIC ACCESS TOKEN <name>``: a new valid PAT.

        Args:
            user: the user (registered with :meth:`register_user`).
            name: the token's name; unique per user, case-insensitive.
            token: the value to accept; default a new random one.

        Returns:
            The token, as Snowflake's ``token_secret``.

        Raises:
            KeyError: no such user.
            ValueError: the user already has a PAT of that name.
        """
        value = _registered(token if token is not None else new_pat())
        self._call("add_token", name=user, kind="pat", token_name=name, digest=_digest(value))
        logger.debug("Snowflake double: PAT %s added for %s", name.upper(), user.upper())
        return value

    def rotate_pat(
        self,
        user: str,
        name: str = DEFAULT_PAT_NAME,
        *,
        keep_old: bool = False,
        token: str | None = None,
    ) -> str:
        """``ALTER USER ... ROTATE PROGRAMMATIC ACCESS TOKEN <name>``: a new value.

        Args:
            user, name: whose token, which one.
            keep_old: the old value stays valid (Snowflake's
                ``EXPIRE_ROTATED_TOKEN_AFTER_HOURS`` grace period, 24 h by default there);
                by default it stops working at once (as with 0 hours), and so does any
                value an earlier ``keep_old`` rotation left valid.
            token: the new value; default a new random one.

        Returns:
            The new token.

        Raises:
            KeyError: no such user, or the user has no PAT of that name.
        """
        value = _registered(token if token is not None else new_pat())
        self._call(
            "rotate_token",
            name=user,
            kind="pat",
            token_name=name,
            digest=_digest(value),
            keep_old=keep_old,
        )
        logger.debug("Snowflake double: PAT %s of %s rotated", name.upper(), user.upper())
        return value

    def revoke_pat(self, user: str, name: str = DEFAULT_PAT_NAME) -> int:
        """``ALTER USER ... REMOVE PROGRAMMATIC ACCESS TOKEN <name>``: it stops working.

        Open sessions are left alone (expire them with :meth:`expire_sessions`).

        Returns:
            How many tokens went (0 when there was none of that name; 2 with the
            predecessor a ``keep_old`` rotation left valid).

        Raises:
            KeyError: no such user.
        """
        removed: int = self._call("remove_tokens", name=user, kind="pat", token_name=name)
        return removed

    def expire_pat(self, user: str, name: str | None = DEFAULT_PAT_NAME) -> int:
        """The PAT's ``DAYS_TO_EXPIRY`` has passed (None: every PAT of the user).

        Returns:
            How many tokens expired.

        Raises:
            KeyError: no such user.
        """
        count: int = self._call("expire_tokens", name=user, kind="pat", token_name=name)
        return count

    # -- OAuth access tokens ----------------------------------------------------------

    def issue_oauth_token(self, user: str, *, token: str | None = None) -> str:
        """An OAuth access token for ``user``, as an authorization server would issue it.

        Args:
            user: the user (registered with :meth:`register_user`).
            token: the value to accept; default a new random one.

        Returns:
            The token.

        Raises:
            KeyError: no such user.
        """
        value = _registered(token if token is not None else new_oauth_token())
        hint = secrets.token_hex(8)  # a name for the registry; OAuth tokens have none
        self._call("add_token", name=user, kind="oauth", token_name=hint, digest=_digest(value))
        return value

    def expire_oauth_tokens(self, user: str) -> int:
        """Every OAuth access token of ``user`` expires (logins answer 390318).

        Returns:
            How many tokens expired.
        """
        count: int = self._call("expire_tokens", name=user, kind="oauth", token_name=None)
        return count

    def revoke_oauth_tokens(self, user: str) -> int:
        """Every OAuth access token of ``user`` is revoked (logins answer 390303).

        Returns:
            How many tokens went.
        """
        removed: int = self._call("remove_tokens", name=user, kind="oauth", token_name=None)
        return removed
