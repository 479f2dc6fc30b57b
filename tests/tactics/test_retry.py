from __future__ import annotations

import pytest

from forge_core.clock import VirtualClock
from forge_core.tactics.retry import Backoff, CrashLoopWindow, RetryPolicy


class Flaky:
    def __init__(self, failures: int, exc: type[Exception] = ConnectionError) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return value


def test_async_retries_sleep_in_virtual_time_with_exponential_backoff(vclock: VirtualClock) -> None:
    policy = RetryPolicy(jitter=0.0, clock=vclock)
    flaky = Flaky(3)

    async def op(v: str) -> str:
        return flaky(v)

    assert vclock.run(policy.acall(op, "done")) == "done"
    assert vclock.elapsed == pytest.approx(0.1 + 0.2 + 0.4)
    assert (policy.stats.attempts, policy.stats.retries, policy.stats.successes) == (4, 3, 1)


def test_gives_up_after_max_attempts_with_note(vclock: VirtualClock) -> None:
    policy = RetryPolicy(max_attempts=3, jitter=0.0, clock=vclock)

    async def op() -> None:
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError, match="broker away") as info:
        vclock.run(policy.acall(op))
    assert any("gave up after 3 attempt(s)" in n and "max_attempts=3" in n for n in info.value.__notes__)
    assert policy.stats.failures == 1 and policy.stats.retries == 2


def test_deadline_bounds_total_time(vclock: VirtualClock) -> None:
    policy = RetryPolicy(max_attempts=100, initial=1.0, multiplier=2.0, jitter=0.0, deadline=5.0, clock=vclock)

    async def op() -> None:
        raise TimeoutError("plc")

    with pytest.raises(TimeoutError) as info:
        vclock.run(policy.acall(op))
    assert vclock.elapsed == pytest.approx(5.0)  # 1 + 2 + (2 of 4) then one last attempt at 5 s
    assert policy.stats.attempts == 4
    assert "deadline 5.0 s reached" in info.value.__notes__[0]


def test_give_up_on_is_not_retried(vclock: VirtualClock) -> None:
    policy = RetryPolicy(clock=vclock, give_up_on=(ValueError,))
    flaky = Flaky(5, ValueError)
    with pytest.raises(ValueError) as info:
        RetryPolicy(clock=vclock, give_up_on=(ValueError,), sync_sleep=lambda s: None).call(flaky)
    assert flaky.calls == 1 and "not retried" in info.value.__notes__[0]
    assert policy.stats.calls == 0


@pytest.mark.parametrize("failures", [0, 1, 2, 5, 9])
def test_acall_keeps_the_schedule_of_call(vclock: VirtualClock, failures: int) -> None:
    """acall makes its first attempt without tenacity: the sleeps (jittered, seeded, cut by the deadline), the
    attempts, the stats and the note are still those of call(), whose every attempt goes through tenacity."""
    def policy(**kw: object) -> RetryPolicy:
        return RetryPolicy(max_attempts=6, initial=0.5, jitter=0.3, deadline=9.0, seed=11, **kw)  # type: ignore[arg-type]

    class SteppedClock:  # the reference's time moves only by its sleeps, as the virtual clock's does
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    stepped = SteppedClock()
    sync_sleeps: list[float] = []
    reference = policy(clock=stepped, sync_sleep=stepped.sleep, on_retry=lambda n, s: sync_sleeps.append(s))
    async_sleeps: list[float] = []
    under_test = policy(clock=vclock, on_retry=lambda n, s: async_sleeps.append(s))
    flaky_sync, flaky_async = Flaky(failures), Flaky(failures)

    async def op() -> str:
        return flaky_async()

    outcomes = []
    for run in (lambda: reference.call(flaky_sync), lambda: vclock.run(under_test.acall(op))):
        try:
            outcomes.append(run())
        except ConnectionError as exc:
            outcomes.append(exc.__notes__[0].split(" over ")[0])
    assert outcomes[0] == outcomes[1]
    assert async_sleeps == sync_sleeps and flaky_async.calls == flaky_sync.calls
    assert vars(under_test.stats) == pytest.approx(vars(reference.stats))


