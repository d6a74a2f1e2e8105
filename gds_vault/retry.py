"""The one retry policy shared by gds_vault and gds_snowflake.

A :class:`RetryPolicy` is a small frozen value: how many attempts, how the waits between
them grow, and an overall deadline. It is built on tenacity and used the same way
everywhere::

    for attempt in policy.retrying("vault.read"):
        with attempt:
            response = send()

Only exceptions the predicate accepts are retried (by default those whose ``retryable``
attribute is true: connection errors, timeouts, 412, 429, 500, 502, 503, 504 from Vault).
A server's Retry-After is honoured when the error carries one (``retry_after`` seconds),
as long as the wait still ends before the deadline. Each scheduled retry logs one WARNING
naming the operation, the attempt, the wait and the cause; giving up logs one ERROR.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gds_vault._errors import VaultConfigError

if TYPE_CHECKING:
    import tenacity

__all__ = ["RetryPolicy", "is_retryable"]

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 4  # tries in all, the first included (Vault's CLI retries twice)
DEFAULT_INITIAL_WAIT = 0.25  # seconds before the first retry
DEFAULT_MAX_WAIT = 4.0  # seconds: the cap on any one wait
DEFAULT_MULTIPLIER = 2.0  # each wait doubles
DEFAULT_JITTER = 0.25  # seconds: up to this much random time added to each wait
DEFAULT_DEADLINE = 30.0  # seconds from the first attempt; no retry is scheduled past it


def is_retryable(exc: BaseException) -> bool:
    """Whether an error says that sending the same request again may succeed."""
    return bool(getattr(exc, "retryable", False))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, a cap per wait, a cap on attempts and a deadline.

    The n-th retry waits ``min(max_wait, initial_wait * multiplier ** (n - 1))`` plus a
    random ``[0, jitter)`` seconds, or the server's Retry-After if that is longer. No retry
    is scheduled if it would start after ``deadline`` seconds from the first attempt.

    Args:
        attempts: Tries in all, including the first; 1 disables retries. Default 4.
        initial_wait: Seconds before the first retry. Default 0.25.
        max_wait: Seconds; no single wait is longer (Retry-After excepted). Default 4.0.
        multiplier: Growth factor of the waits. Default 2.0.
        jitter: Up to this many random seconds added to each wait, so that many
            clients failing together do not retry together. Default 0.25.
        deadline: Seconds from the first attempt after which no retry starts. Default 30.
        sleep: Called with the seconds to wait; tests pass a recorder. Default time.sleep.
        clock: Monotonic seconds, for the deadline. Default time.monotonic.
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial_wait: float = DEFAULT_INITIAL_WAIT
    max_wait: float = DEFAULT_MAX_WAIT
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: float = DEFAULT_JITTER
    deadline: float = DEFAULT_DEADLINE
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise VaultConfigError("RetryPolicy.attempts must be an integer of at least 1.")
        if self.attempts < 1:
            raise VaultConfigError(
                f"RetryPolicy.attempts is {self.attempts}; it counts the first try, so it "
                "must be at least 1 (use 1 to disable retries)."
            )
        for name in ("initial_wait", "max_wait", "multiplier", "jitter", "deadline"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)  # NaN passes `< 0` and would silently disable the deadline
                or value < 0
            ):
                raise VaultConfigError(
                    f"RetryPolicy.{name} is {value!r}; it must be a number of seconds >= 0."
                )
        if self.deadline <= 0:
            raise VaultConfigError("RetryPolicy.deadline must be more than 0 seconds.")

    @classmethod
    def no_retries(cls) -> RetryPolicy:
        """A policy that tries once and never retries."""
        return cls(attempts=1)

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1-based), without jitter, in seconds."""
        return min(self.max_wait, self.initial_wait * self.multiplier ** (retry_number - 1))

    def retrying(
        self,
        operation: str,
        *,
        retry_if: Callable[[BaseException], bool] = is_retryable,
        started: float | None = None,
    ) -> tenacity.Retrying:
        """A tenacity ``Retrying`` that applies this policy to one operation.

        Args:
            operation: A short name for logs, such as ``"vault.read"``.
            retry_if: Decides whether an exception is worth another attempt.
            started: When the first attempt began (``clock()`` value), if before now;
                the deadline counts from it. Default: now.

        Returns:
            An iterable of attempts; the last error is re-raised unchanged on giving up.
        """
        import tenacity  # tenacity is imported on first use to keep imports cheap

        if started is None:
            started = self.clock()

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            seconds = self.backoff(state.attempt_number) + random.uniform(0, self.jitter)  # noqa: S311
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > seconds:
                seconds = float(retry_after)
            return seconds

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return self.clock() - started + state.upcoming_sleep >= self.deadline

        def before_sleep(state: tenacity.RetryCallState) -> None:
            logger.warning(
                "Retrying %s in %.2f s: attempt %d of %d failed: %s",
                operation,
                state.upcoming_sleep,
                state.attempt_number,
                self.attempts,
                _describe(state.outcome.exception() if state.outcome else None),
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            exc = state.outcome.exception() if state.outcome else None
            # With retries disabled (attempts=1) nothing was given up; the caller reports it.
            if self.attempts > 1:
                logger.error(
                    "Giving up on %s after %d attempts in %.2f s: %s",
                    operation,
                    state.attempt_number,
                    self.clock() - started,
                    _describe(exc),
                )
            return state.outcome.result() if state.outcome else None

        return tenacity.Retrying(
            sleep=self.sleep,
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(retry_if),
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            reraise=True,
        )

    def call(
        self,
        operation: str,
        fn: Callable[[], Any],
        *,
        retry_if: Callable[[BaseException], bool] = is_retryable,
    ) -> Any:
        """Call ``fn()`` under this policy and return its result.

        The first attempt runs without building tenacity's machinery (the common case,
        and a measurable share of a fast request); only a failure worth retrying enters
        the tenacity loop, whose first attempt re-raises that failure instead of calling
        ``fn`` again, so attempts, waits, logs and the deadline are as if it had run there.
        """
        started = self.clock()
        try:
            return fn()
        except Exception as exc:
            if self.attempts == 1 or not retry_if(exc):
                raise
            first_failure: list[BaseException] = [exc]

        def attempt() -> Any:
            if first_failure:
                raise first_failure.pop()
            return fn()

        result: Any = None
        # tenacity ends the loop after the first success and re-raises the last error.
        for tenacity_attempt in self.retrying(operation, retry_if=retry_if, started=started):
            with tenacity_attempt:
                result = attempt()
        return result

    def waits(self) -> Iterator[float]:
        """The nominal waits between attempts (no jitter), for documentation and tests."""
        for n in range(1, self.attempts):
            yield self.backoff(n)


def _describe(exc: BaseException | None) -> str:
    """A one-line cause for logs: the class and the (secret-free) message."""
    if exc is None:
        return "no exception"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
