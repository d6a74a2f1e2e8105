"""From a Vault secret to Snowflake connect arguments.

A secret holds ``account``, ``user`` and one of ``private_key`` (with an optional
``private_key_passphrase``), ``token`` (a programmatic access token, or with
``authenticator: oauth`` an OAuth access token; see ``_tokens``) or ``password``, plus
optional ``role``, ``warehouse``, ``database`` and ``schema``. Field names can be
changed with :class:`SecretLayout`.

When a secret holds several, the order is key pair, then token, then password: key-pair
is the method Snowflake recommends for services, a token is what replaces a password,
and a leftover password should not silently win. What is not used is ignored (logged at
DEBUG, never shown); ``method`` says which was used.

:func:`parse_secret` is :func:`read_fields` (the checks on the fields, with their
messages) then :meth:`SecretFields.load_key`; the doctor runs the two as separate steps.

Parsing a key costs milliseconds, so :class:`CredentialStore` keeps the parsed
credentials beside the secret they came from and parses again only when Vault returns a
different secret.

Every credential read from a secret (the password, the token, the passphrase, the key as
stored and each line of its PEM) is registered with gds_vault's redaction filter when the fields are
read, and again each time the store hands the credentials out, so that the filter (which
keeps the most recently registered values) masks them for as long as they are in use.
The objects holding them refuse to be pickled (see ``_secret_holder``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gds_snowflake._errors import SnowflakeSecretError
from gds_snowflake._keys import LoadedKey, load_private_key
from gds_snowflake._secret_holder import SecretHolder
from gds_snowflake._tokens import TokenKind, checked_token, missing_token, token_kind

if TYPE_CHECKING:
    from gds_vault import VaultClient

logger = logging.getLogger(__name__)

MAX_FIELD_LENGTH = 65_536  # characters; no real credential field comes close
_PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")  # one base64 line of a PEM body


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretLayout:
    """The names of the fields in the Vault secret (override any of them)."""

    account: str = "account"
    user: str = "user"
    password: str = "password"  # noqa: S105 - a field name, not a password
    private_key: str = "private_key"
    private_key_passphrase: str = "private_key_passphrase"  # noqa: S105 - a field name
    token: str = "token"  # noqa: S105 - a field name: a programmatic access or OAuth token
    authenticator: str = "authenticator"  # "oauth" when the token is an OAuth access token
    role: str = "role"
    warehouse: str = "warehouse"
    database: str = "database"
    schema: str = "schema"


OPTIONAL_FIELDS = ("account", "role", "warehouse", "database", "schema")


@dataclass(frozen=True, slots=True, kw_only=True)
class _SecretBasics(SecretHolder):
    """What a secret says at every stage: whose it is, where to connect, the password or
    token. Not picklable (it holds the password, token or key)."""

    secret_path: str
    user: str
    account: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_kind: TokenKind | None = None  # what ``token`` is; None without a token
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SnowflakeCredentials(_SecretBasics):
    """What one secret says about how to connect. ``repr`` shows no password or key."""

    private_key: LoadedKey | None = None

    @property
    def method(self) -> str:
        """How the login authenticates: "key pair", "programmatic access token",
        "OAuth token" or "password"."""
        return _method(self.private_key is not None, self.token_kind)

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for snowflake.connector.connect (explicit arguments go on top)."""
        kwargs: dict[str, Any] = {"user": self.user}
        if self.private_key is not None:
            kwargs["private_key"] = self.private_key.der_pkcs8
        elif self.token is not None and self.token_kind is not None:
            kwargs["authenticator"] = self.token_kind.authenticator
            kwargs["token"] = self.token
        else:
            kwargs["password"] = self.password
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return kwargs


def _method(has_key: bool, kind: TokenKind | None) -> str:
    if has_key:
        return "key pair"
    return kind.method if kind is not None else "password"


