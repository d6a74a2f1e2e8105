"""RetryPolicy as pure logic: backoff, caps, deadline, Retry-After, logging, validation.

No network and no real waiting: every policy here gets a recording ``sleep`` and a fake
``clock`` that the recorded sleeps (and the simulated work) advance.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest

from gds_vault import (
    RetryPolicy,
    VaultConfigError,
    VaultConnectionError,
    VaultPermissionError,
    VaultSecretNotFoundError,
    VaultTimeoutError,
    VaultTLSError,
    VaultUnavailableError,
)
from gds_vault.retry import is_retryable, time_left


class FakeTime:
    """A monotonic clock that only moves when something sleeps or works."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Failing:
    """A callable that raises the given errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: object = "ok", work: float = 0.0,
                 time: FakeTime | None = None) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0
        self.work = work
        self.time = time

    def __call__(self) -> object:
        self.calls += 1
        if self.time is not None:
            self.time.now += self.work
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def policy(time: FakeTime, **settings: object) -> RetryPolicy:
    settings.setdefault("jitter", 0.0)
    return RetryPolicy(sleep=time.sleep, clock=time.clock, **settings)  # type: ignore[arg-type]


def unavailable(retry_after: float | None = None) -> VaultUnavailableError:
    return VaultUnavailableError("Vault is busy (503).", status_code=503, retry_after=retry_after)


# -- backoff ---------------------------------------------------------------------------


def test_backoff_is_exponential_and_capped():
    """Waits double from initial_wait and never exceed max_wait."""
    time = FakeTime()
    retry = policy(time, attempts=7, initial_wait=0.5, multiplier=2.0, max_wait=3.0, deadline=1e6)
    fn = Failing(*[unavailable() for _ in range(10)])
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", fn)
    assert time.slept == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert fn.calls == 7


def test_backoff_helper_and_waits_match_the_schedule():
    """backoff(n) and waits() describe the same capped exponential schedule."""
    retry = RetryPolicy(attempts=5, initial_wait=1.0, multiplier=3.0, max_wait=10.0)
    assert [retry.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 10.0]
    assert list(retry.waits()) == [1.0, 3.0, 9.0, 10.0]


def test_jitter_adds_between_zero_and_jitter():
    """Each wait is the backoff plus a random amount in [0, jitter), and it does vary."""
    extras: list[float] = []
    for _ in range(40):
        time = FakeTime()
        retry = policy(time, attempts=4, initial_wait=1.0, max_wait=100.0, jitter=0.5, deadline=1e6)
        with pytest.raises(VaultUnavailableError):
            retry.call("vault.read", Failing(*[unavailable() for _ in range(4)]))
        assert len(time.slept) == 3
        extras += [s - n for s, n in zip(time.slept, retry.waits(), strict=True)]
    assert all(0.0 <= extra <= 0.5 for extra in extras)
    assert max(extras) - min(extras) > 0.1  # 120 draws: really random, not a constant


def test_zero_jitter_gives_exact_waits():
    """jitter=0 makes the waits exactly the nominal backoff."""
    time = FakeTime()
    retry = policy(time, attempts=4, initial_wait=0.2, deadline=100.0)
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", Failing(*[unavailable() for _ in range(4)]))
    assert time.slept == list(retry.waits()) == [0.2, 0.4, 0.8]


# -- caps --------------------------------------------------------------------------------


def test_attempts_cap_counts_the_first_try():
    """attempts=3 means one try and two retries, then the last error is raised as is."""
    time = FakeTime()
    errors = [unavailable(), unavailable(), unavailable(), unavailable()]
    last = errors[2]
    fn = Failing(*errors)
    with pytest.raises(VaultUnavailableError) as info:
        policy(time, attempts=3, initial_wait=0.1).call("vault.read", fn)
    assert info.value is last
    assert fn.calls == 3
    assert len(time.slept) == 2


def test_success_after_retries_returns_the_result():
    """A call that fails twice and then succeeds returns the successful result."""
    time = FakeTime()
    fn = Failing(unavailable(), VaultConnectionError("refused"), result={"v": 1})
    assert policy(time, attempts=5, initial_wait=0.1).call("vault.read", fn) == {"v": 1}
    assert fn.calls == 3
    assert time.slept == [0.1, 0.2]


def test_no_retries_policy_tries_once():
    """RetryPolicy.no_retries() calls once and never sleeps, even for retryable errors."""
    recorded: list[float] = []
    retry = dataclasses.replace(RetryPolicy.no_retries(), sleep=recorded.append)
    fn = Failing(unavailable())
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", fn)
    assert fn.calls == 1
    assert recorded == []


def test_deadline_shortens_the_last_wait_and_no_retry_starts_after_it():
    """A wait that would end past the deadline is cut to end at it; then the policy stops."""
    time = FakeTime()
    retry = policy(time, attempts=50, initial_wait=1.0, max_wait=100.0, deadline=10.0)
    fn = Failing(*[unavailable() for _ in range(50)])
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", fn)
    # 1 + 2 + 4 = 7 s slept; the next wait (8 s) is cut to 3 s, so the last try is at 10 s.
    assert time.slept == [1.0, 2.0, 4.0, 3.0]
    assert fn.calls == 5


def test_deadline_counts_time_spent_in_attempts():
    """Time spent inside failing attempts counts towards the deadline, not only sleeps."""
    time = FakeTime()
    retry = policy(time, attempts=50, initial_wait=1.0, max_wait=100.0, deadline=10.0)
    fn = Failing(*[unavailable() for _ in range(50)], work=3.0, time=time)
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", fn)
    # 3 work, 1 sleep, 3 work, 2 sleep, 3 work = 12 s: a third retry would start past 10 s.
    assert time.slept == [1.0, 2.0]
    assert fn.calls == 3


def test_deadline_starts_with_each_operation():
    """The deadline is measured per operation, so a later call gets its full budget."""
    time = FakeTime()
    retry = policy(time, attempts=3, initial_wait=4.0, max_wait=4.0, deadline=10.0)
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", Failing(*[unavailable() for _ in range(3)]))
    time.now += 500.0
    fn = Failing(unavailable(), unavailable())
    assert retry.call("vault.read", fn) == "ok"
    assert fn.calls == 3
    assert time.slept == [4.0, 4.0, 4.0, 4.0]


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_longer_than_backoff_is_honoured():
    """A Retry-After longer than the backoff (even beyond max_wait) is the wait used."""
    time = FakeTime()
    retry = policy(time, attempts=3, initial_wait=0.1, max_wait=1.0, deadline=60.0)
    fn = Failing(unavailable(retry_after=7.0))
    assert retry.call("vault.read", fn) == "ok"
    assert time.slept == [7.0]


def test_retry_after_shorter_than_backoff_does_not_shorten_the_wait():
    """A Retry-After shorter than the backoff leaves the backoff in place."""
    time = FakeTime()
    retry = policy(time, attempts=3, initial_wait=2.0, deadline=60.0)
    fn = Failing(unavailable(retry_after=0.5))
    assert retry.call("vault.read", fn) == "ok"
    assert time.slept == [2.0]


def test_retry_after_past_the_deadline_gives_up_at_once():
    """A Retry-After that would end past the deadline raises the typed error without sleeping."""
    time = FakeTime()
    retry = policy(time, attempts=5, initial_wait=0.1, deadline=10.0)
    error = VaultUnavailableError("rate limited (429)", status_code=429, retry_after=60.0)
    fn = Failing(error)
    with pytest.raises(VaultUnavailableError) as info:
        retry.call("vault.read", fn)
    assert info.value is error
    assert fn.calls == 1
    assert time.slept == []


# -- what is retried -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        VaultPermissionError("denied", status_code=403),
        VaultSecretNotFoundError("missing", status_code=404),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=["403", "404", "ValueError", "KeyError"],
)
def test_non_retryable_errors_are_raised_at_once(error, caplog):
    """Errors that are not retryable are raised on the first attempt, with no retry log."""
    caplog.set_level(logging.WARNING, logger="gds_vault.retry")
    time = FakeTime()
    fn = Failing(error)
    with pytest.raises(type(error)) as info:
        policy(time, attempts=5, initial_wait=0.1).call("vault.read", fn)
    assert info.value is error
    assert fn.calls == 1
    assert time.slept == []
    assert [r for r in caplog.records if r.name == "gds_vault.retry"] == []


def test_tls_error_is_a_connection_error_never_retried():
    """VaultTLSError is a VaultConnectionError whose type says: not retryable."""
    error = VaultTLSError("TLS verification failed for https://vault:8200")
    assert isinstance(error, VaultConnectionError)
    time = FakeTime()
    fn = Failing(error)
    with pytest.raises(VaultTLSError):
        policy(time, attempts=5, initial_wait=0.1).call("vault.read", fn)
    assert fn.calls == 1
    assert time.slept == []


def test_retryability_of_a_response_error_is_given_when_it_is_made():
    """A status that retrying cannot fix (501) is told to the error's constructor."""
    assert is_retryable(VaultUnavailableError("sealed", status_code=503))
    assert not is_retryable(VaultUnavailableError("uninitialised", status_code=501, retryable=False))
    assert "retryable" not in vars(VaultUnavailableError("x"))  # the class decides by default


