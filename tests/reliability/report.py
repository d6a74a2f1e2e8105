"""Write RELIABILITY.md from a real run of the reliability tests.

Usage (from the repository root, in the dev environment)::

    python -m tests.reliability.report            # runs tests/reliability, writes RELIABILITY.md
    python -m tests.reliability.report --output /tmp/R.md

It runs ``pytest tests/reliability`` with ``RELIABILITY_ROWS`` naming a scratch file, into
which the tests append one JSON row per fault, load run, process run and bad-input case,
and reads the per-test outcomes from pytest's JUnit XML. The tests assert the outcomes;
this only tabulates the figures of that run. Nothing is written if a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python -m tests.reliability.report"


DEFECTS = [
    (
        "gds_vault/_client.py",
        "a dead token plus a destroyed secret_id made a read log in two or "
        "three times (the failed re-login during KV mount detection was taken for 'detection "
        "forbidden' and the layout guessed with more logins); now one login, then VaultAuthError.",
    ),
    (
        "gds_vault/_client.py",
        "a KV mount remembered once was trusted for ever: after the mount "
        "was disabled and mounted again as KV v1 the client kept answering 'no secret'; a 404 "
        "from a remembered mount now re-detects it once, and a disabled mount is named as such.",
    ),
    (
        "gds_vault/_token.py",
        "near the max TTL OpenBao answers renew-self with 500 'past the max "
        "TTL, cannot renew'; the client retried it 4 times holding the token lock while the token "
        "ran out; renewal is now tried once and a refusal leads straight to a new login.",
    ),
    (
        "gds_vault/_cache.py",
        "invalidate(path) dropped in-flight reads of every path (a global "
        "generation): under load 32% more Vault reads than misses; and a caller after "
        "invalidate could join a read begun before it and get the old value.",
    ),
    (
        "gds_vault/_config.py",
        "a missing VAULT_CLIENT_CERT file escaped as a bare OSError at the "
        "first request, a key of another certificate was blamed on VAULT_CACERT, and an encrypted "
        "key made OpenSSL prompt on the terminal; all are now VaultConfigError when the client is "
        "built.",
    ),
    (
        "gds_vault/_transport.py",
        "a server refusing the client certificate (mutual TLS) was "
        "reported as 'set VAULT_CACERT'; a TLS alert from the server now asks for "
        "VAULT_CLIENT_CERT/VAULT_CLIENT_KEY (or a certificate it trusts).",
    ),
    (
        "gds_vault/_transport.py, gds_vault/_deadline.py",
        "the timeout bounded each socket read, "
        "not the answer: a server trickling a byte every 20 ms held a read for as long as the "
        "answer lasted (10 s for one small secret with a 0.5 s timeout); the timeout now bounds "
        "each whole answer, headers and body, and a timeout in the body is a VaultTimeoutError.",
    ),
    (
        "gds_vault/_transport.py",
        "messages quoted Vault's errors in Go's multi-line layout ('1 error occurred:"
        "\\n\\t* permission denied\\n\\n'); they are one line now ('permission denied').",
    ),
    (
        "gds_vault/testing.py",
        "OpenBaoServer.unseal() usually failed: the dev server answers its "
        "health check before printing the unseal key; it now waits for the key.",
    ),
    (
        "gds_vault/retry.py",
        "the default policy stopped after 4 attempts (waits of about 0.25 + 0.5 + 1 s), so a "
        "2 s Vault outage failed a read although the deadline was 30 s; the default now "
        "retries until the deadline, riding out a 10 s outage mid-run and an 8 s one at start.",
    ),
    (
        "gds_vault/retry.py, gds_vault/_client.py",
        "the deadline applied to each HTTP request, so a cold get_secret (login, mount "
        "lookup, read) could take three deadlines; now one deadline per operation the user "
        "called, shared by nested retries (the Vault part and the login of "
        "get_snowflake_connection included).",
    ),
    (
        "gds_vault/_transport.py, gds_vault/_redirects.py",
        "a standby's 307 to the active node was reported as 'unexpected HTTP 307': behind "
        "a load balancer every call on a connection pinned to a standby failed after a "
        "leader election; standby redirects are now followed within documented limits.",
    ),
    (
        "gds_vault/_transport.py, gds_vault/_auth/",
        "a token with a line break (a two-line token file) made requests refuse the header; "
        "that was taken for a connection error, retried until the deadline, and the token "
        "was quoted in the error and every retry WARNING; such a token, secret_id or "
        "namespace is now a VaultConfigError that never shows it, and transport messages "
        "quote only OS and TLS errors (security review, issue 18).",
    ),
    (
        "gds_vault/_tls.py",
        "a forked child closing its client removed the parent's CA bundle made from "
        "VAULT_CAPATH; the parent then failed with a raw OSError. The bundle is now removed "
        "only by the process that wrote it (security review, issue 18).",
    ),
    (
        "gds_vault/_deadline.py, gds_vault/_transport.py",
        "answers had no size limit (800 MB grew the process by 2.4 GB) and deeply nested "
        "JSON escaped as RecursionError; answers over 16 MiB and compressed answers are now "
        "refused, undecodable JSON is a VaultResponseError; both limits also hold through "
        "an HTTP proxy (security review, issue 18).",
    ),
]
NOT_COVERED = [
    "A Snowflake login request that is never answered lasts the connector's socket "
    "timeout (60 s by default, socket_timeout=): the deadline bounds the retries and the "
    "connector's login_timeout, not a request already in flight.",
    "Through a SOCKS proxy (socks5:// in ALL_PROXY) the per-answer deadline and the 16 MiB "
    "limit do not apply: its connection pools are urllib3's SOCKS classes; each read is "
    "still bounded by the timeout. (Through an HTTP proxy both apply.)",
    "Packet loss at connect time (SYN dropped) cannot be made on loopback without root "
    "firewall rules; the black hole (connection accepted, never answered) stands in for it.",
]


def run_tests(rows: Path, junit: Path) -> tuple[int, float]:
    env = {**os.environ, "RELIABILITY_ROWS": str(rows)}
    started = datetime.now(timezone.utc)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/reliability",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    return done.returncode, (datetime.now(timezone.utc) - started).total_seconds()


def cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def outcomes(junit: Path) -> dict[str, tuple[str, float]]:
    """``module::test`` -> (outcome, seconds) from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 - the file pytest just wrote
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        module = case.get("classname", "").rsplit(".", 1)[-1]
        found[f"{module}::{case.get('name')}"] = (outcome, float(case.get("time") or 0))
    return found