def _field(secret: Mapping[str, Any], name: str, path: str) -> str | None:
    value = secret.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnowflakeSecretError(
            f"Field {name!r} of secret {path} is a {type(value).__name__}, not text; "
            f"store it as a string (vault kv patch {path} {name}=...)."
        )
    if len(value) > MAX_FIELD_LENGTH:
        raise SnowflakeSecretError(
            f"Field {name!r} of secret {path} is {len(value)} characters long, more than "
            f"any Snowflake credential ({MAX_FIELD_LENGTH}); check what was stored there."
        )
    value = value.strip()
    return value or None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretFields(_SecretBasics):
    """A secret's fields once checked, before its key is loaded (what the doctor shows
    step by step). ``repr`` shows no password, token, key or passphrase."""

    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    private_key_field: str = "private_key"  # its name in the secret, for messages

    @property
    def method(self) -> str:
        """The credential the login will use (see :attr:`SnowflakeCredentials.method`)."""
        return _method(self.private_key is not None, self.token_kind)

    def load_key(self) -> LoadedKey | None:
        """The private key, loaded and checked; None when the secret holds a password.

        Raises:
            PrivateKeyError: The key cannot be used (see gds_snowflake._keys).
        """
        if self.private_key is None:
            return None
        return load_private_key(
            self.private_key,
            self.private_key_passphrase,
            source=f"field {self.private_key_field!r} of secret {self.secret_path}",
        )


def _shown(name: object) -> str:
    """A field name as messages show it: characters that are not printable escaped, so
    a name chosen by whoever wrote the secret cannot drive the reader's terminal."""
    text = str(name)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def secret_values(fields: SecretFields) -> tuple[str, ...]:
    """The credentials among a secret's fields, as the redaction filter should know them:
    password, token, passphrase, the key as stored, and each base64 line of its PEM."""
    values = [fields.password, fields.token, fields.private_key_passphrase, fields.private_key]
    if fields.private_key is not None:
        for line in fields.private_key.replace("\\n", "\n").splitlines():
            if _PEM_LINE.match(line.strip()):
                values.append(line.strip())
    return tuple(value for value in values if value)


def _keep_registered(values: tuple[str, ...]) -> None:
    from gds_vault import register_secret  # gds_vault is imported on first use

    for value in values:
        register_secret(value)


def read_fields(secret: object, path: str, layout: SecretLayout) -> SecretFields:
    """Check a secret's fields, without loading its key; register its credentials with
    gds_vault's redaction filter.

    Raises:
        SnowflakeSecretError: A field is missing, empty, not text or absurdly long; the
            token to use is empty or not one line without spaces; ``authenticator``
            names something other than a token kind.
    """
    if not isinstance(secret, Mapping):
        raise SnowflakeSecretError(
            f"The secret at {path} is not a set of fields; write it with "
            f"`vault kv put {path} user=... private_key=@rsa_key.p8`."
        )
    present = ", ".join(sorted(map(_shown, secret))) or "none"
    user = _field(secret, layout.user, path)
    if user is None:
        raise SnowflakeSecretError(
            f"The secret at {path} has no {layout.user!r} field; add the Snowflake user "
            f"name (vault kv patch {path} {layout.user}=...). Fields present: {present}."
        )
    password = _field(secret, layout.password, path)
    key_text = _field(secret, layout.private_key, path)
    passphrase = _field(secret, layout.private_key_passphrase, path)
    token, kind = _token_of(secret, path, layout, has_key=key_text is not None)
    if password is None and key_text is None and token is None:
        raise SnowflakeSecretError(
            f"The secret at {path} has none of {layout.private_key!r}, {layout.token!r} or "
            f"{layout.password!r}; add one (key-pair is recommended for services). "
            f"Fields present: {present}."
        )
    optional = {name: _field(secret, getattr(layout, name), path) for name in OPTIONAL_FIELDS}
    fields = SecretFields(
        secret_path=path,
        user=user,
        password=password,
        token=token,
        token_kind=kind,
        private_key=key_text,
        private_key_passphrase=passphrase,
        private_key_field=layout.private_key,
        **optional,
    )
    _keep_registered(secret_values(fields))
    return fields


