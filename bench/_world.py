"""The servers the benchmarks run against: a local OpenBao dev server and the double.

Both are started by the benchmark itself, on loopback, exactly as the tests start them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from gds_snowflake.testing import SnowflakeDouble
from gds_vault import AppRoleAuth, VaultClient
from gds_vault.testing import OpenBaoServer

POLICY = """
path "secret/data/bench/*"     { capabilities = ["read"] }
path "secret/metadata/bench/*" { capabilities = ["list"] }
"""
SECRET_PATH = "secret/bench/app"  # noqa: S105 - a path, as `vault kv` writes it
SECRET_MOUNT, SECRET_REST = "secret", "bench/app"
SECRET = {
    "user": "APP",
    "password": "not-a-real-password",
    "url": "https://api.example.com",
}
SF_PATH = "secret/bench/snowflake"
SF_USER = "BENCH_ETL"

LOGIN = "auth/approle/login"
READ = "secret/data/bench/app"
SF_READ = "secret/data/bench/snowflake"
MOUNTS_PREFIX = "sys/internal/ui/mounts/"


@dataclass
class World:
    vault: OpenBaoServer
    snowflake: SnowflakeDouble
    role_id: str = ""
    secret_id: str = ""
    sf_password: str = ""
    _clients: list[VaultClient] = field(default_factory=list)

    def auth(self) -> AppRoleAuth:
        return AppRoleAuth(self.role_id, self.secret_id)

    def client(self, **kwargs: Any) -> VaultClient:
        """A new gds_vault client with its own login (nothing cached)."""
        client = VaultClient(self.vault.addr, auth=self.auth(), **kwargs)
        self._clients.append(client)
        return client

    def hvac_client(self) -> Any:
        """A new hvac client logged in with the same AppRole."""
        import hvac

        client = hvac.Client(url=self.vault.addr)
        client.session.trust_env = False  # as gds_vault: no ambient CA or netrc settings
        client.auth.approle.login(role_id=self.role_id, secret_id=self.secret_id)
        return client

    def hvac_read(self, client: Any) -> dict[str, Any]:
        answer = client.secrets.kv.v2.read_secret_version(
            path=SECRET_REST, mount_point=SECRET_MOUNT, raise_on_deleted_version=True
        )
        return answer["data"]["data"]  # type: ignore[no-any-return]

    def sf_connect_kwargs(self) -> dict[str, Any]:
        """Where the double listens (the account comes from the secret)."""
        kwargs = self.snowflake.connect_kwargs()
        kwargs.pop("account")
        return kwargs

    def count(self, mark: int) -> dict[str, int]:
        """Vault requests since ``mark`` from the audit log, by kind."""
        counts = {"login": 0, "read": 0, "mounts": 0, "other": 0, "total": 0}
        for entry in self.vault.requests_since(mark):
            path = (entry.get("request") or {}).get("path", "")
            if path == LOGIN:
                counts["login"] += 1
            elif path in (READ, SF_READ):
                counts["read"] += 1
            elif path.startswith(MOUNTS_PREFIX):
                counts["mounts"] += 1
            else:
                counts["other"] += 1
            counts["total"] += 1
        return counts

    def close(self) -> None:
        for client in self._clients:
            client.close()


def start() -> tuple[World, list[Any]]:
    """Start and provision both servers; returns the world and what to stop afterwards."""
    # Both servers are on loopback; a proxy from the environment must not sit in between.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1,localhost"]))
    # Nor may connector 5.x probe cloud metadata endpoints at every login.
    os.environ["SNOWFLAKE_DISABLE_PLATFORM_DETECTION"] = "true"
    vault = OpenBaoServer().start()
    snowflake = SnowflakeDouble()
    try:
        snowflake.start()
    except BaseException:
        vault.cleanup()
        raise
    world = World(vault, snowflake)
    vault.write_policy("bench", POLICY)
    vault.kv_put(SECRET_MOUNT, SECRET_REST, SECRET)
    world.role_id, world.secret_id = vault.approle(
        "bench",
        policies=["bench"],
        token_ttl="1h",  # noqa: S106 - a duration, not a password
    )
    world.sf_password = secrets.token_urlsafe(16)
    snowflake.register_user(SF_USER, password=world.sf_password)
    vault.kv_put(
        SECRET_MOUNT,
        "bench/snowflake",
        {"account": snowflake.account, "user": SF_USER, "password": world.sf_password},
    )
    return world, [world.close, snowflake.stop, vault.cleanup]
