"""The token cache across real processes, started by fork and by spawn, against OpenBao.

Each process is a fresh task: it builds its own client from the environment (as an
Airflow task or a cron job does), and every figure comes from the server's audit log:
N processes starting cold together cause one login and one KV mount lookup; a process
started after them costs one request, the read itself; after the token is revoked, the
processes that find it dead cause one login between them; two roles never share a token.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
import warnings
from collections import Counter
from typing import Any

import pytest

from tests.vault.token_cache_support import SECRET, SECRET_PATH
from tests.vault.token_cache_workers import read_secret

pytestmark = pytest.mark.timeout(180)

_roles = itertools.count()


def _environ(vault, auth_role: tuple[str, str], cache_dir) -> dict[str, str]:
    role_id, secret_id = auth_role
    return {
        "VAULT_ADDR": vault.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "GDS_VAULT_TOKEN_CACHE": str(cache_dir),
    }


def _new_role(vault) -> tuple[str, str]:
    return vault.server.approle(f"cache-procs-{next(_roles)}", policies=["reader"])


def run_processes(method: str, environs: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One process per environment, all reading at once after a barrier; their reports."""
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    barrier = context.Barrier(len(environs))
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads running; that is a case under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        workers = [
            context.Process(target=read_secret, args=(queue, barrier, SECRET_PATH, env))
            for env in environs
        ]
        for worker in workers:
            worker.start()
    try:
        reports = [queue.get(timeout=150) for _ in workers]
    finally:  # a hung worker fails the test instead of hanging the suite at exit
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    assert [worker.exitcode for worker in workers] == [0] * len(workers)
    assert [r.get("error") for r in reports] == [None] * len(workers)
    assert all(r["secret"] == SECRET for r in reports)
    return reports


def _paths(vault, mark: int) -> Counter[str]:
    return Counter(entry["request"]["path"] for entry in vault.server.requests_since(mark))


@pytest.mark.parametrize(
    ("method", "processes"), [("fork", 8), ("spawn", 8), ("fork", 64), ("spawn", 64)]
)
def test_cold_start_costs_one_login(vault, tmp_path, method, processes):
    """N processes starting cold together: one login and one mount lookup between them,
    then each later process costs one request, the read."""
    environ = _environ(vault, _new_role(vault), tmp_path / "cache")
    mark = vault.server.mark()
    started = time.monotonic()
    reports = run_processes(method, [environ] * processes)
    seconds = time.monotonic() - started
    paths = _paths(vault, mark)
    assert paths["auth/approle/login"] == 1
    assert sum(r["logins"] for r in reports) == 1
    assert paths[f"sys/internal/ui/mounts/{SECRET_PATH}"] == 1
    assert paths["secret/data/snowflake/etl"] == processes
    assert sum(paths.values()) == processes + 2, paths
    print(f"{processes} processes by {method}: {sum(paths.values())} requests in {seconds:.1f} s")

    mark = vault.server.mark()
    run_processes(method, [environ] * 8)
    assert _paths(vault, mark) == Counter({"secret/data/snowflake/etl": 8})


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_revoked_token_costs_one_login_between_the_processes_that_find_it(vault, tmp_path, method):
    """After the cached token is revoked, 8 processes that all find it dead log in once."""
    environ = _environ(vault, _new_role(vault), tmp_path / "cache")
    run_processes(method, [environ])
    (token_file,) = (tmp_path / "cache").glob("token-*.json")
    import json

    vault.server.revoke_token(json.loads(token_file.read_text())["token"])
    mark = vault.server.mark()
    reports = run_processes(method, [environ] * 8)
    paths = _paths(vault, mark)
    assert paths["auth/approle/login"] == 1
    assert sum(r["logins"] for r in reports) == 1
    assert paths["secret/data/snowflake/etl"] >= 8  # one 403 each for those that held it
    mark = vault.server.mark()
    run_processes(method, [environ] * 2)
    assert _paths(vault, mark) == Counter({"secret/data/snowflake/etl": 2})


def test_two_roles_in_one_directory_never_share_a_token(vault, tmp_path):
    """Processes of two roles starting together: one login per role, each with its policies."""
    cache = tmp_path / "cache"
    vault.server.write_policy("cache-other", 'path "secret/data/*" { capabilities = ["read"] }')
    reader = _environ(vault, _new_role(vault), cache)
    other_role = vault.server.approle(
        f"cache-procs-{next(_roles)}", policies=["reader", "cache-other"]
    )
    other = _environ(vault, other_role, cache)
    mark = vault.server.mark()
    reports = run_processes("spawn", [reader, other] * 4)
    assert _paths(vault, mark)["auth/approle/login"] == 2
    policies = Counter(tuple(r["policies"]) for r in reports)
    assert policies == Counter({("default", "reader"): 4, ("cache-other", "default", "reader"): 4})
    assert len(list(cache.glob("token-*.json"))) == 2
