"""Test users: a Snowflake user registered with the double, its secret and AppRole in OpenBao.

:func:`create_snowflake_user` makes one; the ``make_snowflake_user`` fixture of
:mod:`gds_snowflake.testing` calls it and closes what it made after the test.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gds_snowflake.testing._token_users import KINDS, TokenUserHelpers, token_fields

if TYPE_CHECKING:
    import pytest

    from gds_snowflake._connection import VaultSnowflakeConnection
    from gds_snowflake.testing._double import SnowflakeDouble
    from gds_vault import VaultClient
    from gds_vault.testing import OpenBaoServer

DEFAULT_MOUNT = "secret"  # the KV v2 mount every OpenBao dev server has
_ids = itertools.count(1)


def _new_private_key(kind: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key must be 'rsa', 'ec' or a cryptography private key, not {kind!r}")


def _pem(key: Any, passphrase: str | None) -> str:
    from cryptography.hazmat.primitives import serialization

    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return pem.decode("ascii")


def _split(secret_path: str) -> tuple[str, str]:
    mount, _, path = secret_path.strip("/").partition("/")
    if not path:
        raise ValueError(
            f"secret_path must be MOUNT/PATH, e.g. 'secret/snowflake/etl', not {secret_path!r}"
        )
    return mount, path


@dataclass(eq=False)
class SnowflakeTestUser(TokenUserHelpers):
    """A Snowflake user registered with the double whose secret lives in OpenBao.

    Made by :func:`create_snowflake_user` or the ``make_snowflake_user`` fixture.
    Passwords, keys, tokens and the AppRole secret_id are left out of ``repr``. The
    token helpers (``rotate_pat()``, ``refresh_oauth_token()``...) are
    :class:`~gds_snowflake.testing._token_users.TokenUserHelpers`'.
    """

    name: str
    secret_path: str
    vault: OpenBaoServer = field(repr=False)
    double: SnowflakeDouble = field(repr=False)
    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)
    secret: dict[str, str] = field(repr=False)
    private_key: Any = field(default=None, repr=False)  #: a cryptography private key, or None
    key_slot: int = 1  #: the double's key slot holding the current public key
    _clients: list[VaultClient] = field(default_factory=list, repr=False)
    _env_applied: bool = field(default=False, repr=False)

    # -- what a job needs --------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """What a job reads: VAULT_ADDR, VAULT_ROLE_ID, VAULT_SECRET_ID, SNOWFLAKE_VAULT_PATH."""
        return {
            "VAULT_ADDR": self.vault.addr,
            "VAULT_ROLE_ID": self.role_id,
            "VAULT_SECRET_ID": self.secret_id,
            "SNOWFLAKE_VAULT_PATH": self.secret_path,
        }

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Set :meth:`env` for this test and make the default Vault client follow it.

        The process-wide client (used by ``get_snowflake_connection()`` without
        ``vault_client``) is rebuilt from these variables on next use.
        """
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        _reset_default_client()
        self._env_applied = True

    def connect_kwargs(self) -> dict[str, Any]:
        """Where the double listens (host, port, protocol, ...); the account comes from Vault."""
        kwargs = self.double.connect_kwargs()
        kwargs.pop("account")
        return kwargs

    @property
    def vault_client(self) -> VaultClient:
        """A Vault client logged in with this user's AppRole (one per user, closed for you)."""
        if not self._clients:
            self._clients.append(self.new_vault_client())
        return self._clients[0]

    def new_vault_client(self, **kwargs: Any) -> VaultClient:
        """Another client with this user's AppRole; ``kwargs`` go to ``VaultClient``."""
        from gds_vault import AppRoleAuth, VaultClient

        auth = AppRoleAuth(self.role_id, self.secret_id)
        client = VaultClient(self.vault.addr, auth=auth, **kwargs)
        self._clients.append(client)
        return client

    def connect(self, **kwargs: Any) -> VaultSnowflakeConnection:
        """``get_snowflake_connection`` for this user, against the double."""
        from gds_snowflake import get_snowflake_connection

        return get_snowflake_connection(
            self.secret_path, vault_client=self.vault_client, **{**self.connect_kwargs(), **kwargs}
        )

    # -- what security and Snowflake do to it -------------------------------------------
    def write_secret(self, **fields: str | None) -> None:
        """Change fields of the secret in Vault (None removes one), as a new KV version."""
        for name, value in fields.items():
            if value is None:
                self.secret.pop(name, None)
            else:
                self.secret[name] = value
        mount, path = _split(self.secret_path)
        self.vault.kv_put(mount, path, self.secret)

    def rotate_password(self, new_password: str | None = None) -> str:
        """Set a new password in Snowflake, then in Vault (as a rotation job does); returns it."""
        password = new_password or "pw-" + secrets.token_urlsafe(18)
        self.double.set_password(self.name, password)
        self.write_secret(password=password)
        return password

    def rotate_key(
        self, key: Any = "rsa", *, keep_old: bool = False, passphrase: str | None = None
    ) -> Any:
        """Key-pair rotation: new public key in the free slot, new private key in Vault.

        Args:
            key: ``"rsa"``, ``"ec"``, or a cryptography private key.
            keep_old: Leave the old public key set (the overlap window of a real rotation);
                by default it is unset, so the old private key stops working.
            passphrase: Encrypt the stored PEM with it (and store it beside).

        Returns:
            The new private key.
        """
        private_key = _new_private_key(key) if isinstance(key, str) else key
        old_slot, new_slot = self.key_slot, 2 if self.key_slot == 1 else 1
        self.double.set_public_key(self.name, private_key.public_key(), slot=new_slot)
        self.write_secret(
            private_key=_pem(private_key, passphrase), private_key_passphrase=passphrase
        )
        if not keep_old:
            self.double.unset_public_key(self.name, slot=old_slot)
        self.private_key, self.key_slot = private_key, new_slot
        return private_key

    def expire_sessions(self, *, renewable: bool = False) -> int:
        """Expire this user's Snowflake sessions (see ``SnowflakeDouble.expire_sessions``)."""
        return self.double.expire_sessions(self.name, renewable=renewable)

    @property
    def login_count(self) -> int:
        """Successful Snowflake logins of this user so far."""
        return self.double.login_count(self.name)

    @property
    def failed_login_count(self) -> int:
        """Logins the double refused (wrong password or key) for this user so far."""
        return self.double.failed_login_count(self.name)

    def close(self) -> None:
        """Close the Vault clients made through this user."""
        for client in self._clients:
            client.close()
        self._clients.clear()


