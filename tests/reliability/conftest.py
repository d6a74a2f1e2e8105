"""Fixtures for the reliability tests: a fault proxy in front of OpenBao, bounded calls,
counted retries, and rows for RELIABILITY.md.

Every test here asserts outcomes (the typed error or the right data, bounded attempts,
no hang past the policy's deadline plus one timeout). The figures (attempts, seconds)
are also written as rows to the file named by ``RELIABILITY_ROWS`` when that variable
is set, which is how ``python -m tests.reliability.report`` builds RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gds_vault import AppRoleAuth, RetryPolicy, VaultClient
from gds_vault.testing import OpenBaoServer
from tests.fakevault import fake  # noqa: F401 - pytest-httpserver posing as Vault
from tests.reliability.faultproxy import FaultProxy

# The Snowflake world of tests/snowflake (users whose secrets live in OpenBao), reused
# here: pytest makes one more instance of its session fixtures for this folder.
from tests.snowflake import conftest as _snowflake_conftest
from tests.snowflake.conftest import rsa_key, world, world_servers  # noqa: F401

if hasattr(_snowflake_conftest, "snowflake_double"):  # else the gds_snowflake plugin's
    snowflake_double = _snowflake_conftest.snowflake_double

# Read at import: the autouse clean_environ fixture removes nothing with this name, but
# the report command sets it for the whole pytest process.
ROWS_FILE = os.environ.get("RELIABILITY_ROWS")

RELIABILITY_POLICY = """
path "secret/data/reliability/*" { capabilities = ["read"] }
path "secret/metadata/reliability/*" { capabilities = ["list"] }
"""
SECRET = {"user": "REL_USER", "password": "pw-reliability-1"}
SECRET_PATH = "secret/reliability/app"
SLACK = 2.0  # seconds allowed past deadline + one timeout for thread scheduling on CI

_names = itertools.count()


class CountingSleep:
    """A RetryPolicy ``sleep`` that really sleeps and counts (so attempts = waits + 1)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)

    def reset(self) -> None:
        self.waits.clear()


def fast_policy(
    sleep: CountingSleep, *, attempts: int = 4, deadline: float = 3.0, max_wait: float = 0.4
) -> RetryPolicy:
    """Real backoff, scaled down: 50 ms doubling to ``max_wait``, 20 ms jitter."""
    return RetryPolicy(
        attempts=attempts,
        initial_wait=0.05,
        max_wait=max_wait,
        jitter=0.02,
        deadline=deadline,
        sleep=sleep,
    )


SCALE = 0.2  # scaled cases: every duration of the default policy's shape times this


def default_shape(sleep: Callable[[float], None], scale: float = 1.0) -> RetryPolicy:
    """RetryPolicy() with every duration multiplied by ``scale`` (1: the defaults as they
    are) and a counting ``sleep``: the default policy's shape, in scaled time."""
    default = RetryPolicy()
    return dataclasses.replace(
        default,
        initial_wait=default.initial_wait * scale,
        max_wait=default.max_wait * scale,
        jitter=default.jitter * scale,
        deadline=default.deadline * scale,
        sleep=sleep,
    )


@dataclass
class Outcome:
    """What a caller saw: a value or a typed error, and how long it took."""

    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def saw(self) -> str:
        if self.error is None:
            return "success"
        text = " ".join(str(self.error).split())
        return f"{type(self.error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def bounded(call: Callable[[], Any], limit: float) -> Outcome:
    """Run ``call`` in a thread; fail the test (a hang) if it has not returned by ``limit``."""
    outcome = Outcome()
    started = time.monotonic()

    def run() -> None:
        try:
            outcome.value = call()
        except Exception as exc:
            outcome.error = exc
        outcome.seconds = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"hang: the call had not returned after {limit:.1f} s", pytrace=False)
    return outcome


def write_row(table: str, **row: Any) -> None:
    """Append one row of figures for the report (only when RELIABILITY_ROWS is set)."""
    if not ROWS_FILE:
        return
    with open(ROWS_FILE, "a", encoding="utf-8") as rows:
        rows.write(json.dumps({"table": table, **row}, default=str) + "\n")


@dataclass
class Rel:
    """The session's OpenBao server provisioned for these tests, and a fault proxy to it."""

    server: OpenBaoServer
    proxy: FaultProxy
    clients: list[VaultClient] = field(default_factory=list)

    def role(self, **options: Any) -> tuple[str, AppRoleAuth]:
        """A new AppRole allowed to read secret/reliability/*: (name, auth)."""
        name = f"rel-role-{next(_names)}"
        role_id, secret_id = self.server.approle(name, policies=["rel-reader"], **options)
        return name, AppRoleAuth(role_id, secret_id)

    def client(
        self, *, direct: bool = False, auth: AppRoleAuth | None = None, **kwargs: Any
    ) -> VaultClient:
        """A client through the proxy (or ``direct``ly), closed after the test."""
        kwargs.setdefault("timeout", 0.5)
        kwargs.setdefault("cache_ttl", 0)
        client = VaultClient(
            self.server.addr if direct else self.proxy.addr,
            auth=auth or self.role()[1],
            **kwargs,
        )
        self.clients.append(client)
        return client

    def logins_since(self, mark: int) -> int:
        return len(self.server.requests_since(mark, "auth/approle/login"))


@pytest.fixture(scope="session")
def rel_servers(openbao: OpenBaoServer) -> Iterator[Rel]:
    openbao.write_policy("rel-reader", RELIABILITY_POLICY)
    openbao.kv_put("secret", "reliability/app", SECRET)
    with FaultProxy(("127.0.0.1", openbao.port)) as proxy:
        yield Rel(openbao, proxy)


@pytest.fixture
def rel(rel_servers: Rel) -> Iterator[Rel]:
    """The server and proxy (passing through); clients are closed after the test."""
    rel_servers.proxy.set("pass")
    yield rel_servers
    rel_servers.proxy.set("pass")
    for client in rel_servers.clients:
        client.close()
    rel_servers.clients.clear()


@pytest.fixture
def sleeps() -> CountingSleep:
    return CountingSleep()