def test_acall_of_a_first_attempt_that_succeeds_builds_no_retry_machinery(vclock: VirtualClock,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import tenacity

    monkeypatch.setattr(tenacity, "AsyncRetrying", None)  # would raise TypeError if called

    async def op() -> str:
        return "ok"

    policy = RetryPolicy(clock=vclock)
    assert vclock.run(policy.acall(op)) == "ok"
    assert (policy.stats.calls, policy.stats.attempts, policy.stats.successes) == (1, 1, 1)


def test_jitter_is_seeded_and_bounded() -> None:
    a = RetryPolicy(seed=7, jitter=0.1)
    b = RetryPolicy(seed=7, jitter=0.1)
    seq_a = [a.backoff(n) for n in range(1, 12)]
    assert seq_a == [b.backoff(n) for n in range(1, 12)]
    for n, v in enumerate(seq_a, 1):
        base = min(5.0, 0.1 * 2 ** (n - 1))
        assert base * 0.9 <= v <= base * 1.1


def test_sync_decorator_and_sleep_hook() -> None:
    slept: list[float] = []
    policy = RetryPolicy(jitter=0.0, sync_sleep=slept.append)
    flaky = Flaky(2)

    @policy
    def op(v: str) -> str:
        return flaky(v)

    assert op("x") == "x" and slept == [0.1, 0.2]
    assert op.__name__ == "op"


def test_async_decorator(vclock: VirtualClock) -> None:
    policy = RetryPolicy(jitter=0.0, clock=vclock)
    flaky = Flaky(1)

    @policy
    async def op() -> str:
        return flaky()

    assert vclock.run(op()) == "ok" and vclock.elapsed == pytest.approx(0.1)


def test_sync_call_on_virtual_clock_needs_a_sleep(vclock: VirtualClock) -> None:
    with pytest.raises(RuntimeError, match="virtual clock cannot be slept on synchronously"):
        RetryPolicy(clock=vclock).call(Flaky(0))


def test_validation() -> None:
    with pytest.raises(ValueError, match=r"max_attempts must be >= 1.*jitter is a fraction"):
        RetryPolicy(max_attempts=0, jitter=2.0)


# -- Backoff: the one schedule of reconnect and restart loops ------------------------------------
def test_backoff_doubles_from_initial_caps_at_maximum_and_resets():
    backoff = Backoff(0.5, 4.0)
    assert backoff.peek() == 0.5
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.failures == 0 and backoff.next() == 0.5


def test_backoff_multiplier_and_peek_does_not_count():
    backoff = Backoff(1.0, 100.0, multiplier=3.0)
    assert backoff.peek() == backoff.peek() == 1.0
    assert [backoff.next() for _ in range(3)] == [1.0, 3.0, 9.0]
    assert backoff.peek() == 27.0


def test_backoff_jitter_is_bounded_and_seeded():
    delays = [Backoff(1.0, 8.0, jitter=0.25, seed=3) for _ in range(2)]
    first = [delays[0].next() for _ in range(8)]
    assert first == [delays[1].next() for _ in range(8)], "same seed, same delays"
    expected = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert all(0.75 * e <= d <= 1.25 * e for d, e in zip(first, expected, strict=True))
    assert len(set(first[3:])) > 1, "capped delays are still jittered"


def test_backoff_refuses_a_bad_schedule():
    with pytest.raises(ValueError, match="multiplier must be >= 1"):
        Backoff(1.0, 2.0, multiplier=0.5)
    with pytest.raises(ValueError, match="jitter is a fraction"):
        Backoff(1.0, 2.0, jitter=1.5)


# -- CrashLoopWindow ---------------------------------------------------------------------------
def test_crash_loop_window_counts_failures_inside_the_window_only():
    window = CrashLoopWindow(max_failures=2, window=10.0)
    assert window.record(0.0) == 1 and not window.looping
    assert window.record(4.0) == 2 and not window.looping
    assert window.record(9.0) == 3 and window.looping, "three within 10 s is over the limit of two"
    assert window.record(15.0) == 2, "the failures at 0 s and 4 s slid out"
    assert not window.looping and window.count == 2


def test_crash_loop_window_boundary_is_inclusive():
    window = CrashLoopWindow(max_failures=1, window=5.0)
    window.record(0.0)
    assert window.record(5.0) == 2 and window.looping, "exactly `window` seconds apart still counts"
    assert window.record(10.001) == 1


def test_crash_loop_window_with_zero_failures_allowed_loops_on_the_first():
    window = CrashLoopWindow(max_failures=0, window=60.0)
    window.record(1.0)
    assert window.looping


def test_crash_loop_window_refuses_bad_limits():
    with pytest.raises(ValueError, match="window > 0"):
        CrashLoopWindow(3, 0.0)
    with pytest.raises(ValueError, match="max_failures >= 0"):
        CrashLoopWindow(-1, 10.0)