def create_snowflake_user(
    vault: OpenBaoServer,
    double: SnowflakeDouble,
    name: str | None = None,
    *,
    kind: str | None = None,
    password: str | None = None,
    key: Any = None,
    passphrase: str | None = None,
    secret_path: str | None = None,
    role_options: Mapping[str, Any] | None = None,
    **fields: str,
) -> SnowflakeTestUser:
    """Register a user with the double, store its secret in OpenBao, make its AppRole.

    Args:
        vault: A running OpenBaoServer (the ``openbao`` fixture).
        double: A running SnowflakeDouble (the ``snowflake_double`` fixture).
        name: The Snowflake user (default: a unique ``TEST_USER_<n>``).
        kind: How the user logs in: ``"password"``, ``"key"`` (an RSA key pair unless
            ``key`` says otherwise), ``"pat"`` (a programmatic access token in the
            secret's ``token`` field) or ``"oauth"`` (an OAuth access token, with
            ``authenticator: oauth``). Default: what ``password`` and ``key`` say.
        password: Its password. With neither password, key nor a token kind, a random
            password.
        key: ``"rsa"`` or ``"ec"`` for a new key pair, or a cryptography private key;
            its PEM (PKCS#8) goes to the secret's ``private_key`` field.
        passphrase: Encrypt that PEM and store the passphrase beside it.
        secret_path: Where the secret goes (default ``secret/snowflake/<name>``); its
            mount must be KV v2 (created if missing).
        role_options: AppRole options, e.g. ``{"token_ttl": "30s"}``.
        **fields: More secret fields: ``role``, ``warehouse``, ``database``, ``schema``...

    Returns:
        The user, with its AppRole credentials and helpers.
    """
    name = name or f"TEST_USER_{next(_ids)}"
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "key" and key is None:
        key = "rsa"
    if password is None and key is None and kind not in ("pat", "oauth"):
        password = "pw-" + secrets.token_urlsafe(18)
    private_key = None
    if key is not None:
        private_key = _new_private_key(key) if isinstance(key, str) else key
    double.register_user(
        name,
        password=password,
        public_key=private_key.public_key() if private_key is not None else None,
    )
    secret_path = secret_path or f"{DEFAULT_MOUNT}/snowflake/{name.lower()}"
    mount, path = _split(secret_path)
    if mount != DEFAULT_MOUNT:
        vault.enable_kv(mount, version=2)
    secret: dict[str, str] = {"account": double.account, "user": name}
    if password is not None:
        secret["password"] = password
    if private_key is not None:
        secret["private_key"] = _pem(private_key, passphrase)
        if passphrase:
            secret["private_key_passphrase"] = passphrase
    if kind in ("pat", "oauth"):
        secret.update(token_fields(double, name, kind))
    secret.update(fields)
    vault.kv_put(mount, path, secret)
    role = f"gds-snowflake-{name.lower().replace('_', '-')}"
    vault.write_policy(role, f'path "{mount}/data/{path}" {{ capabilities = ["read"] }}\n')
    role_id, secret_id = vault.approle(role, policies=[role], **dict(role_options or {}))
    return SnowflakeTestUser(
        name=name,
        secret_path=secret_path,
        vault=vault,
        double=double,
        role_id=role_id,
        secret_id=secret_id,
        secret=secret,
        private_key=private_key,
    )


def _reset_default_client() -> None:
    """Close the process-wide Vault client; the next use builds one from the environment."""
    from gds_vault import reset_default_client

    reset_default_client()
