"""The one retry policy shared by gds_vault and gds_snowflake.

A :class:`RetryPolicy` is a small frozen value: how the waits between attempts grow, an
optional cap on attempts, and an overall deadline. It is built on tenacity and used the
same way everywhere::

    for attempt in policy.retrying("vault.read"):
        with attempt:
            response = send()

By default it retries until the deadline (30 s): the waits are 0.5, 1, 2 and then 4 s,
each plus up to 0.5 s of random jitter, and the last wait is shortened so that the last
attempt starts at the deadline. That rides out a Vault restart, a leader election or a
load balancer's failover of up to about 25 s.

**One deadline per operation.** ``with policy.operation("vault.get_secret"):`` opens an
operation; every retry loop inside it, in this thread, shares its deadline instead of
starting its own, and a failure that an inner loop has already given up on is not
retried again by an outer one. So a login retried inside a read that is itself retried
still ends within one deadline plus one request timeout. The first operation opened
sets the deadline; operations opened inside it join it. Without an operation, each
``call``/``retrying`` is its own.

Only exceptions the predicate accepts are retried (by default those whose type says
``retryable``: connection errors, timeouts, 412, 429, 500, 502, 503, 504 from Vault), and
never a ``KeyboardInterrupt`` or other ``BaseException``: Ctrl-C during a wait stops at
once. A server's Retry-After is honoured when the error carries one (``retry_after``
seconds); if it ends past the deadline, the operation gives up at once. Each scheduled
retry logs one WARNING naming the operation, the attempt, the wait and the cause;
giving up logs one ERROR.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gds_vault._errors import VaultConfigError
from gds_vault._logging import redact
from gds_vault._printable import printable

if TYPE_CHECKING:
    import tenacity

__all__ = ["RetryPolicy", "is_retryable", "time_left"]

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS: int | None = None  # no cap: retry until the deadline
DEFAULT_INITIAL_WAIT = 0.5  # seconds before the first retry
DEFAULT_MAX_WAIT = 4.0  # seconds: the cap on any one wait (Retry-After excepted)
DEFAULT_MULTIPLIER = 2.0  # each wait doubles
DEFAULT_JITTER = 0.5  # seconds: up to this much random time added to each wait
DEFAULT_DEADLINE = 30.0  # seconds from the start of the operation; no retry starts later


def is_retryable(exc: BaseException) -> bool:
    """Whether an error's type says that sending the same request again may succeed."""
    return bool(getattr(exc, "retryable", False))


@dataclass(slots=True)
class _Operation:
    """The operation under way in this thread (or task): its deadline on its clock."""

    name: str
    clock: Callable[[], float]
    deadline: float
    # Failures an inner retry loop gave up on; outer loops re-raise them unretried.
    # (Exceptions cannot be weakly referenced; the list lives as long as the operation.)
    given_up: list[BaseException] = field(default_factory=list)

    def has_given_up(self, exc: BaseException) -> bool:
        return any(seen is exc for seen in self.given_up)


_current: ContextVar[_Operation | None] = ContextVar("gds_vault_retry_operation", default=None)