def test_is_retryable_follows_the_error_tree():
    """Transport errors and Vault's unavailable answers are retryable; the rest are not."""
    assert is_retryable(VaultConnectionError("x"))
    assert is_retryable(VaultTimeoutError("x"))
    assert is_retryable(VaultUnavailableError("x"))
    assert not is_retryable(VaultTLSError("x"))
    assert not is_retryable(VaultPermissionError("x"))
    assert not is_retryable(VaultSecretNotFoundError("x"))
    assert not is_retryable(RuntimeError("x"))


def test_custom_retry_if_decides():
    """retry_if replaces the default predicate: here a plain OSError is retried."""
    time = FakeTime()
    fn = Failing(OSError("flaky"), OSError("flaky"))
    result = policy(time, attempts=4, initial_wait=0.1).call(
        "snowflake.connect", fn, retry_if=lambda exc: isinstance(exc, OSError)
    )
    assert result == "ok"
    assert fn.calls == 3


def test_retrying_iterator_form():
    """`for attempt in policy.retrying(op): with attempt: ...` retries like call()."""
    time = FakeTime()
    fn = Failing(unavailable(), unavailable())
    result = None
    for attempt in policy(time, attempts=5, initial_wait=0.1).retrying("vault.read"):
        with attempt:
            result = fn()
    assert result == "ok"
    assert fn.calls == 3
    assert time.slept == [0.1, 0.2]