def _token_of(
    secret: Mapping[str, Any], path: str, layout: SecretLayout, *, has_key: bool
) -> tuple[str | None, TokenKind | None]:
    """The token and its kind when the login will use it (no key pair), checked; else None.

    With a key pair the token fields are not used, so not checked either: a leftover
    token never stops a working key-pair login.
    """
    authenticator = _field(secret, layout.authenticator, path)
    stored = layout.token in secret
    if has_key or (not stored and authenticator is None):
        return None, None
    kind = token_kind(authenticator, path=path, field=layout.authenticator)
    if not stored:
        raise missing_token(kind, path=path, field=layout.token, said_by=layout.authenticator)
    token = checked_token(_field(secret, layout.token, path), kind, path=path, field=layout.token)
    return token, kind


def parse_secret(secret: object, path: str, layout: SecretLayout) -> SnowflakeCredentials:
    """Check a secret's fields (registering its credentials for redaction) and load its key.

    Raises:
        SnowflakeSecretError: A field is missing, empty, not text or absurdly long, or
            the token is unusable (see :func:`read_fields`).
        PrivateKeyError: The key cannot be used (see gds_snowflake._keys).
    """
    return _credentials_of(read_fields(secret, path, layout))


def _credentials_of(fields: SecretFields) -> SnowflakeCredentials:
    path = fields.secret_path
    private_key = fields.load_key()
    method = fields.method  # key pair, then token, then password
    if fields.password is not None and method != "password":
        logger.debug("Secret %s also holds a password; using the %s", path, method)
    return SnowflakeCredentials(
        secret_path=path,
        user=fields.user,
        password=fields.password if method == "password" else None,
        token=fields.token,  # None when a key pair is used: its fields are not even read
        token_kind=fields.token_kind,
        private_key=private_key,
        **{name: getattr(fields, name) for name in OPTIONAL_FIELDS},
    )


class CredentialStore:
    """Parsed credentials per secret path for one VaultClient, re-parsed on change."""

    def __init__(self, client: VaultClient, layout: SecretLayout) -> None:
        self.client = client
        self.layout = layout
        # path -> (the secret, its credentials, the values registered for redaction)
        self._parsed: dict[str, tuple[dict[str, Any], SnowflakeCredentials, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> SnowflakeCredentials:
        """The credentials at ``path``: the Vault cache makes this microseconds when warm."""
        secret = self.client.get_secret(path)
        known = self._parsed.get(path)
        if known is not None and known[0] == secret:
            _keep_registered(known[2])  # in use again: kept by the redaction filter
            return known[1]
        fields = read_fields(secret, path, self.layout)
        credentials = _credentials_of(fields)
        with self._lock:
            self._parsed[path] = (secret, credentials, secret_values(fields))
        logger.debug(
            "Loaded Snowflake credentials from %s: user %s, %s",
            path,
            credentials.user,
            credentials.method
            if credentials.private_key is None
            else f"key pair ({credentials.private_key.key_type} "
            f"{credentials.private_key.public_key_fingerprint})",
        )
        return credentials

    def refresh(self, path: str) -> SnowflakeCredentials:
        """Read the secret from Vault again (it may have been rotated)."""
        self.client.invalidate(path)
        return self.get(path)


_stores: weakref.WeakKeyDictionary[Any, dict[SecretLayout, CredentialStore]] = (
    weakref.WeakKeyDictionary()
)
_stores_lock = threading.Lock()


def store_for(client: VaultClient, layout: SecretLayout) -> CredentialStore:
    """The shared store for a client and layout, so connections share parsed keys.

    The stores of clients closed since are dropped here, with the passwords and keys
    they parsed: a closed client's credentials are not kept for its lifetime.
    """
    with _stores_lock:
        for closed in [known for known in list(_stores) if getattr(known, "closed", False)]:
            del _stores[closed]
        per_client = _stores.setdefault(client, {})
        store = per_client.get(layout)
        if store is None:
            store = per_client[layout] = CredentialStore(client, layout)
        return store


def _after_fork_in_child() -> None:
    # A parent thread may have held these at fork time; the child starts with free locks.
    global _stores_lock
    _stores_lock = threading.Lock()
    for per_client in list(_stores.values()):
        for store in per_client.values():
            store._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
