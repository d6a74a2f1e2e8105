"""Outages ridden out (or not) with the DEFAULT retry policy's shape, through the fault proxy
against the real OpenBao dev server.

The default policy waits 0.5, 1, 2, then 4 s (each plus up to 0.5 s of jitter) until its
30 s deadline. Two headline cases run it as it is, in real time: a 10 s outage in the
middle of a run and an 8 s outage at job start (about 25 s together). The others run the
same shape with every duration, the request timeout and the outage scaled by ``SCALE``
(0.2, in conftest: waits 0.1 s doubling to 0.8 s, deadline 6 s, timeout 2 s), and their
rows say so. Every test asserts the result, the attempts (the waits the policy's sleep recorded,
plus one) and the total time, and that each retry logged one WARNING with no traceback.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from gds_vault import RetryPolicy, VaultClient, VaultConnectionError, VaultTimeoutError
from tests.reliability.conftest import (
    SCALE,
    SECRET,
    SECRET_PATH,
    SLACK,
    bounded,
    default_shape,
    write_row,
)

pytestmark = pytest.mark.timeout(90)

DEFAULT = RetryPolicy()
DEFAULT_TIMEOUT = inspect.signature(VaultClient).parameters["timeout"].default  # 10 s
BIGGEST_WAIT = DEFAULT.max_wait + DEFAULT.jitter  # the longest a success can lag a recovery


def check_logs(caplog, waits: list[float]) -> None:
    """One WARNING per retry, none with a traceback, and no ERROR (the call succeeded)."""
    records = [r for r in caplog.records if r.name == "gds_vault.retry"]
    assert len([r for r in records if r.levelno == logging.WARNING]) == len(waits)
    assert all(r.exc_info is None for r in records)


def outage_row(fault: str, injected: str, outcome, attempts: int, policy: RetryPolicy, note: str):
    write_row(
        "faults",
        fault=fault,
        injected=injected,
        saw=outcome.saw,
        attempts=attempts,
        seconds=round(outcome.seconds, 2),
        deadline=f"{policy.deadline:g} ({note})",
    )


def test_10_s_outage_mid_run_is_ridden_out(rel, sleeps, caplog):
    """Default policy, real time: Vault refuses connections for 10 s in the middle of a run;
    the read in flight waits it out (no new login) and returns the secret."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    policy = default_shape(sleeps)
    client = rel.client(retry=policy, timeout=DEFAULT_TIMEOUT)
    assert client.get_secret(SECRET_PATH) == SECRET
    mark = rel.server.mark()
    rel.proxy.set("refuse")
    threading.Timer(10.0, rel.proxy.set, ("pass",)).start()
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), policy.deadline + 10 + SLACK)
    assert outcome.error is None
    assert outcome.value == SECRET
    assert rel.logins_since(mark) == 0  # the token outlived the outage
    # Attempts at 0, 0.5, 1.5, 3.5, 7.5 s and later (plus jitter) fail; one after 10 s works.
    attempts = len(sleeps.waits) + 1
    assert 6 <= attempts <= 7
    assert 10.0 <= outcome.seconds <= 10.0 + BIGGEST_WAIT + SLACK
    check_logs(caplog, sleeps.waits)
    outage_row("Vault down 10 s mid-run", "connection refused for 10 s, then back",
               outcome, attempts, policy, "default, real time")