# -- logging ---------------------------------------------------------------------------------


def test_one_warning_per_scheduled_retry(caplog):
    """Each scheduled retry logs one WARNING naming the operation, attempt, wait and cause."""
    caplog.set_level(logging.DEBUG, logger="gds_vault.retry")
    time = FakeTime()
    fn = Failing(VaultConnectionError("connection refused"), unavailable())
    policy(time, attempts=5, initial_wait=0.5).call("vault.read", fn)
    records = [r for r in caplog.records if r.name == "gds_vault.retry"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first, second = (r.getMessage() for r in records)
    for part in ("vault.read", "attempt 1 of 5", "0.50 s", "VaultConnectionError", "refused"):
        assert part in first
    for part in ("vault.read", "attempt 2 of 5", "1.00 s", "VaultUnavailableError", "busy"):
        assert part in second
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_one_error_when_giving_up(caplog):
    """Giving up after retries logs exactly one ERROR naming the operation and the cause."""
    caplog.set_level(logging.DEBUG, logger="gds_vault.retry")
    time = FakeTime()
    with pytest.raises(VaultUnavailableError):
        policy(time, attempts=3, initial_wait=0.1).call(
            "vault.login", Failing(*[unavailable() for _ in range(3)])
        )
    records = [r for r in caplog.records if r.name == "gds_vault.retry"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING, logging.ERROR]
    message = records[-1].getMessage()
    for part in ("vault.login", "3 attempts", "VaultUnavailableError", "busy"):
        assert part in message


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"attempts": 2.5},
        {"attempts": True},
        {"attempts": "3"},
        {"deadline": math.inf},
        {"max_wait": math.inf},
        {"initial_wait": -0.1},
        {"max_wait": -1},
        {"multiplier": -2},
        {"jitter": -0.5},
        {"deadline": 0},
        {"deadline": -5},
        {"initial_wait": "1"},
        {"max_wait": None},
        {"jitter": True},
        {"initial_wait": math.nan},
        {"deadline": math.nan},
    ],
    ids=lambda s: "-".join(f"{k}={v!r}" for k, v in s.items()),
)
def test_bad_settings_are_config_errors(settings):
    """Impossible settings raise VaultConfigError naming the setting."""
    with pytest.raises(VaultConfigError, match=next(iter(settings))):
        RetryPolicy(**settings)


