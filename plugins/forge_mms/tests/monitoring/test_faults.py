"""The fault detector over core's heartbeat status tactic: DOWN, DEGRADED and recovery boundaries."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from forge_core.tactics import Status

from forge_mms.monitoring.beats import BeatHistory
from forge_mms.monitoring.faults import FaultDetector

HEARTBEAT = SimpleNamespace(interval=1.0, degraded_after=1.5, error_rate_threshold=0.2, error_window=30.0,
                            recover_after=5)


def setup(max_gap=3.0, missed_beats=3, **heartbeat):
    detector = FaultDetector(SimpleNamespace(**{**vars(HEARTBEAT), **heartbeat}), max_gap=max_gap,
                             missed_beats=missed_beats)
    history = BeatHistory(300, late_after=detector.late_after)
    errors = {"n": 0.0}

    def beat(at, error=False):
        errors["n"] += 1 if error else 0
        return detector.observe(history.add("f", at, {"timestamp": at, "metrics": {"errors": errors["n"]}}))

    return detector, history, beat


def statuses_between(detector, start, end, step=0.25):
    seen = []
    t = start
    while t <= end + 1e-9:
        seen += [c.new for c in detector.evaluate(t)]
        t += step
    return seen


def test_two_missed_beats_are_not_down_three_are():
    detector, _, beat = setup()
    for t in range(5):
        beat(float(t))  # last beat at 4; beats due at 5, 6, 7
    assert detector.missed_beats(4.0, 6.0) == 1 and detector.missed_beats(4.0, 6.5) == 2
    assert detector.missed_beats(4.0, 7.0) == 2, "the beat due at 7 is not missed at 7"
    assert Status.DOWN not in statuses_between(detector, 4.25, 7.0), "2 missed beats (gap 3.0 s): not DOWN"
    assert detector.status("f") is Status.DEGRADED, "a gap over 1.5 intervals degrades"
    assert detector.evaluate(7.01)[0].new is Status.DOWN and detector.missed_beats(4.0, 7.01) == 3


def test_a_beat_after_two_missed_ones_keeps_it_from_down():
    detector, _, beat = setup()
    for t in range(5):
        beat(float(t))
    statuses_between(detector, 4.25, 6.75)
    beat(6.9)
    assert Status.DOWN not in statuses_between(detector, 7.0, 9.5)


def test_a_gap_over_max_gap_is_down_before_the_third_missed_beat():
    detector, _, beat = setup(max_gap=2.5)
    beat(0.0)
    assert detector.down_after == 2.5
    assert Status.DOWN not in statuses_between(detector, 0.25, 2.5)
    assert [c.new for c in detector.evaluate(2.51)] == [Status.DOWN]


def test_error_rate_at_the_threshold_stays_up_just_over_it_degrades():
    detector, history, beat = setup()
    changes = [beat(float(t), error=t >= 24) for t in range(30)]  # 6 of 30 beats failed: 0.2
    assert [c.new for c in changes if c] == [Status.UP], "discovered UP, never DEGRADED"
    assert history.calculate_error_rate("f", 30.0, 29.0) == pytest.approx(0.2)
    assert detector.monitor.error_rate("f") == pytest.approx(history.calculate_error_rate("f", 30.0, 29.0))

    detector, history, beat = setup()
    changes = [beat(float(t), error=t >= 23) for t in range(30)]  # 7 of 30
    assert detector.status("f") is Status.DEGRADED
    degraded = [c for c in changes if c and c.new is Status.DEGRADED]
    assert "error rate" in degraded[0].reason


def test_recovery_after_five_healthy_beats_not_four():
    detector, _, beat = setup()
    for t in range(3):
        beat(float(t))
    statuses_between(detector, 2.25, 6.0)
    assert detector.status("f") is Status.DOWN
    changes = [beat(10.0 + k) for k in range(4)]
    assert detector.status("f") is Status.DOWN and not any(changes)
    change = beat(14.0)
    assert change is not None and change.new is Status.UP and "5 consecutive healthy beats" in change.reason


def test_a_failing_beat_breaks_the_recovery_streak():
    detector, _, beat = setup()
    beat(0.0)
    statuses_between(detector, 0.25, 4.0)
    for k in range(4):
        beat(10.0 + k)
    beat(14.0, error=True)
    assert detector.status("f") is Status.DOWN
    for k in range(4):
        beat(15.0 + k)
    assert detector.status("f") is Status.DOWN
    assert beat(19.0).new is Status.UP


@pytest.mark.parametrize("seed", range(20))
def test_evaluate_skips_the_pass_only_when_no_verdict_can_come(seed):
    """The check's fast path (no pass over the factories before the oldest last beat is older than the
    shorter silence rule) gives exactly the verdicts of asking the monitor on every check: factories
    beating, going silent, late, erroring, restored UP or DOWN, beats out of order; checks mostly 0.25 s
    apart (so exactly on the 1.5 s and 3 s edges), sometimes 1e-10 s apart."""
    import random

    rng = random.Random(seed)
    fast, _, _ = setup()
    slow, _, _ = setup()
    histories = {d: BeatHistory(300, late_after=d.late_after) for d in (fast, slow)}
    fast.restore("r-up", "UP", 0.0)
    slow.restore("r-up", "UP", 0.0)
    fast.restore("r-down", "DOWN", 0.0)
    slow.restore("r-down", "DOWN", 0.0)
    errors = dict.fromkeys("abcd", 0.0)
    now, verdicts = 0.0, 0
    for _ in range(1500):
        now += rng.choice([0.25, 0.25, 0.25, 0.1, 1e-10, 0.5])
        for factory in "abcd":
            if rng.random() < (0.05 if factory == "d" else 0.25):
                errors[factory] += rng.random() < 0.1
                at = now - (rng.random() * 2 if rng.random() < 0.05 else 0.0)  # now and then a reordered beat
                payload = {"timestamp": at, "metrics": {"errors": errors[factory]}}
                seen = [d.observe(histories[d].add(factory, at, payload)) for d in (fast, slow)]
                assert seen[0] == seen[1]
        got, want = fast.evaluate(now), slow.monitor.evaluate(now)  # 0.25 s steps land on the rules' edges
        assert got == want, (seed, now)
        verdicts += len(got)
        assert fast.statuses() == slow.statuses()
        # what observe reads "still DOWN" from: the factories heard are those tracked and not DOWN
        assert set(fast._heard) == {f for f, s in fast.statuses().items() if s is not Status.DOWN}
    assert verdicts > 0


def test_next_verdict_is_the_first_instant_a_silence_verdict_falls():
    """next_verdict: the newest beat + 1.5 s while UP, + 3 s once DEGRADED, just past the strict edge;
    no verdict an instant before it, the verdict at it; none to wait for once DOWN."""
    detector, _, beat = setup()
    assert detector.next_verdict() == float("inf")
    for t in range(5):
        beat(float(t))
    due = detector.next_verdict()
    assert 5.5 < due <= 5.5 + 1e-5
    beat(3.5)  # a reordered beat moves nothing
    assert detector.next_verdict() == due
    assert detector.evaluate(5.5) == []
    assert [c.new for c in detector.evaluate(due)] == [Status.DEGRADED]
    due = detector.next_verdict()
    assert 7.0 < due <= 7.0 + 1e-5
    assert detector.evaluate(7.0) == []
    assert [c.new for c in detector.evaluate(due)] == [Status.DOWN]
    assert detector.next_verdict() == float("inf")


@pytest.mark.parametrize("seed", range(5))
def test_next_verdict_before_an_instant_is_exact_below_it_and_at_or_past_it_otherwise(seed: int):
    """next_verdict(before): the same instant when one falls before ``before``, else one at or after it."""
    rng = random.Random(seed)
    detector, _, beat = setup()
    now = 0.0
    for _ in range(300):
        now += rng.choice([0.25, 0.5, 1.0, 2.0])
        if rng.random() < 0.7:
            beat(now)
        detector.evaluate(now)
        exact = detector.next_verdict()
        for before in (now, now + 0.25, now + 1.0, now + 5.0, float("inf")):
            got = detector.next_verdict(before)
            assert got == exact if exact < before else got >= before, (seed, now, before, got, exact)
