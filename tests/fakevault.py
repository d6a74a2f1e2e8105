"""pytest-httpserver posing as Vault, for answers a real server will not give on demand.

Shared by tests/vault/test_faults.py (the details of each status), the fault matrix and
the bad-input tests of tests/reliability. The fake answers the requests a first
``get_secret`` makes with a token: the token login's ``auth/token/lookup-self``, the
mount detection ``sys/internal/ui/mounts/<path>``, then the KV v2 read
``secret/data/<path>``; each test breaks the one it is about. ``approle_logins`` serves
AppRole logins handing out numbered tokens, for the tests that need real logins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from gds_vault import RetryPolicy, TokenAuth, VaultClient

TOKEN = "s.faketoken-not-real-xxxxxxxxx"
SECRET_PATH = "secret/app"
DATA = "/v1/secret/data/app"
LOOKUP = "/v1/auth/token/lookup-self"
MOUNTS = "/v1/sys/internal/ui/mounts/secret/app"
LOGIN = "/v1/auth/approle/login"
SECRET = {"user": "ETL", "password": "pw-fake-1"}
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>nginx/1.25.3</center></body></html>"
)


def vault_errors(*errors: str) -> str:
    """A body in Vault's error format."""
    return json.dumps({"errors": list(errors)})


class FakeVault:
    """pytest-httpserver answering like a healthy Vault, unless a test says otherwise."""

    def __init__(self, httpserver: Any) -> None:
        self.http = httpserver
        self.sleeps: list[float] = []
        self.clients: list[VaultClient] = []
        httpserver.expect_request(LOOKUP, method="GET").respond_with_json(
            {"data": {"ttl": 0, "renewable": False, "type": "service", "policies": ["reader"]}}
        )
        httpserver.expect_request(MOUNTS, method="GET").respond_with_json(
            {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}
        )

    @property
    def addr(self) -> str:
        return str(self.http.url_for("")).rstrip("/")

    def serve_secret(self) -> None:
        """From now on (after any one-shot faults), the secret is there."""
        self.http.expect_request(DATA, method="GET").respond_with_json(
            {"data": {"data": SECRET, "metadata": {"version": 1}}}
        )

    def fail_once(
        self,
        status: int,
        body: str = "",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next read of the secret gets this answer (one-shot answers go first)."""
        self.http.expect_oneshot_request(DATA, method="GET").respond_with_response(
            Response(body, status=status, content_type=content_type, headers=headers)
        )

    def fail_always(
        self,
        status: int,
        body: str = "",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.http.expect_request(DATA, method="GET").respond_with_response(
            Response(body, status=status, content_type=content_type, headers=headers)
        )

    def client(
        self,
        *,
        attempts: int = 3,
        deadline: float = 5.0,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> VaultClient:
        """A token client of the fake, uncached; its retries are recorded in ``sleeps``
        (instant), unless ``retry`` gives a policy of the test's own."""
        if retry is None:
            retry = RetryPolicy(
                attempts=attempts,
                initial_wait=0.01,
                max_wait=0.05,
                jitter=0.0,
                deadline=deadline,
                sleep=self.sleeps.append,
            )
        kwargs.setdefault("auth", TokenAuth(TOKEN))
        kwargs.setdefault("cache_ttl", 0)
        client = VaultClient(self.addr, retry=retry, **kwargs)
        self.clients.append(client)
        return client

    def count(self, path: str) -> int:
        """Requests the fake has answered for ``path``."""
        return sum(1 for request, _ in self.http.log if request.path == path)


def approle_logins(httpserver: Any, *, ttl: int = 3600, label: str = "approle") -> list[int]:
    """Serve AppRole logins, each handing out a new numbered token valid ``ttl`` seconds;
    the returned list grows by one per login."""
    logins: list[int] = []

    def login(request: Request) -> Response:
        logins.append(len(logins) + 1)
        auth = {
            "client_token": f"s.fake-{label}-token-{len(logins):08d}",
            "lease_duration": ttl,
            "renewable": True,
            "token_policies": ["reader"],
        }
        return Response(json.dumps({"auth": auth}), content_type="application/json")

    httpserver.expect_request(LOGIN, method="POST").respond_with_handler(login)
    return logins


@pytest.fixture
def fake(httpserver: Any) -> Iterator[FakeVault]:
    """A fake Vault on pytest-httpserver; its clients are closed after the test."""
    vault = FakeVault(httpserver)
    yield vault
    for client in vault.clients:
        client.close()
