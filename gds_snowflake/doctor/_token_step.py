"""The ``gds-snowflake doctor`` step for token credentials: kind, length, expiry, what to check.

Skipped unless the login will use the secret's ``token`` (no key pair beside it). The
runtime has already checked the token in the ``secret`` step (one line, no spaces: see
``gds_snowflake._tokens``); this step says what kind it is and how long, reads its
expiry when it is a JWT (an External OAuth access token usually is; the ``exp`` claim
is read without verifying the signature, which only Snowflake can), and says what to
check in Snowflake if the login then fails. A token whose ``exp`` has passed fails here,
before a login Snowflake would refuse.

Nothing of the token is printed but its length: not its value, not a prefix, not its
claims.
"""

from __future__ import annotations

import base64
import binascii
import json

from gds_snowflake._tokens import OAUTH, PAT
from gds_snowflake.doctor._base import DoctorState, Outcome, fail

__all__ = ["TokenStep", "jwt_expiry"]

_SOON = 600.0  # seconds; a token expiring sooner than this gets a warning


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a token shaped as a JWT, unverified; else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


class TokenStep(DoctorState):
    """Step token."""

    def _step_token(self) -> str:
        fields = self.fields
        if fields is None or fields.token is None or fields.token_kind is None:
            method = fields.method if fields is not None else "no usable credential"
            raise Outcome("skip", f"not needed: the login uses a {method}, not a token")
        kind, token, user, path = fields.token_kind, fields.token, self.user, self.path
        detail = f"{kind.method}, {len(token)} characters, one line"
        expiry = jwt_expiry(token)
        if expiry is not None:
            left = expiry - self.clock()
            if left <= 0:
                raise fail(
                    f"{detail}; it expired {_duration(left)} ago (its exp claim)",
                    self._renew_fix(kind is OAUTH),
                )
            detail += f"; expires in {_duration(left)} (its exp claim)"
            if left < _SOON:
                raise Outcome("warn", detail, self._renew_fix(kind is OAUTH))
        if kind is PAT:
            return (
                f"{detail}; if Snowflake refuses it: SHOW USER PROGRAMMATIC ACCESS TOKENS FOR "
                f"USER {user} (its expiry and status), and that {user} is subject to a network "
                "policy (PATs require one unless an authentication policy says otherwise)"
            )
        return (
            f"{detail}; something other than this library must keep it fresh in {path} "
            "(OAuth access tokens are short-lived)"
        )

    def _renew_fix(self, oauth: bool) -> str:
        if oauth:
            return (
                f"Whatever refreshes the OAuth access token in {self.path} (a job holding the "
                "refresh token) must write a new one before this one expires: check that it "
                "runs."
            )
        return (
            f"Rotate the token (ALTER USER {self.user} ROTATE PROGRAMMATIC ACCESS TOKEN <name>) "
            f"and store the new one: vault kv patch {self.path} token=@pat.txt"
        )