def test_defaults_are_documented_values():
    """Defaults: no attempt cap, 0.5 s doubling waits capped at 4 s, 0.5 s jitter, 30 s deadline."""
    retry = RetryPolicy()
    assert (retry.attempts, retry.initial_wait, retry.multiplier) == (None, 0.5, 2.0)
    assert (retry.max_wait, retry.jitter, retry.deadline) == (4.0, 0.5, 30.0)


def test_default_schedule_uses_the_whole_deadline():
    """The documented schedule: 0.5, 1, 2, then 4 s waits, the last cut to end at 30 s."""
    assert list(RetryPolicy().waits()) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 2.5]
    assert list(RetryPolicy(attempts=4).waits()) == [0.5, 1.0, 2.0]


def test_default_policy_retries_until_the_deadline():
    """With the defaults a server that stays down is tried about 11 times over 30 s."""
    time = FakeTime()
    retry = dataclasses.replace(RetryPolicy(), sleep=time.sleep, clock=time.clock)
    fn = Failing(*[VaultConnectionError("refused") for _ in range(100)])
    with pytest.raises(VaultConnectionError):
        retry.call("vault.read", fn)
    assert sum(time.slept) == pytest.approx(30.0)
    assert fn.calls == 1 + len(time.slept)
    assert 9 <= fn.calls <= 11  # jitter makes the waits up to 0.5 s longer each
    nominal = list(RetryPolicy().waits())
    for slept, wait in zip(time.slept[:-1], nominal, strict=False):
        assert wait <= slept < wait + 0.5


@pytest.mark.parametrize(("outage", "at_most"), [(10.0, 14.5), (8.0, 12.5), (25.0, 29.5)])
def test_default_policy_rides_out_an_outage(outage, at_most):
    """A server down for 8, 10 or 25 s is ridden out: the call succeeds within about one
    wait (4 s + jitter) of its return, with one WARNING per retry."""
    time = FakeTime()
    start = time.now

    def flaky() -> str:
        if time.now - start < outage:
            raise VaultConnectionError("connection refused")
        return "ok"

    retry = dataclasses.replace(RetryPolicy(), sleep=time.sleep, clock=time.clock)
    assert retry.call("vault.read", flaky) == "ok"
    assert outage <= time.now - start <= at_most


def test_policy_is_frozen_and_replaceable():
    """A policy cannot be changed in place; dataclasses.replace makes a variant."""
    retry = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        retry.attempts = 10  # type: ignore[misc]
    variant = dataclasses.replace(retry, attempts=10)
    assert variant.attempts == 10
    assert retry.attempts is None
    with pytest.raises(VaultConfigError):
        dataclasses.replace(retry, attempts=0)


def test_policies_compare_by_settings_not_seams():
    """Equality and repr ignore the sleep and clock seams."""
    recorded: list[float] = []
    assert RetryPolicy(attempts=2) == RetryPolicy(attempts=2, sleep=recorded.append)
    assert RetryPolicy(attempts=2) != RetryPolicy(attempts=3)
    assert "sleep" not in repr(RetryPolicy())
    assert "attempts=None" in repr(RetryPolicy())


def test_call_passes_through_the_return_value():
    """policy.call returns fn's result when the first attempt succeeds, without sleeping."""
    recorded: list[float] = []
    retry = RetryPolicy(sleep=recorded.append)
    assert retry.call("vault.read", lambda: {"user": "ETL"}) == {"user": "ETL"}
    assert recorded == []


def test_giving_up_on_first_attempt_for_the_deadline_logs_one_error(caplog):
    """A Retry-After past the deadline ends the operation with one ERROR and no WARNING."""
    caplog.set_level(logging.DEBUG, logger="gds_vault.retry")
    time = FakeTime()
    error = VaultUnavailableError("rate limited (429)", status_code=429, retry_after=60.0)
    with pytest.raises(VaultUnavailableError):
        policy(time, attempts=5, deadline=10.0).call("vault.read", Failing(error))
    records = [r for r in caplog.records if r.name == "gds_vault.retry"]
    assert [r.levelno for r in records] == [logging.ERROR]
    assert "vault.read" in records[0].getMessage()


def test_no_retries_policy_logs_nothing(caplog):
    """A policy with attempts=1 (internal probes) fails silently: the caller decides."""
    caplog.set_level(logging.DEBUG, logger="gds_vault.retry")
    with pytest.raises(VaultUnavailableError):
        RetryPolicy.no_retries().call("vault.token.lookup", Failing(unavailable()))
    assert [r for r in caplog.records if r.name == "gds_vault.retry"] == []


