"""One task process: read one secret with the process-wide default client, then exit.

Run by bench/_processes.py as ``python -m bench._taskjob <path>`` with only VAULT_ADDR,
VAULT_ROLE_ID, VAULT_SECRET_ID (and GDS_VAULT_TOKEN_CACHE, when measuring the cache)
set, as an Airflow task, a spawned worker or a cron job is configured.
"""

from __future__ import annotations

import sys


def main() -> int:
    from gds_vault import get_secret_from_vault

    return 0 if get_secret_from_vault(sys.argv[1]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
