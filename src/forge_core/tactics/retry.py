"""Retry with exponential backoff, jitter and an overall deadline, built on tenacity.

tenacity does the retrying; this module pins the parts the seed systems got wrong or left out:
every sleep goes through the injected :class:`~forge_core.clock.Clock` (so retries run in
virtual time), the deadline bounds the *total* time including sleeps, jitter is seeded, the
policy counts what it did, and the error that finally escapes says how many attempts it took.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import tenacity

from forge_core.clock import Clock, RealClock

__all__ = ["Backoff", "CrashLoopWindow", "RetryPolicy", "RetryStats"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class RetryStats:
    """Cumulative counts over every call made through one policy."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    successes: int = 0
    failures: int = 0
    slept: float = 0.0


class RetryPolicy:
    """Backoff ``initial * multiplier**(n-1)`` capped at ``max_backoff``, +/- ``jitter`` fraction.

    Retries exceptions matching ``retry_on`` unless they match ``give_up_on``; stops after
    ``max_attempts`` or when the next sleep would cross ``deadline`` seconds from the first
    attempt (a sleep is shortened to end at the deadline, then one last attempt is made).
    Use ``policy.call(fn, ...)``, ``await policy.acall(fn, ...)`` or ``@policy`` on a sync or
    async function. Sync calls sleep with ``sync_sleep`` (``time.sleep`` on a real clock); a
    virtual clock cannot be slept on synchronously, so use ``acall`` there or pass ``sync_sleep``.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        initial: float = 0.1,
        max_backoff: float = 5.0,
        multiplier: float = 2.0,
        jitter: float = 0.1,
        deadline: float | None = None,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        give_up_on: tuple[type[BaseException], ...] = (),
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        sync_sleep: Callable[[float], None] | None = None,
        on_retry: Callable[[int, float], None] | None = None,
    ) -> None:
        problems = []
        if max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {max_attempts!r}")
        if initial < 0 or max_backoff < 0:
            problems.append(f"initial and max_backoff must be >= 0 s, got {initial!r} and {max_backoff!r}")
        if multiplier < 1:
            problems.append(f"multiplier must be >= 1, got {multiplier!r}")
        if not 0 <= jitter < 1:
            problems.append(f"jitter is a fraction in [0, 1), got {jitter!r}")
        if deadline is not None and deadline <= 0:
            problems.append(f"deadline must be > 0 s or None, got {deadline!r}")
        if problems:
            raise ValueError("RetryPolicy: " + "; ".join(problems))
        self.max_attempts = max_attempts
        self.initial = initial
        self.max_backoff = max_backoff
        self.multiplier = multiplier
        self.jitter = jitter
        self.deadline = deadline
        self.retry_on = tuple(retry_on)
        self.give_up_on = tuple(give_up_on)
        self.clock: Clock = clock or RealClock()
        # Made at the first jittered backoff: seeding a Random (from os.urandom without a seed) costs more
        # than the rest of this constructor, and most policies (a supervisor's restarts) have no jitter.
        # Made later from the same seed, it gives the same sequence.
        self._seed = seed
        self._rng: random.Random | None = None
        self._sync_sleep = sync_sleep
        #: Called as ``on_retry(retries_so_far, sleep_seconds)`` before each backoff sleep
        #: (the runtime counts and traces retries through it).
        self.on_retry = on_retry
        self.stats = RetryStats()

    # -- the backoff schedule ------------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """The sleep after failed attempt number ``attempt`` (1-based), jitter included."""
        base = min(self.max_backoff, self.initial * self.multiplier ** (attempt - 1))
        if self.jitter:
            if self._rng is None:
                self._rng = random.Random(self._seed)
            base *= self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(base, self.max_backoff * (1 + self.jitter))

    def _remaining(self, start: float) -> float | None:
        return None if self.deadline is None else self.deadline - (self.clock.monotonic() - start)

    def _stops(self, attempt: int, start: float) -> bool:
        """Whether failed attempt number ``attempt`` is the last (max_attempts, or the deadline passed)."""
        if attempt >= self.max_attempts:
            return True
        left = self._remaining(start)
        return left is not None and left <= 0

    def _wait(self, attempt: int, start: float) -> float:
        """The sleep after failed attempt number ``attempt``, cut to the deadline."""
        pause = self.backoff(attempt)
        left = self._remaining(start)
        return pause if left is None else max(0.0, min(pause, left))

    def _controls(self, start: float, done: int = 0) -> dict[str, Any]:
        """tenacity's stop, wait and retry for this policy; ``done``: attempts made before tenacity's first."""
        retry: tenacity.retry_base = tenacity.retry_if_exception_type(self.retry_on)
        if self.give_up_on:
            retry = retry & tenacity.retry_if_not_exception_type(self.give_up_on)
        return {"stop": lambda state: self._stops(state.attempt_number + done, start),
                "wait": lambda state: self._wait(state.attempt_number + done, start),
                "retry": retry, "reraise": True}

    def _note(self, exc: BaseException, attempts: int, start: float) -> None:
        took = self.clock.monotonic() - start
        if isinstance(exc, self.give_up_on) or not isinstance(exc, self.retry_on):
            why = f"{type(exc).__name__} is not retried by this policy"
        elif attempts >= self.max_attempts:
            why = f"max_attempts={self.max_attempts} reached"
        else:
            why = f"deadline {self.deadline} s reached"
        exc.add_note(f"RetryPolicy: gave up after {attempts} attempt(s) over {took:.3f} s ({why})")

    # -- entry points ------------------------------------------------------------------------
    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call sync ``fn`` with retries; re-raises the last error with a note of attempts."""
        sleep = self._sync_sleep
        if sleep is None:
            if getattr(self.clock, "is_virtual", False):
                raise RuntimeError(
                    "RetryPolicy.call: a virtual clock cannot be slept on synchronously; "
                    "use 'await policy.acall(...)' or pass sync_sleep="
                )
            sleep = time.sleep
        start = self.clock.monotonic()
        self.stats.calls += 1
        base_sleep = sleep

        def counted_sleep(seconds: float) -> None:
            self.stats.retries += 1
            self.stats.slept += seconds
            if self.on_retry is not None:
                self.on_retry(self.stats.retries, seconds)
            base_sleep(seconds)

        retrying = tenacity.Retrying(sleep=counted_sleep, **self._controls(start))
        attempts = 0

        def counted(*a: Any, **kw: Any) -> T:
            nonlocal attempts
            attempts += 1
            self.stats.attempts += 1
            return fn(*a, **kw)

        try:
            result = retrying(counted, *args, **kwargs)
        except BaseException as exc:
            self.stats.failures += 1
            self._note(exc, attempts, start)
            raise
        self.stats.successes += 1
        return result

    async def acall(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await async ``fn`` with retries, sleeping through the injected clock.

        The first attempt is a plain await: tenacity's machinery per call cost more than many a call it
        wraps (an MMS status report: ~1 % of industry40's simulated day). A failure it would retry takes the
        schedule from there: the first sleep, then tenacity from attempt 2 (the same stops, sleeps and
        jitter draws in the same order)."""
        start = self.clock.monotonic()
        self.stats.calls += 1
        self.stats.attempts += 1
        try:
            first: T = await fn(*args, **kwargs)
        except BaseException as exc:
            if (not isinstance(exc, self.retry_on) or isinstance(exc, self.give_up_on)
                    or self._stops(1, start)):
                self.stats.failures += 1
                self._note(exc, 1, start)
                raise
        else:
            self.stats.successes += 1
            return first

        async def counted_sleep(seconds: float) -> None:
            self.stats.retries += 1
            self.stats.slept += seconds
            if self.on_retry is not None:
                self.on_retry(self.stats.retries, seconds)
            await self.clock.sleep(seconds)

        retrying = tenacity.AsyncRetrying(sleep=counted_sleep, **self._controls(start, done=1))
        attempts = 1

        async def counted(*a: Any, **kw: Any) -> T:
            nonlocal attempts
            attempts += 1
            self.stats.attempts += 1
            return await fn(*a, **kw)

        try:
            await counted_sleep(self._wait(1, start))  # after the first attempt, as tenacity would sleep
            result: T = await retrying(counted, *args, **kwargs)
        except BaseException as exc:
            self.stats.failures += 1
            self._note(exc, attempts, start)
            raise
        self.stats.successes += 1
        return result

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through this policy."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, initial={self.initial}, "
            f"max_backoff={self.max_backoff}, multiplier={self.multiplier}, jitter={self.jitter}, "
            f"deadline={self.deadline})"
        )


class Backoff:
    """The delays of a loop that retries forever (reconnects, restarts): a :class:`RetryPolicy`'s
    schedule walked one failure at a time, reset after a success.

    ``delay = backoff.next()`` after each failure (``initial``, ``initial * multiplier``, … capped at
    ``maximum``, +/- ``jitter``); ``backoff.reset()`` once the loop succeeded. Time is never read
    here: the caller sleeps on its own clock. One class for every such loop, so the schedule is
    configured and tested in one place.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, multiplier: float = 2.0,
                 jitter: float = 0.0, *, seed: int | None = None) -> None:
        self._policy = RetryPolicy(max_attempts=1, initial=initial, max_backoff=maximum,
                                   multiplier=multiplier, jitter=jitter, seed=seed)
        #: Failures since the last :meth:`reset`.
        self.failures = 0

    def next(self) -> float:
        """Count one failure and return the delay to wait before the next try."""
        self.failures += 1
        return self._policy.backoff(self.failures)

    def peek(self) -> float:
        """The delay :meth:`next` would return now, without counting (jitter aside)."""
        return min(self._policy.max_backoff, self._policy.initial * self._policy.multiplier ** self.failures)

    def reset(self) -> None:
        self.failures = 0

    def __repr__(self) -> str:
        p = self._policy
        return f"Backoff(initial={p.initial}, maximum={p.max_backoff}, multiplier={p.multiplier}, jitter={p.jitter})"


class CrashLoopWindow:
    """Counts failures inside a sliding window: more than ``max_failures`` within ``window``
    seconds is a crash loop. Used by the in-process supervisor and the process runner alike.

    ``record(now)`` takes a monotonic time from the caller's clock and returns the number of
    failures now inside the window; ``looping`` says whether that number is over the limit.
    """

    def __init__(self, max_failures: int, window: float) -> None:
        if max_failures < 0 or window <= 0:
            raise ValueError(f"CrashLoopWindow: max_failures >= 0 and window > 0 s, got {max_failures}, {window}")
        self.max_failures = max_failures
        self.window = window
        self._times: deque[float] = deque()

    def record(self, now: float) -> int:
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times)

    @property
    def count(self) -> int:
        return len(self._times)

    @property
    def looping(self) -> bool:
        return len(self._times) > self.max_failures
