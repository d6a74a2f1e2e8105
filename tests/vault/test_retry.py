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
    VaultUnavailableError,
)
from gds_vault.retry import is_retryable


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


def test_deadline_stops_retries_that_would_start_after_it():
    """No retry is scheduled when its wait would end past the deadline."""
    time = FakeTime()
    retry = policy(time, attempts=50, initial_wait=1.0, max_wait=100.0, deadline=10.0)
    fn = Failing(*[unavailable() for _ in range(50)])
    with pytest.raises(VaultUnavailableError):
        retry.call("vault.read", fn)
    # 1 + 2 + 4 = 7 s slept; the next wait (8 s) would end at 15 s, past the 10 s deadline.
    assert time.slept == [1.0, 2.0, 4.0]
    assert fn.calls == 4


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


def test_connection_error_marked_not_retryable_is_not_retried():
    """A connection error whose retryable flag was cleared (a TLS failure) is not retried."""
    error = VaultConnectionError("certificate verify failed")
    error.retryable = False
    time = FakeTime()
    fn = Failing(error)
    with pytest.raises(VaultConnectionError):
        policy(time, attempts=5, initial_wait=0.1).call("vault.read", fn)
    assert fn.calls == 1


def test_is_retryable_follows_the_error_tree():
    """Transport errors and Vault's unavailable answers are retryable; the rest are not."""
    assert is_retryable(VaultConnectionError("x"))
    assert is_retryable(VaultTimeoutError("x"))
    assert is_retryable(VaultUnavailableError("x"))
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
    """Defaults: 4 attempts, 0.25 s doubling waits capped at 4 s, 0.25 s jitter, 30 s deadline."""
    retry = RetryPolicy()
    assert (retry.attempts, retry.initial_wait, retry.multiplier) == (4, 0.25, 2.0)
    assert (retry.max_wait, retry.jitter, retry.deadline) == (4.0, 0.25, 30.0)


def test_policy_is_frozen_and_replaceable():
    """A policy cannot be changed in place; dataclasses.replace makes a variant."""
    retry = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        retry.attempts = 10  # type: ignore[misc]
    variant = dataclasses.replace(retry, attempts=10)
    assert variant.attempts == 10
    assert retry.attempts == 4
    with pytest.raises(VaultConfigError):
        dataclasses.replace(retry, attempts=0)


def test_policies_compare_by_settings_not_seams():
    """Equality and repr ignore the sleep and clock seams."""
    recorded: list[float] = []
    assert RetryPolicy(attempts=2) == RetryPolicy(attempts=2, sleep=recorded.append)
    assert RetryPolicy(attempts=2) != RetryPolicy(attempts=3)
    assert "sleep" not in repr(RetryPolicy())
    assert "attempts=4" in repr(RetryPolicy())


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
