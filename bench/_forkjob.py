"""A parent process that forks worker processes, each opening Snowflake connections.

Run by bench/_snowflake.py as ``python -m bench._forkjob '<json spec>'`` with only
VAULT_ADDR, VAULT_ROLE_ID and VAULT_SECRET_ID set, so every worker uses the process-wide
default client, as a job configured by its environment does. Exits non-zero if any
worker failed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def worker(spec: dict[str, object]) -> int:
    from gds_snowflake import get_snowflake_connection

    kwargs = dict(spec["connect_kwargs"])  # type: ignore[call-overload]
    for _ in range(int(spec["connections"])):  # type: ignore[call-overload]
        with get_snowflake_connection(str(spec["path"]), **kwargs) as conn:
            conn.cursor().execute("select 1").fetchall()
    return 0


def main() -> int:
    spec = json.loads(sys.argv[1])
    # Loaded once in the parent, as a scheduler that imported the DAG file has them.
    import snowflake.connector  # noqa: F401

    import gds_snowflake  # noqa: F401

    if spec["warm"]:
        from gds_vault import get_secret_from_vault

        get_secret_from_vault(spec["path"])  # the parent logs in and reads before forking
    children = []
    for _ in range(int(spec["workers"])):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = worker(spec)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
