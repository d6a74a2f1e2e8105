"""What one task process does in the token-cache tests (importable, so ``spawn`` can run it).

It builds a client from the VAULT_* and GDS_VAULT_TOKEN_CACHE variables it inherited,
waits at a barrier so that all processes start together, reads one secret and reports
what it read and how many Vault logins its client made (never the token).
"""

from __future__ import annotations

import os
import time
from typing import Any


def read_secret(queue: Any, barrier: Any, path: str, environ: dict[str, str]) -> None:
    """Read ``path`` with a client from ``environ``; put a report (or the error) on ``queue``."""
    report: dict[str, Any] = {"pid": os.getpid()}
    try:
        from gds_vault import VaultClient

        client = VaultClient.from_env(environ)
        barrier.wait(120)
        started = time.monotonic()
        report["secret"] = client.get_secret(path)
        report["seconds"] = round(time.monotonic() - started, 3)
        report["logins"] = client.stats.logins
        report["policies"] = sorted(client._tokens._state.policies)  # type: ignore[union-attr]
        client.close()
    except BaseException as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    queue.put(report)
