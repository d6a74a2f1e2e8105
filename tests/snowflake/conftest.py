"""Fixtures for gds_snowflake tests: the Snowflake double, OpenBao, and wired-up users."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gds_snowflake.testing._double import RENEWAL_FAILURE_BODIES, SnowflakeDouble
from gds_vault import AppRoleAuth, RetryPolicy, VaultClient
from gds_vault.testing import OpenBaoServer

SNOWFLAKE_POLICY = """
path "secret/data/snowflake/*"     { capabilities = ["read"] }
path "secret/metadata/snowflake/*" { capabilities = ["list"] }
"""

# The connector line under test: 5 after the README's dev install, 4 in CI's second pass.
CONNECTOR_MAJOR = int(version("snowflake-connector-python").split(".")[0])
FORK_SAFE_CONNECTOR = CONNECTOR_MAJOR < 5  # see gds_snowflake._connector: 5.x hangs after fork



def expired_statement_errno(renewal_failure_body: str) -> int:
    """The errno a statement on an expired session raises when its renewal is refused.

    390114 everywhere, but for 5.x given a ``data`` object, which it cannot parse: 250001
    "Failed to refresh session" (the table in gds_snowflake._classify).
    """
    return 250001 if CONNECTOR_MAJOR >= 5 and renewal_failure_body == "data" else 390114


FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.0, deadline=10.0)

_ids = itertools.count()


def _no_backoff(*_args: Any, **_kwargs: Any) -> Iterator[int]:
    """A connector 4.x backoff policy that never waits (the connector retries 503 itself)."""
    while True:
        yield 0


def fast_connector_retries() -> dict[str, Any]:
    """Connect arguments that make the connector's own login retries immediate.

    4.x takes a backoff generator (``backoff_policy``) and tries a password login twice;
    5.x's native core ignores ``backoff_policy`` (with a DeprecationWarning), takes its
    backoff in milliseconds and tries every request 6 times, so it is told 2, as 4.x
    does for a password: the tests' counts of injected failures then hold on both lines.
    """
    from gds_snowflake._connector import known_parameters

    if "backoff_policy" in known_parameters():
        return {"backoff_policy": _no_backoff}
    return {"retry_backoff_base_ms": 1, "retry_backoff_cap_ms": 1, "retry_max_attempts": 2}


# `snowflake_double` (session) comes from the gds_snowflake.testing pytest plugin, the
# fixture users get; `openbao` from gds_vault.testing.


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: Any, passphrase: bytes | None = None, *, fmt: str = "pkcs8") -> str:
    """A private key as PEM text, optionally encrypted."""
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    form = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, form, encryption).decode()


@dataclass
class World:
    """OpenBao plus the double, with helpers to create users whose secrets live in Vault."""

    vault: OpenBaoServer
    snowflake: SnowflakeDouble
    clients: list[VaultClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> VaultClient:
        """A Vault client logged in with an AppRole allowed to read secret/snowflake/*."""
        role_options = {k: kwargs.pop(k) for k in ("token_ttl", "token_max_ttl") if k in kwargs}
        name = f"sf-role-{next(_ids)}"
        role_id, secret_id = self.vault.approle(name, policies=["snowflake"], **role_options)
        kwargs.setdefault("retry", FAST_RETRY)
        client = VaultClient(self.vault.addr, auth=AppRoleAuth(role_id, secret_id), **kwargs)
        self.clients.append(client)
        return client

    def user(self, *, password: str | None = None, key: Any = None, **secret_fields: str) -> tuple[str, str]:
        """Register a Snowflake user and store its secret; returns (user, secret path)."""
        name = f"USER_{next(_ids)}"
        public = key.public_key() if key is not None else None
        self.snowflake.register_user(name, password=password, public_key=public)
        secret: dict[str, str] = {"account": self.snowflake.account, "user": name}
        if password is not None:
            secret["password"] = password
        if key is not None and "private_key" not in secret_fields:
            secret["private_key"] = pem(key)
        secret.update(secret_fields)
        path = f"snowflake/{name.lower()}"
        self.vault.kv_put("secret", path, secret)
        return name, f"secret/{path}"

    def token_user(self, kind: str = "pat", **secret_fields: str) -> tuple[str, str, str]:
        """A user who logs in with a PAT (or, kind="oauth", an OAuth token) stored in
        Vault; returns (user, secret path, token)."""
        name = f"USER_{next(_ids)}"
        self.snowflake.register_user(name)
        if kind == "pat":
            token = self.snowflake.add_pat(name)
            secret = {"token": token}
        else:
            token = self.snowflake.issue_oauth_token(name)
            secret = {"token": token, "authenticator": "oauth"}
        secret = {"account": self.snowflake.account, "user": name, **secret, **secret_fields}
        path = f"snowflake/{name.lower()}"
        self.vault.kv_put("secret", path, secret)
        return name, f"secret/{path}", token

    def connect_kwargs(self) -> dict[str, Any]:
        """Where the double listens, plus a connector backoff that does not sleep."""
        kwargs = self.snowflake.connect_kwargs()
        kwargs.pop("account")  # the account comes from the secret
        kwargs.update(fast_connector_retries())
        return kwargs

    def secret_reads(self, mark: int, path: str) -> int:
        api_path = "secret/data/" + path.split("/", 1)[1]
        return len(self.vault.requests_since(mark, api_path))


@pytest.fixture(params=RENEWAL_FAILURE_BODIES)
def renewal_failure_body(
    request: pytest.FixtureRequest, snowflake_double: SnowflakeDouble
) -> Iterator[str]:
    """The double answers refused renewals with a ``data`` object, then ``data: null``."""
    before = snowflake_double.renewal_failure_body
    snowflake_double.set_renewal_failure_body(request.param)
    yield request.param
    snowflake_double.set_renewal_failure_body(before)


@pytest.fixture(scope="session")
def world_servers(openbao: OpenBaoServer, snowflake_double: SnowflakeDouble) -> World:
    openbao.write_policy("snowflake", SNOWFLAKE_POLICY)
    return World(openbao, snowflake_double)


@pytest.fixture
def world(world_servers: World) -> Iterator[World]:
    """The servers, with every Vault client made by a test closed afterwards."""
    yield world_servers
    for client in world_servers.clients:
        client.close()
    world_servers.clients.clear()