def test_8_s_outage_at_job_start_is_ridden_out(rel, sleeps, caplog):
    """Default policy, real time: Vault down for the first 8 s of a job, before any token
    exists; the login is retried until Vault is back, then the read succeeds."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    policy = default_shape(sleeps)
    client = rel.client(retry=policy, timeout=DEFAULT_TIMEOUT)
    mark = rel.server.mark()
    rel.proxy.set("refuse")
    threading.Timer(8.0, rel.proxy.set, ("pass",)).start()
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), policy.deadline + 10 + SLACK)
    assert outcome.error is None
    assert outcome.value == SECRET
    assert rel.logins_since(mark) == 1
    attempts = len(sleeps.waits) + 1
    assert 5 <= attempts <= 6  # at 0, 0.5, 1.5, 3.5 s refused; 7.5-9.5 s maybe; then up
    assert 8.0 <= outcome.seconds <= 8.0 + BIGGEST_WAIT + SLACK
    check_logs(caplog, sleeps.waits)
    outage_row("Vault down 8 s at job start", "connection refused for the first 8 s (no token yet)",
               outcome, attempts, policy, "default, real time")


def test_outage_longer_than_the_deadline_fails_within_deadline_plus_one_timeout(
    rel, sleeps, caplog
):
    """Default shape x0.2: Vault stays down; VaultConnectionError naming VAULT_ADDR once the
    deadline is spent (the last try starts at it), within deadline + one timeout; then the
    client recovers as soon as Vault is back."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    policy = default_shape(sleeps, SCALE)
    timeout = DEFAULT_TIMEOUT * SCALE
    client = rel.client(retry=policy, timeout=timeout)
    client.login()
    rel.proxy.set("refuse")
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), policy.deadline + timeout + SLACK)
    assert isinstance(outcome.error, VaultConnectionError)
    assert not isinstance(outcome.error, VaultTimeoutError)
    assert "VAULT_ADDR" in str(outcome.error)
    # The whole budget was used: waits plus the (instant) refused attempts fill the deadline.
    assert policy.deadline - 0.5 < sum(sleeps.waits) <= policy.deadline
    attempts = len(sleeps.waits) + 1
    assert 9 <= attempts <= 11  # about 11 over 30 s unscaled; jitter takes one or two
    assert policy.deadline <= outcome.seconds <= policy.deadline + timeout + SLACK
    giving_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(giving_up) == 1 and giving_up[0].exc_info is None
    outage_row("Vault down longer than the deadline", "connection refused for good",
               outcome, attempts, policy, f"default x{SCALE:g}, timeout {timeout:g} s")
    rel.proxy.set("pass")
    assert client.get_secret(SECRET_PATH) == SECRET


