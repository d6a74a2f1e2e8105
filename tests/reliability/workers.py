"""What one worker process of a batch job does (importable, so ``spawn`` can run it).

It reads the Snowflake secret with the process-wide default client, opens a Snowflake
connection with get_snowflake_connection() and runs a statement, then reports how many
Vault logins its process made. A forked worker inherits the parent's default client (and
its token); a spawned one builds its own from the VAULT_* variables.
"""

from __future__ import annotations

import os
import time
from typing import Any


def batch_job(queue: Any, path: str, connect_kwargs: dict[str, Any]) -> None:
    """Read the secret, connect, query; put a report (or the error) on ``queue``."""
    started = time.monotonic()
    report: dict[str, Any] = {"pid": os.getpid()}
    try:
        from gds_snowflake import get_snowflake_connection
        from gds_vault import get_default_client

        client = get_default_client()
        logins_before = client.stats.logins
        secret = client.get_secret(path)
        with get_snowflake_connection(path, **connect_kwargs) as conn:
            row = conn.cursor().execute("select 1").fetchone()
        report.update(
            ok=row == (1,) and bool(secret.get("user")),
            vault_logins=client.stats.logins - logins_before,
        )
    except Exception as exc:
        report.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    report["seconds"] = round(time.monotonic() - started, 2)
    queue.put(report)