def render(rows: list[dict], junit: dict[str, tuple[str, float]], seconds: float) -> str:
    by_table: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_table[row.pop("table")].append(row)
    passed = sum(1 for outcome, _ in junit.values() if outcome == "passed")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Reliability and security: figures",
        "",
        f"Produced by `{COMMAND}` (it runs `pytest tests/reliability` and tabulates what",
        "the tests measured; the tests assert the outcomes, never the timings). Last run:",
        f"{now}, Python {platform.python_version()}, {os.cpu_count()} CPUs, {passed} of",
        f"{len(junit)} tests passed in {seconds:.0f} s.",
        "",
        "## Faults",
        "",
        "Injected for real: network faults by a TCP proxy between the client and the OpenBao",
        "dev server (`tests/reliability/faultproxy.py`), crafted answers by pytest-httpserver,",
        "server states on a real OpenBao server (a separate one for sealing and disabling a",
        "mount), a leader election on a real 3-node OpenBao Raft cluster behind a TCP",
        "balancer, Snowflake faults on the Snowflake double. Rows whose deadline says",
        "*default* use `RetryPolicy()` itself in real time (waits 0.5, 1, 2, then 4 s plus up",
        "to 0.5 s of jitter, until 30 s); *default x0.2* is that shape with every duration,",
        "the outage and the request timeout scaled by 0.2; the other rows use a fast policy",
        "(waits of 50 ms doubling to 0.4 s, up to 4 attempts, deadline 3 s unless the row",
        "says otherwise) with a 0.5 s per-call timeout. *Attempts*: requests the faulted",
        "operation made (Vault), or Snowflake login attempts. Every row is asserted: the",
        "right data or the named typed error, attempts within the policy, and no call longer",
        "than the deadline plus one timeout.",
        "",
    ]
    out += table(
        [
            "fault",
            "what was injected",
            "what the caller saw",
            "attempts",
            "seconds",
            "policy deadline (s)",
        ],
        [
            [r["fault"], r["injected"], r["saw"], r["attempts"], r["seconds"], r["deadline"]]
            for r in by_table["faults"]
        ],
    )
    out += [
        "",
        "## Load and concurrency",
        "",
        "Counts come from the OpenBao audit log and the Snowflake double's login counters.",
        "",
    ]
    out += table(
        ["run", "operations", "errors", "seconds", "what it cost"],
        [
            [r["run"], r["operations"], r["errors"], r["seconds"], r["detail"]]
            for r in by_table["load"]
        ],
    )
    out += [
        "",
        "## Processes",
        "",
        "8 worker processes each read the secret with the process-wide default client and run",
        "a query through `get_snowflake_connection()` (`tests/reliability/workers.py`).",
        "",
    ]
    out += table(
        [
            "start method",
            "processes",
            "worked",
            "Vault logins per process",
            "Snowflake logins",
            "seconds (all)",
            "slowest process (s)",
        ],
        [
            [
                r["method"],
                r["processes"],
                r["ok"],
                r["vault_logins_per_process"],
                r["snowflake_logins"],
                r["seconds"],
                r["slowest"],
            ]
            for r in by_table["processes"]
        ],
    )
    out += [
        "",
        "## Leases",
        "",
        "Leased credentials (`database/creds/<role>`): OpenBao's database secrets engine with",
        "its PostgreSQL plugin against a real PostgreSQL (`tests/postgres.py`); the Snowflake",
        "double accepts exactly the user/password pairs PostgreSQL accepts and ends a user's",
        "sessions once Vault drops its role (`tests/reliability/test_leases.py`). *Vault*:",
        "what the lease timer did.",
        "",
    ]
    out += table(
        ["case", "what was injected", "what the caller saw", "Vault", "seconds"],
        [
            [r["case"], r["injected"], r["saw"], r["vault"], r["seconds"]]
            for r in by_table["leases"]
        ],
    )
    bad = by_table["bad_input"]
    out += [
        "",
        "## Bad input",
        "",
        f"{len(bad)} cases, each a typed error whose message says what to fix and shows no",
        "offending value (or, for both password and key, the documented precedence). Cases",
        "already pinned by other tests are referenced, not written twice.",
        "",
    ]
    out += table(
        ["case", "error", "pinned by"],
        [
            [
                r["case"],
                r["error"],
                "tests/reliability/test_bad_input.py" if r["where"] == "here" else r["where"],
            ]
            for r in bad
        ],
    )
    tls = sorted(
        (name, outcome) for name, (outcome, _) in junit.items() if name.startswith("test_mtls::")
    )
    out += [
        "",
        "## Mutual TLS",
        "",
        "An OpenBao server with a second listener requiring client certificates",
        "(`tls_require_and_verify_client_cert = true`); CA, server and client certificates",
        "made at test time. Verification by default, VAULT_CACERT / VAULT_CAPATH and",
        "VAULT_SKIP_VERIFY are pinned against `-dev-tls` in `tests/vault/test_tls.py`.",
        "",
    ]
    out += table(["test", "outcome"], [[name.split("::", 1)[1], outcome] for name, outcome in tls])
    out += [
        "",
        "## Secret hygiene",
        "",
        "`tests/reliability/hygiene.py`, autouse for the whole suite through",
        "`tests/conftest.py`: every test captures all log records at DEBUG from every",
        "logger, every library error created and every library object made, and fails if",
        "a known secret (everything given to `register_secret`: tokens, secret_ids, JWTs,",
        "wrapping tokens, and what the test helpers write: passwords, private keys line by",
        "line, passphrases, root and unseal keys) appears in a log message, an error message",
        "or a repr.",
        "",
    ]
    out += ["## Defects these tests exposed, fixed in the code", ""]
    out += [f"- `{where}`: {what}" for where, what in DEFECTS]
    out += ["", "## Not covered", ""]
    out += [f"- {what}" for what in NOT_COVERED]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=str(ROOT / "RELIABILITY.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gds-reliability-") as scratch:
        rows_file, junit_file = Path(scratch) / "rows.jsonl", Path(scratch) / "junit.xml"
        rows_file.touch()
        code, seconds = run_tests(rows_file, junit_file)
        if code != 0:
            print(
                f"{COMMAND}: the reliability tests failed (exit {code}); "
                "RELIABILITY.md was not written.",
                file=sys.stderr,
            )
            return 1
        rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
        text = render(rows, outcomes(junit_file), seconds)
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