def test_flapping_vault_never_fails_a_call(rel, sleeps, caplog):
    """Default shape x0.2: Vault flaps (up 0.1 s, down 0.2 s: 0.5 s / 1 s unscaled) for 2 s
    (10 s unscaled) while a job reads in a loop: every call returns the secret, none lasts
    past the flapping plus one wait."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    policy = default_shape(sleeps, SCALE)
    client = rel.client(retry=policy, timeout=DEFAULT_TIMEOUT * SCALE)
    client.login()
    up, down, flapping = 0.5 * SCALE, 1.0 * SCALE, 10.0 * SCALE
    stop = threading.Event()

    def flap() -> None:
        ends = time.monotonic() + flapping
        while time.monotonic() < ends and not stop.is_set():
            rel.proxy.set("refuse")
            time.sleep(down)
            rel.proxy.set("pass")
            time.sleep(up)
        rel.proxy.set("pass")

    flapper = threading.Thread(target=flap, daemon=True)
    started = time.monotonic()
    flapper.start()
    seconds: list[float] = []

    def read_through_the_flapping() -> int:
        # At least two calls: with 0.1 s up in every 0.3 s, the first call's retries can
        # all land in downs and outlast the flapping (about 1 run in 3 on a busy machine).
        while time.monotonic() - started < flapping or len(seconds) < 2:
            began = time.monotonic()
            assert client.get_secret(SECRET_PATH) == SECRET
            seconds.append(time.monotonic() - began)
        return len(seconds)

    outcome = bounded(read_through_the_flapping, flapping + policy.deadline + SLACK)
    stop.set()
    flapper.join()
    assert outcome.error is None
    calls = outcome.value
    assert calls >= 2
    assert len(sleeps.waits) >= 1  # the downs were felt, and retried
    assert max(seconds) <= flapping + (policy.max_wait + policy.jitter) + SLACK
    check_logs(caplog, sleeps.waits)
    write_row(
        "faults",
        fault="Vault flapping",
        injected=f"up {up:g} s, down {down:g} s for {flapping:g} s (0.5 / 1 / 10 s unscaled)",
        saw=f"success, {calls}/{calls} reads, slowest {max(seconds):.2f} s",
        attempts=calls + len(sleeps.waits),
        seconds=round(outcome.seconds, 2),
        deadline=f"{policy.deadline:g} (default x{SCALE:g})",
    )


def test_black_hole_times_out_within_deadline_plus_one_timeout(rel, sleeps, caplog):
    """Default shape x0.2 (timeout 2 s, deadline 6 s): requests swallowed, never answered;
    each attempt times out, the last one starts before the deadline, and the call ends with
    VaultTimeoutError naming the knob within deadline + one timeout; then recovery."""
    caplog.set_level(logging.WARNING, logger="gds_vault")
    policy = default_shape(sleeps, SCALE)
    timeout = DEFAULT_TIMEOUT * SCALE
    client = rel.client(retry=policy, timeout=timeout)
    client.login()
    rel.proxy.set("blackhole")
    outcome = bounded(lambda: client.get_secret(SECRET_PATH), policy.deadline + timeout + SLACK)
    assert isinstance(outcome.error, VaultTimeoutError)
    assert "VAULT_CLIENT_TIMEOUT" in str(outcome.error)
    attempts = len(sleeps.waits) + 1
    assert attempts == 3  # 2 s lost, 0.1 s wait, 2 s lost, 0.2 s wait, 2 s lost: 6.3 s
    assert policy.deadline <= outcome.seconds <= policy.deadline + timeout + SLACK
    outage_row("Black hole", "requests accepted, never answered", outcome, attempts, policy,
               f"default x{SCALE:g}, timeout {timeout:g} s")
    rel.proxy.set("pass")
    assert client.get_secret(SECRET_PATH) == SECRET


_CTRL_C_CHILD = """
import sys, time
from gds_vault import TokenAuth, VaultClient, configure_logging
configure_logging("WARNING")
client = VaultClient(sys.argv[1], auth=TokenAuth("s.ctrl-c-test-token-xxxxxxx"), cache_ttl=0)
try:
    client.get_secret("secret/app")
except KeyboardInterrupt:
    # When the interrupt reached the caller, on the clock the test reads too: the
    # interpreter's teardown after it is not what the test measures.
    print(f"INTERRUPTED_AT {time.monotonic()!r}", file=sys.stderr, flush=True)
    raise
"""


def test_ctrl_c_during_a_retry_wait_stops_at_once(httpserver):
    """A job whose Vault answers 503 gets SIGINT during its second retry wait (default
    policy): it stops within a fraction of a second with KeyboardInterrupt, and no further
    request reaches Vault."""
    httpserver.expect_request("/v1/auth/token/lookup-self").respond_with_json(
        {"errors": ["Vault is sealed"]}, status=503
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "GDS_"))}
    child = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_CHILD, httpserver.url_for("").rstrip("/")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stderr is not None
    retries = 0
    try:
        while retries < 2:
            line = child.stderr.readline()
            assert line, "the child ended before its second retry"
            retries += "Retrying vault.token.lookup" in line
        requests_before = len(httpserver.log)
        interrupted_at = time.monotonic()
        child.send_signal(signal.SIGINT)  # the child is now in its 1-1.5 s wait
        rest = child.stderr.read()
        code = child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    assert code != 0
    assert "KeyboardInterrupt" in rest
    assert "Retrying" not in rest  # no further retry was scheduled
    assert len(httpserver.log) == requests_before == 2  # and no further attempt was made
    [caught_at] = [float(line.split()[1]) for line in rest.splitlines() if "INTERRUPTED_AT" in line]
    # At once, not after the rest of the 1-1.5 s wait. time.monotonic() is the system-wide
    # CLOCK_MONOTONIC on Linux, so the two processes' readings compare.
    assert caught_at - interrupted_at < 1.0, caught_at - interrupted_at
