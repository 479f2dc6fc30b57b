from __future__ import annotations

import pytest

from forge_core.tactics.detectors import FixedTimeoutDetector
from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor, Status


def beats(mon: HeartbeatStatusMonitor, source: str, start: float, n: int, every: float = 1.0, healthy=True):
    changes = []
    for i in range(n):
        c = mon.observe(source, start + i * every, healthy=healthy)
        if c:
            changes.append(c)
    return changes


def test_discovered_on_first_beat() -> None:
    mon = HeartbeatStatusMonitor()
    change = mon.observe("cutter-1", 10.0)
    assert change is not None and change.old is None and change.new is Status.UP
    assert mon.status("cutter-1") is Status.UP
    assert mon.observe("cutter-1", 11.0) is None


def test_gap_degrades_then_detector_downs_then_five_beats_recover() -> None:
    mon = HeartbeatStatusMonitor(interval=1.0, detector=FixedTimeoutDetector(3.0))
    beats(mon, "m", 0.0, 10)
    assert mon.evaluate(10.0) == []
    [deg] = mon.evaluate(10.6)  # last beat at 9.0: 1.6 s > 1.5 x interval
    assert (deg.old, deg.new) == (Status.UP, Status.DEGRADED) and "no beat" in deg.reason
    [down] = mon.evaluate(12.5)
    assert down.new is Status.DOWN and "detector" in down.reason
    assert mon.evaluate(20.0) == []
    changes = beats(mon, "m", 20.0, 5)
    assert [c.new for c in changes] == [Status.UP]
    assert changes[0].at == 24.0 and "5 consecutive" in changes[0].reason


def test_intermittent_gap_on_arrival_degrades() -> None:
    mon = HeartbeatStatusMonitor(interval=1.0, detector=FixedTimeoutDetector(3.0))
    beats(mon, "m", 0.0, 5)
    change = mon.observe("m", 6.0)  # 2 s gap
    assert change is not None and change.new is Status.DEGRADED and "beat gap" in change.reason


def test_recovery_needs_consecutive_healthy_beats() -> None:
    mon = HeartbeatStatusMonitor(interval=1.0, detector=FixedTimeoutDetector(3.0), recover_after=5)
    beats(mon, "m", 0.0, 3)
    mon.observe("m", 4.5)  # degrade
    assert mon.status("m") is Status.DEGRADED
    assert beats(mon, "m", 5.5, 4) == []
    assert mon.observe("m", 9.5, healthy=False) is None  # streak broken
    assert beats(mon, "m", 10.5, 4) == []
    assert mon.observe("m", 14.5).new is Status.UP


def test_error_rate_degrades() -> None:
    mon = HeartbeatStatusMonitor(interval=1.0, error_rate_threshold=0.2, error_window=10.0)
    beats(mon, "m", 0.0, 8)
    assert mon.observe("m", 8.0, healthy=False) is None  # 1/9
    change = mon.observe("m", 9.0, healthy=False)  # 2/10 = 20 %: not over
    assert change is None
    change = mon.observe("m", 10.0, healthy=False)  # 3/10 (window trimmed to 10 s)
    assert change is not None and change.new is Status.DEGRADED and "error rate" in change.reason


def test_last_will_downs_immediately_and_ignores_older_beats() -> None:
    mon = HeartbeatStatusMonitor(interval=1.0)
    beats(mon, "m", 0.0, 5)
    change = mon.report_dead("m", 4.5)
    assert change is not None and change.new is Status.DOWN and "last will" in change.reason
    assert mon.report_dead("m", 4.6) is None
    assert mon.observe("m", 4.0) is None
    changes = beats(mon, "m", 30.0, 5)
    assert [c.new for c in changes] == [Status.UP]


def test_unknown_dead_report_registers_down() -> None:
    mon = HeartbeatStatusMonitor()
    change = mon.report_dead("ghost", 1.0)
    assert change is not None and change.old is None and change.new is Status.DOWN


def test_phi_default_monitor_tracks_slow_sources() -> None:
    mon = HeartbeatStatusMonitor(interval=5.0)
    beats(mon, "slow", 0.0, 30, every=5.0)
    last = 29 * 5.0
    assert mon.evaluate(last + 5.5) == []  # first estimate follows the interval
    assert any(c.new is Status.DOWN for c in mon.evaluate(last + 12.0))


def test_settings_validated() -> None:
    with pytest.raises(ValueError, match="degraded_after"):
        HeartbeatStatusMonitor(degraded_after=1.0)


@pytest.mark.parametrize("seed", range(6))
def test_error_rate_is_the_window_share_through_trims_recoveries_and_deaths(seed: int) -> None:
    """The running error count equals a recount of the window after every input (beats in and
    out of the window, discovery unhealthy, recovery clearing it, death reports, reordered beats),
    and the transitions are the ones a recount would give."""
    import random

    rng = random.Random(seed)
    mon = HeartbeatStatusMonitor(
        interval=1.0, detector=FixedTimeoutDetector(4.0), error_window=6.0, min_window_beats=3
    )
    now = 0.0
    for _ in range(600):
        source = rng.choice(["a", "b"])
        roll = rng.random()
        if roll < 0.03:
            mon.report_dead(source, now)
        elif roll < 0.06:
            mon.evaluate(now)
        else:
            at = now - (1.0 if roll < 0.08 else 0.0)  # now and then a reordered beat
            healthy = rng.random() > 0.3
            before = mon.status(source)
            change = mon.observe(source, at, healthy=healthy)
            state = mon._sources[source]
            recount = sum(1 for _, ok in state.window if not ok)
            assert state.errors == recount
            expected = recount / len(state.window) if state.window else 0.0
            assert mon.error_rate(source) == pytest.approx(expected)
            if before is Status.UP and change is not None and change.new is Status.DEGRADED:
                assert "beat gap" in change.reason or expected > mon.error_rate_threshold
            if before is Status.UP and change is None and len(state.window) >= 3:
                assert expected <= mon.error_rate_threshold
        now += rng.choice([0.3, 1.0, 1.0, 2.0])
    assert mon.error_rate("nobody") == 0.0
