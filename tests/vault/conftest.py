"""Fixtures for gds_vault tests: a provisioned OpenBao dev server and client factories."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from gds_vault import AppRoleAuth, RetryPolicy, VaultClient
from gds_vault.testing import OpenBaoServer
from tests.fakevault import fake  # noqa: F401 - pytest-httpserver posing as Vault

READER_POLICY = """
path "secret/data/*"     { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["list"] }
path "kv1/*"             { capabilities = ["read", "list"] }
"""
NARROW_POLICY = """
path "secret/data/team-a/*" { capabilities = ["read"] }
"""

_names = itertools.count()


@dataclass
class Provisioned:
    """The dev server plus names of what the tests set up on it."""

    server: OpenBaoServer

    @property
    def addr(self) -> str:
        return self.server.addr

    def role(self, policies: tuple[str, ...] = ("reader",), **options: object) -> AppRoleAuth:
        """A new AppRole with these policies, as an AppRoleAuth ready to use."""
        name = f"role{next(_names)}"
        role_id, secret_id = self.server.approle(name, policies=policies, **options)
        return AppRoleAuth(role_id, secret_id)


@pytest.fixture(scope="session")
def vault(openbao: OpenBaoServer) -> Provisioned:
    """The session's OpenBao server with KV v1 and v2 mounts, policies and secrets."""
    openbao.enable_kv("kv1", version=1)
    openbao.write_policy("reader", READER_POLICY)
    openbao.write_policy("narrow", NARROW_POLICY)
    openbao.kv_put("secret", "snowflake/etl", {"account": "acme", "user": "ETL", "password": "pw-etl-1"})
    openbao.kv_put("secret", "team-a/app", {"token": "abc"})
    openbao.kv_put("kv1", "snowflake/etl", {"user": "ETL_V1", "password": "pw-v1", "ttl": "45s"}, version=1)
    return Provisioned(openbao)


FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, jitter=0.0, deadline=5.0)


@pytest.fixture
def make_client(vault: Provisioned) -> Iterator[Callable[..., VaultClient]]:
    """Build clients against the dev server; all are closed after the test."""
    made: list[VaultClient] = []

    def make(auth: object = None, **kwargs: object) -> VaultClient:
        kwargs.setdefault("retry", FAST_RETRY)
        client = VaultClient(vault.addr, auth=auth or vault.role(), **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@dataclass
class FilteringProxy:
    """An HTTP proxy in front of the real server that answers chosen paths itself."""

    addr: str
    blocked: list[str]


@pytest.fixture
def mounts_forbidden_proxy(vault: Provisioned, httpserver) -> FilteringProxy:
    """The real server, except that sys/internal/ui/mounts/* answers 403 (as some
    proxies and older servers do; OpenBao's own policies cannot forbid it)."""
    import requests
    from werkzeug.wrappers import Response

    session = requests.Session()
    session.trust_env = False
    proxy = FilteringProxy(addr=httpserver.url_for("").rstrip("/"), blocked=[])

    def forward(request):
        if request.path.startswith("/v1/sys/internal/ui/mounts/"):
            proxy.blocked.append(request.path)
            return Response('{"errors":["permission denied"]}', 403, content_type="application/json")
        upstream = session.request(
            request.method,
            vault.addr + request.full_path.rstrip("?"),
            data=request.get_data(),
            headers={k: v for k, v in request.headers if k.lower().startswith("x-vault")},
            timeout=10,
        )
        return Response(upstream.content, upstream.status_code, content_type="application/json")

    import re

    httpserver.expect_request(re.compile(".*")).respond_with_handler(forward)
    return proxy
