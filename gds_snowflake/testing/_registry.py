"""The Snowflake double's users, sessions and counters (see ``gds_snowflake.testing._double``).

Users are registered with a password, kept only as a SHA-256 digest, and up to two
public keys (slots 1 and 2, as RSA_PUBLIC_KEY and RSA_PUBLIC_KEY_2): RSA, or EC on P-256,
P-384 or P-521, given as PEM, as Snowflake's bare base64 DER, or as a key object. Each
key is stored with the JWT algorithm the connector signs with for it (RS256, ES256,
ES384, ES512) and its fingerprint as the connector puts it in a JWT's ``iss``; and
programmatic access tokens and OAuth access tokens, as digests (``_token_store``). The
:class:`Registry` also keeps the sessions (by session token, with their master token and
whether they expired, renewably or not), the per-user login counts and the injected
login failures still to answer, and the shape of a failed renewal's answer. It lives in
the double's server process; one lock guards it all, whichever of the server's threads
calls it. Names are case-insensitive, as unquoted Snowflake names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from gds_snowflake.testing._token_store import OK, Token, check_token

__all__ = ["Registry", "User", "digest", "load_key", "norm", "public_key_fingerprint"]

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def public_key_fingerprint(key: Any) -> str:
    """Snowflake's fingerprint of a public key, as the connector puts it in ``iss``.

    Args:
        key: a cryptography public key object.

    Returns:
        ``"SHA256:"`` and the base64 SHA-256 of the DER SubjectPublicKeyInfo.
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Key:
    public_key: Any = field(repr=False)
    algorithm: str
    fingerprint: str


def load_key(key: Any) -> _Key:
    """A registered key from PEM, Snowflake's bare base64 DER form, or a key object."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, str):
        key = key.encode("ascii")
    if isinstance(key, bytes):
        if b"-----BEGIN" in key:
            key = serialization.load_pem_public_key(key)
        else:  # what ALTER USER ... SET RSA_PUBLIC_KEY='MIIB...' takes
            key = serialization.load_der_public_key(base64.b64decode(b"".join(key.split())))
    if isinstance(key, rsa.RSAPublicKey):
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        algorithm = _EC_ALGORITHMS[key.curve.name]
    else:
        raise TypeError(
            f"public_key must be an RSA or EC (P-256/384/521) public key, as PEM or a "
            f"cryptography key object, not {type(key).__name__}"
        )
    return _Key(key, algorithm, public_key_fingerprint(key))


def digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()


@dataclass(slots=True)
class User:
    password_digest: bytes | None = field(default=None, repr=False)
    keys: dict[int, _Key] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)  # PATs and OAuth tokens, as digests


@dataclass(slots=True)
class _Session:
    user: str
    master_token: str = field(repr=False)
    session_id: int = 0
    expired: bool = False
    renewable: bool = False


def norm(name: str) -> str:
    # Unquoted Snowflake identifiers are case-insensitive; the connector upper-cases the
    # user in the JWT but sends LOGIN_NAME as typed.
    return name.upper()


class Registry:
    """Users, sessions and counters of one double (in its server process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: dict[str, User] = {}
        self.sessions: dict[str, _Session] = {}  # by session token
        self.logins: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.pending_failures = 0
        self.failure_status = 503
        self.renewal_failure_body = "data"  # or "null": see RENEWAL_FAILURE_BODIES in _app
        self.session_ids = itertools.count(1)
        # Users taken from PostgreSQL (testing._postgres): the checker, and for each user
        # (by normalised name) the role name as PostgreSQL knows it.
        self.postgres: Any = None
        self.postgres_names: dict[str, str] = {}

    def user(self, name: str) -> User:
        try:
            return self.users[norm(name)]
        except KeyError:
            raise KeyError(f"no user {name!r} is registered with the Snowflake double") from None

    def take_injected_failure(self) -> int | None:
        with self.lock:
            if self.pending_failures <= 0:
                return None
            self.pending_failures -= 1
            return self.failure_status

    def check_password(self, name: str, password: object) -> bool:
        with self.lock:
            user = self.users.get(name)
            expected = user.password_digest if user else None
        if not isinstance(password, str):
            return False
        if expected is not None and hmac.compare_digest(expected, digest(password)):
            return True
        # Snowflake takes a programmatic access token in place of the password too.
        return self.check_token(name, "pat", password) == OK

    def check_token(self, name: str, kind: str, token: object) -> str:
        """``_token_store.OK``, ``INVALID`` or ``EXPIRED`` for a token presented at login."""
        with self.lock:
            user = self.users.get(name)
            return check_token(user.tokens if user else [], kind, token)

    def keys_of(self, name: str) -> list[_Key]:
        with self.lock:
            user = self.users.get(name)
            return list(user.keys.values()) if user else []

    def count_failure(self, name: str) -> None:
        with self.lock:
            self.failed[name] = self.failed.get(name, 0) + 1

    def open_session(self, token: str, name: str) -> tuple[str, int]:
        master = secrets.token_urlsafe(32)
        with self.lock:
            session_id = next(self.session_ids)
            self.sessions[token] = _Session(name, master, session_id)
            self.logins[name] = self.logins.get(name, 0) + 1
            return master, session_id

    def is_expired(self, token: str) -> bool:
        with self.lock:
            session = self.sessions.get(token)
            return session is not None and session.expired

    def expire(self, name: str | None, *, renewable: bool) -> tuple[int, list[str]]:
        """Marks sessions expired: how many, and the tokens whose fakesnow session can go."""
        with self.lock:
            hit = [
                (token, s)
                for token, s in self.sessions.items()
                if not s.expired and (name is None or s.user == name)
            ]
            for _, s in hit:
                s.expired, s.renewable = True, renewable
            return len(hit), [token for token, _ in hit if not renewable]

    def renew(self, master: str) -> tuple[str, str, str, int] | None:
        """(old token, new token, new master, session id) for a renewable session, else None."""
        with self.lock:
            found = [(t, s) for t, s in self.sessions.items() if s.master_token == master]
            if not found:
                return None
            token, session = found[0]
            if session.expired and not session.renewable:
                return None
            new_token, new_master = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            del self.sessions[token]
            self.sessions[new_token] = _Session(session.user, new_master, session.session_id)
            return token, new_token, new_master, session.session_id

    def postgres_role_of(self, token: str) -> tuple[str, str] | None:
        """(user, PostgreSQL role) of the session with this session or master token, when
        its user was taken from PostgreSQL; else None."""
        with self.lock:
            if not self.postgres_names:
                return None
            session = self.sessions.get(token)
            if session is None:
                session = next((s for s in self.sessions.values() if s.master_token == token), None)
            if session is None or session.expired or session.user not in self.postgres_names:
                return None
            return session.user, self.postgres_names[session.user]

    def forget(self, token: str) -> None:
        with self.lock:
            self.sessions.pop(token, None)

    def drop_all_sessions(self) -> list[str]:
        """Forgets every session; returns their tokens."""
        with self.lock:
            tokens = list(self.sessions)
            self.sessions.clear()
            return tokens
