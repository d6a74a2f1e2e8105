"""Test users who log in with a programmatic access token or an OAuth access token.

``create_snowflake_user(..., kind="pat")`` (and the ``make_snowflake_user`` fixture) gives
the user a PAT in the double and writes it to the secret's ``token`` field;
``kind="oauth"`` issues an OAuth access token and writes ``token`` plus
``authenticator: oauth``. :class:`TokenUserHelpers` is the part of
:class:`~gds_snowflake.testing.SnowflakeTestUser` that then does to the token what
Snowflake, an administrator or a token refresher does:

==========================  =================================================  ========
helper                      as in                                              Vault
==========================  =================================================  ========
``rotate_pat()``            ``ALTER USER ... ROTATE PROGRAMMATIC ACCESS TOKEN``  updated
``revoke_pat()``            ``ALTER USER ... REMOVE PROGRAMMATIC ACCESS TOKEN``  as it was
``expire_pat()``            its ``DAYS_TO_EXPIRY`` passed                      as it was
``refresh_oauth_token()``   the job that keeps the OAuth token fresh in Vault  updated
``expire_oauth_token()``    the access token's lifetime passed                 as it was
``revoke_oauth_token()``    the authorization server revoked it                as it was
==========================  =================================================  ========
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gds_snowflake.testing._double_tokens import DEFAULT_PAT_NAME

if TYPE_CHECKING:
    from gds_snowflake.testing._double import SnowflakeDouble

__all__ = ["KINDS", "TokenUserHelpers", "token_fields"]

KINDS = ("password", "key", "pat", "oauth")


def token_fields(double: SnowflakeDouble, user: str, kind: str) -> dict[str, str]:
    """Give a registered user a token of ``kind`` ("pat" or "oauth"); its secret fields."""
    if kind == "pat":
        return {"token": double.add_pat(user, DEFAULT_PAT_NAME)}
    if kind == "oauth":
        return {"token": double.issue_oauth_token(user), "authenticator": "oauth"}
    raise ValueError(f"a token kind is 'pat' or 'oauth', not {kind!r}")


class TokenUserHelpers:
    """Rotation, revocation and expiry of a test user's token (see the module docstring)."""

    if TYPE_CHECKING:  # SnowflakeTestUser's fields and method
        name: str
        double: SnowflakeDouble
        secret: dict[str, str]

        def write_secret(self, **fields: str | None) -> None: ...

    @property
    def token(self) -> str | None:
        """The token the secret in Vault holds now (None without one)."""
        return self.secret.get("token")

    @property
    def token_kind(self) -> str | None:
        """ "pat", "oauth", or None when the user logs in otherwise."""
        if "token" not in self.secret:
            return None
        return "oauth" if self.secret.get("authenticator", "").lower() == "oauth" else "pat"

    def _require(self, kind: str) -> None:
        if self.token_kind != kind:
            raise ValueError(
                f"user {self.name} does not log in with a {kind} token "
                f"(make it with make_snowflake_user(kind={kind!r}))"
            )

    # -- programmatic access tokens ------------------------------------------------------
    def rotate_pat(self, *, keep_old: bool = False) -> str:
        """Rotate the PAT in Snowflake, then store the new one in Vault; returns it.

        Args:
            keep_old: The old token stays valid (Snowflake's grace period); by default it
                stops working at once, so a job holding it is refused once and reads Vault.
        """
        self._require("pat")
        token = self.double.rotate_pat(self.name, DEFAULT_PAT_NAME, keep_old=keep_old)
        self.write_secret(token=token)
        return token

    def revoke_pat(self) -> None:
        """Remove the PAT in Snowflake only: Vault still holds it, so logins are refused."""
        self._require("pat")
        self.double.revoke_pat(self.name, DEFAULT_PAT_NAME)

    def expire_pat(self) -> None:
        """Let the PAT expire in Snowflake; Vault still holds it, so logins are refused."""
        self._require("pat")
        self.double.expire_pat(self.name, DEFAULT_PAT_NAME)

    # -- OAuth access tokens ----------------------------------------------------------
    def refresh_oauth_token(self, *, expire_old: bool = True) -> str:
        """What an OAuth token refresher does: a new access token, written to Vault.

        Args:
            expire_old: The previous access tokens expire in Snowflake (the refresher ran
                because they were about to); False leaves them valid.

        Returns:
            The new token.
        """
        self._require("oauth")
        if expire_old:
            self.double.expire_oauth_tokens(self.name)
        token = self.double.issue_oauth_token(self.name)
        self.write_secret(token=token)
        return token

    def expire_oauth_token(self) -> None:
        """The OAuth access token expires in Snowflake and nothing refreshed it in Vault."""
        self._require("oauth")
        self.double.expire_oauth_tokens(self.name)

    def revoke_oauth_token(self) -> None:
        """The OAuth access token is revoked; Vault still holds it."""
        self._require("oauth")
        self.double.revoke_oauth_tokens(self.name)