def time_left() -> float | None:
    """Seconds left before the deadline of the operation under way (None: no operation).

    For code that starts something with a timeout of its own inside an operation, such
    as a Snowflake login, so that it ends by the operation's deadline.
    """
    scope = _current.get()
    return None if scope is None else scope.deadline - scope.clock()


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, a cap per wait, a deadline and an optional attempt cap.

    The n-th retry waits ``min(max_wait, initial_wait * multiplier ** (n - 1))`` plus a
    random ``[0, jitter)`` seconds, or the server's Retry-After if that is longer. A wait
    that would end past the deadline is shortened to end at it, so the last attempt
    starts at the deadline at the latest; a Retry-After ending past it ends the operation
    at once. With the defaults: 0.5, 1, 2, 4, 4, 4... seconds (plus jitter) for 30 s,
    about 11 attempts against a server that stays down.

    Args:
        attempts: A cap on the tries of each request, the first included (1 disables
            retries), or None for no cap: retry until the deadline. Default None.
        initial_wait: Seconds before the first retry. Default 0.5.
        max_wait: Seconds; no single wait is longer (Retry-After excepted). Default 4.0.
        multiplier: Growth factor of the waits. Default 2.0.
        jitter: Up to this many random seconds added to each wait, so that many
            clients failing together do not retry together. Default 0.5.
        deadline: Seconds from the start of the operation the user called (see
            :meth:`operation`) after which no retry starts. Default 30.
        sleep: Called with the seconds to wait; tests pass a recorder. Default time.sleep.
        clock: Monotonic seconds, for the deadline. Default time.monotonic.
    """

    attempts: int | None = DEFAULT_ATTEMPTS
    initial_wait: float = DEFAULT_INITIAL_WAIT
    max_wait: float = DEFAULT_MAX_WAIT
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: float = DEFAULT_JITTER
    deadline: float = DEFAULT_DEADLINE
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts is not None:
            if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
                raise VaultConfigError(
                    "RetryPolicy.attempts must be None (retry until the deadline) or an "
                    "integer of at least 1."
                )
            if self.attempts < 1:
                raise VaultConfigError(
                    f"RetryPolicy.attempts is {self.attempts}; it counts the first try, so it "
                    "must be at least 1 (use 1 to disable retries, None for no cap)."
                )
        for name in ("initial_wait", "max_wait", "multiplier", "jitter", "deadline"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)  # NaN passes `< 0` and would silently disable the deadline
                or math.isinf(value)
                or value < 0
            ):
                raise VaultConfigError(
                    f"RetryPolicy.{name} is {value!r}; it must be a finite number of seconds >= 0."
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

    def waits(self) -> Iterator[float]:
        """The nominal waits between attempts (no jitter, attempts taking no time), up to
        the attempts cap or the deadline, the last one shortened to end at the deadline."""
        spent = 0.0
        retry_number = 1
        while self.attempts is None or retry_number < self.attempts:
            left = self.deadline - spent
            if left <= 0:
                return
            wait = min(self.backoff(retry_number), left)
            yield wait
            spent += wait
            retry_number += 1

    def operation(self, name: str) -> _OperationScope:
        """A context manager: one deadline for everything inside the block, in this thread.

        Retry loops inside (this policy's or any other's) share the deadline, which
        starts now, instead of starting their own; an operation already under way is
        joined instead, keeping its deadline. :meth:`call` is an operation of its own
        unless it runs inside one; the loop of :meth:`retrying` joins one if under way::

            with policy.operation("etl.setup"):
                user = client.get_secret("secret/a", key="user")  # login, lookup, read
                rows = client.list_secrets("secret/b")  # what is left of the same 30 s

        Args:
            name: A short name for logs, such as ``"vault.get_secret"``.
        """
        return _OperationScope(name, self.clock, self.deadline)

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
                the deadline counts from it, except inside :meth:`operation`, whose
                deadline applies (on its clock). Default: now.

        Returns:
            An iterable of attempts; the last error is re-raised unchanged on giving up.
        """
        import tenacity  # tenacity is imported on first use to keep imports cheap

        scope = _current.get()
        if scope is not None:
            clock, deadline = scope.clock, scope.deadline
        else:
            clock = self.clock
            deadline = (started if started is not None else clock()) + self.deadline
        begun = clock() if started is None else started

        def worth_retrying(exc: BaseException) -> bool:
            # Ctrl-C and other BaseExceptions are never retried, whatever retry_if says.
            if not isinstance(exc, Exception):
                return False
            if scope is not None and scope.has_given_up(exc):
                return False  # an inner loop already spent the budget on it
            return retry_if(exc)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            seconds = self.backoff(state.attempt_number) + random.uniform(0, self.jitter)  # noqa: S311
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > seconds:
                return float(retry_after)  # the server's word; stop() checks the deadline
            return max(0.0, min(seconds, deadline - clock()))

        def stop(state: tenacity.RetryCallState) -> bool:
            if self.attempts is not None and state.attempt_number >= self.attempts:
                return True
            left = deadline - clock()
            if left <= 0:
                return True
            # A Retry-After ending past the deadline: the server will not be ready in time.
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            return isinstance(retry_after, int | float) and retry_after > left

        def before_sleep(state: tenacity.RetryCallState) -> None:
            logger.warning(
                "Retrying %s in %.2f s: attempt %d%s failed (%.1f s left before the deadline): %s",
                operation,
                state.upcoming_sleep,
                state.attempt_number,
                f" of {self.attempts}" if self.attempts is not None else "",
                max(0.0, deadline - clock()),
                _describe(state.outcome.exception() if state.outcome else None),
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None and scope is not None:
                scope.given_up.append(exc)
            # With retries disabled (attempts=1) nothing was given up; the caller reports it.
            if self.attempts != 1:
                logger.error(
                    "Giving up on %s after %d attempt%s in %.2f s: %s",
                    operation,
                    state.attempt_number,
                    "" if state.attempt_number == 1 else "s",
                    clock() - begun,
                    _describe(exc),
                )
            return state.outcome.result() if state.outcome else None

        return tenacity.Retrying(
            sleep=self.sleep,
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(worth_retrying),
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

        The call is an operation (see :meth:`operation`) unless it runs inside one: retry
        loops nested in ``fn`` share its deadline. The first attempt runs without building
        tenacity's machinery (the common case, and a measurable share of a fast request);
        only a failure worth retrying enters the tenacity loop, whose first attempt
        re-raises that failure instead of calling ``fn`` again, so attempts, waits, logs
        and the deadline are as if it had run there.
        """
        with self.operation(operation):
            scope = _current.get()  # this call's, or the one it joined
            started = (scope.clock if scope is not None else self.clock)()
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


class _OperationScope:
    """The context manager of :meth:`RetryPolicy.operation` (a class: it runs per request)."""

    __slots__ = ("_clock", "_deadline", "_name", "_token")

    def __init__(self, name: str, clock: Callable[[], float], deadline: float) -> None:
        self._name, self._clock, self._deadline = name, clock, deadline
        self._token: Token[_Operation | None] | None = None

    def __enter__(self) -> None:
        if _current.get() is None:  # nested: the outermost operation's deadline governs
            operation = _Operation(self._name, self._clock, self._clock() + self._deadline)
            self._token = _current.set(operation)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def _describe(exc: BaseException | None) -> str:
    """A one-line cause for logs: the class and the message's first line, with registered
    secrets masked (the messages hold none; this covers other libraries' errors and log
    handlers that :func:`configure_logging` did not install) and control characters
    escaped."""
    if exc is None:
        return "no exception"
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = printable(redact(text))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
