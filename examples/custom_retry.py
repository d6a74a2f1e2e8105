"""A custom RetryPolicy: patient for a nightly job, quick to give up for an interactive tool.

One ``RetryPolicy`` object (frozen, on tenacity: exponential backoff plus jitter, a cap
per wait, an optional cap on attempts, a deadline per operation) configures both
packages. The default retries for up to 30 s, enough for a Vault restart or leader
election; a profile changes that budget. Give it to
the ``VaultClient`` and its Vault calls and the Snowflake logins of connections made with
that client follow it. ``SnowflakeConnectionProvider(retry=...)`` sets the Snowflake
logins' policy alone. Each retry logs one WARNING (operation, attempt, wait, cause);
giving up logs one ERROR.

Retried: connection errors, timeouts, HTTP 412, 429 (Retry-After honoured), 500, 502,
503, 504 from Vault; network failures and 5xx at Snowflake login. Never: a wrong
password or key, a missing secret, a permission error.

    python examples/custom_retry.py --profile nightly

Environment as for the batch job (VAULT_ADDR, the auth variables, SNOWFLAKE_VAULT_PATH;
EXAMPLE_SNOWFLAKE_CONNECT_ARGS only for the tests, see batch_job.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gds_vault import RetryPolicy  # cheap: tenacity is imported when a policy first runs

PROFILES = {
    # A nightly job would rather wait out a long Vault maintenance or a Snowflake blip than
    # page someone: waits 1 s, 2 s, 4 s ... capped at 30 s, for up to 5 minutes per call.
    "nightly": RetryPolicy(initial_wait=1.0, max_wait=30.0, jitter=1.0, deadline=300.0),
    # Someone is waiting at a prompt: two quick tries, then a clear error within 3 s.
    "interactive": RetryPolicy(
        attempts=2, initial_wait=0.2, max_wait=0.2, jitter=0.1, deadline=3.0
    ),
}

log = logging.getLogger("etl.retry_example")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="nightly")
    args = parser.parse_args(argv)
    policy = PROFILES[args.profile]

    from gds_snowflake import SnowflakeConnectionProvider
    from gds_vault import VaultClient, configure_logging

    configure_logging("INFO")  # shows the WARNING per retry
    extra = json.loads(os.environ.get("EXAMPLE_SNOWFLAKE_CONNECT_ARGS") or "{}")

    # The environment configures the client; the policy is an explicit override.
    with VaultClient.from_env(retry=policy) as client:
        provider = SnowflakeConnectionProvider(vault_client=client, **extra)
        with provider.connect() as conn:
            # The same policy object can guard your own steps, e.g. a flaky upstream:
            # for attempt in policy.retrying("etl.fetch_rates", retry_if=is_transient):
            #     with attempt:
            #         rates = fetch_rates()
            (one,) = conn.cursor().execute("select 1").fetchone()
    print(f"profile={args.profile} attempts={policy.attempts} result={one}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