def test_warning_without_an_attempt_cap_says_how_long_is_left(caplog):
    """Without a cap the WARNING names the attempt and the time left before the deadline."""
    caplog.set_level(logging.WARNING, logger="gds_vault.retry")
    time = FakeTime()
    retry = policy(time, attempts=None, initial_wait=0.5, deadline=30.0)
    retry.call("vault.read", Failing(VaultConnectionError("connection refused")))
    (record,) = [r for r in caplog.records if r.name == "gds_vault.retry"]
    message = record.getMessage()
    assert "attempt 1 failed" in message
    assert "30.0 s left before the deadline" in message
    assert record.exc_info is None  # no traceback in a retry warning


# -- one deadline per operation ---------------------------------------------------------------


def test_nested_retries_share_one_deadline_and_do_not_multiply():
    """A login retried inside a read that is itself retried ends by one deadline (plus the
    last attempt's work), and the outer loop does not retry what the inner gave up on."""
    time = FakeTime()
    retry = policy(time, initial_wait=1.0, max_wait=4.0, deadline=20.0)
    login = Failing(*[VaultConnectionError("refused") for _ in range(100)], work=0.5, time=time)
    reads = []

    def read() -> object:
        reads.append(time.now)
        return retry.call("vault.login", login)

    start = time.now
    with pytest.raises(VaultConnectionError):
        retry.call("vault.read", read)
    assert time.now - start <= 20.0 + 0.5  # the deadline plus one attempt's work
    assert len(reads) == 1  # the read was not retried around a login that gave up
    assert login.calls >= 6


def test_nested_attempt_caps_do_not_multiply():
    """An inner loop that gave up after its 3 attempts is not run again by the outer loop."""
    time = FakeTime()
    retry = policy(time, attempts=3, initial_wait=0.1, deadline=60.0)
    inner = Failing(*[unavailable() for _ in range(20)])
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", lambda: retry.call("vault.login", inner))
    assert inner.calls == 3


def test_operation_gives_sequential_calls_one_deadline():
    """Inside operation(), a later call gets only what is left of the operation's deadline."""
    time = FakeTime()
    retry = policy(time, initial_wait=4.0, max_wait=4.0, deadline=10.0)
    first = Failing(unavailable(), unavailable())  # 8 s of waits, then success
    second = Failing(*[unavailable() for _ in range(10)])
    with retry.operation("vault.get_secret"):
        assert retry.call("vault.login", first) == "ok"
        assert time_left() == pytest.approx(2.0)
        with pytest.raises(VaultUnavailableError):
            retry.call("vault.read", second)
    assert time.slept == [4.0, 4.0, 2.0]  # the read's one wait is cut to the 2 s left
    assert second.calls == 2
    assert time_left() is None  # the operation is over


def test_operation_opened_inside_another_joins_it():
    """A nested operation keeps the outer deadline, even from a policy with a longer one."""
    time = FakeTime()
    outer = policy(time, deadline=5.0)
    inner = policy(time, deadline=500.0)
    with outer.operation("snowflake.connect"):
        time.now += 3.0
        with inner.operation("vault.get_secret"):
            assert time_left() == pytest.approx(2.0)
        assert time_left() == pytest.approx(2.0)


def test_operations_belong_to_their_thread():
    """An operation in one thread does not limit calls made in another."""
    import threading

    time = FakeTime()
    retry = policy(time, deadline=5.0)
    seen: list[float | None] = []
    with retry.operation("vault.read"):
        time.now += 4.0
        thread = threading.Thread(target=lambda: seen.append(time_left()))
        thread.start()
        thread.join()
    assert seen == [None]


# -- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_during_a_wait_stops_at_once():
    """KeyboardInterrupt raised in a retry wait propagates; no further attempt is made."""

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    retry = RetryPolicy(sleep=interrupted)
    fn = Failing(*[VaultConnectionError("refused") for _ in range(5)])
    with pytest.raises(KeyboardInterrupt):
        retry.call("vault.read", fn)
    assert fn.calls == 1


def test_ctrl_c_during_an_attempt_is_never_retried():
    """KeyboardInterrupt from an attempt is re-raised, even by a predicate that says yes."""
    time = FakeTime()
    fn = Failing(VaultConnectionError("refused"), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        policy(time, initial_wait=0.1).call("vault.read", fn, retry_if=lambda exc: True)
    assert fn.calls == 2
    assert time.slept == [0.1]
