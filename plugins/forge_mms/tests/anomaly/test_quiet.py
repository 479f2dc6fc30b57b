"""The rules' quiet path (QuietRule.judge_quiet): the same verdicts, states and alerts as the full path."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pytest

from forge_mms.anomaly import RuleBook
from forge_mms.anomaly.engine import SensorState
from forge_mms.settings import SensorProcessorParams

# the plant's rules (examples/sensor_monitoring/plant.yaml) and the other directions, levels and clears
RULES: list[dict[str, Any]] = [
    {"name": "temperature", "type": "threshold", "kind": "temperature", "warning": 80.0, "critical": 100.0,
     "hysteresis": 2.0},
    {"name": "cold", "type": "threshold", "kind": "temperature", "direction": "below", "warning": 10.0,
     "critical": 5.0, "clear_after": 3},
    {"name": "temperature_rate", "type": "rate_of_change", "kind": "temperature", "limit": 10.0, "min_dt": 0.5,
     "severity": "critical"},
    {"name": "falling", "type": "rate_of_change", "kind": "temperature", "limit": 4.0, "direction": "falling",
     "hysteresis": 1.0},
    {"name": "vibration_rms", "type": "rms", "kind": "vibration", "window": 10, "limit": 7.1,
     "severity": "critical", "hysteresis": 0.5},
    {"name": "energy_high", "type": "threshold", "kind": "energy", "warning": 70.0, "critical": 85.0,
     "hysteresis": 2.0},
    {"name": "energy_baseline", "type": "baseline", "kind": "energy", "alpha": 0.02, "z_limit": 6.0, "warmup": 30,
     "relearn_after": 30, "severity": "critical"},
    {"name": "energy_above", "type": "baseline", "kind": "energy", "alpha": 0.1, "z_limit": 3.0, "warmup": 10,
     "direction": "above", "hysteresis": 0.5, "clear_after": 2},
    {"name": "stuck", "type": "stuck", "kind": None, "window": 10, "epsilon": 0.0, "severity": "critical"},
    {"name": "near_stuck", "type": "stuck", "kind": None, "window": 5, "epsilon": 0.05, "hysteresis": 0.1},
]
BASE = {"temperature": 60.0, "vibration": 4.0, "energy": 50.0}


def signal(rng: random.Random, sensor: str, kind: str, n: int, make_reading: Any) -> list[Any]:
    value, ts, out, stuck, step = BASE[kind], 1_800_000_000.0, [], 0, 0.0
    for seq in range(1, n + 1):
        ts += rng.choice([1.0, 1.0, 1.0, 0.3, 0.05]) if rng.random() > 0.005 else -30.0
        r = rng.random()
        if r < 0.01:
            stuck = rng.randint(3, 15)
        elif r < 0.02:
            step = rng.choice([-1, 1]) * rng.uniform(10, 50)
        elif r < 0.03:
            step = 0.0
        if stuck:
            stuck -= 1
        else:
            value = BASE[kind] + step + rng.gauss(0, BASE[kind] * 0.05) + (
                rng.uniform(-60, 60) if rng.random() < 0.02 else 0.0)
        out.append(make_reading(seq, round(value, 3), sensor=sensor, kind=kind, ts=ts))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_the_quiet_path_raises_and_clears_as_the_full_path(seed: int, make_reading: Any) -> None:
    rng = random.Random(seed)
    book = RuleBook(SensorProcessorParams.load({"rules": RULES}).rules)  # type: ignore[arg-type]
    total = 0
    for sensor, kind in [("temp-1", "temperature"), ("vib-1", "vibration"), ("energy-1", "energy")]:
        quiet, full = book.fresh(sensor, kind), book.fresh(sensor, kind)
        assert all(q is not None for q in quiet.quiet), "every built-in rule has a quiet path"
        full.quiet = [None] * len(full.quiet)  # as a rule without judge_quiet: judged in full
        for reading in signal(rng, sensor, kind, 3_000, make_reading):
            events = quiet.observe(reading)
            assert events == full.observe(reading), reading  # ids, states, severities, verdicts and reasons
            total += len(events)
        assert quiet.active_alerts() == full.active_alerts()
    assert total > 20, "the signals raise and clear alerts"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_judge_quiet_is_judge_without_a_held_alert_when_a_condition_holds(seed: int, make_reading: Any) -> None:
    rng = random.Random(seed)
    book = RuleBook(SensorProcessorParams.load({"rules": RULES}).rules)  # type: ignore[arg-type]
    for rule in book.rules:
        kind = rule.settings.kind or "energy"
        quiet_state, full_state = rule.fresh(), rule.fresh()
        conditions = 0
        for reading in signal(rng, "s-1", kind, 3_000, make_reading):
            verdict = rule.judge(full_state, reading, None)
            quiet = rule.judge_quiet(quiet_state, reading)  # type: ignore[attr-defined]
            assert quiet == (verdict if verdict is not None and verdict.severity is not None else None)
            conditions += quiet is not None
        assert conditions > 0, rule.settings.name


def test_a_rule_without_a_quiet_path_is_judged_in_full(make_reading: Any) -> None:
    class Custom:  # a user's rule of the protocol before judge_quiet: every reading judged with judge()
        settings = SensorProcessorParams.load({"rules": [RULES[0]]}).rules[0]
        history = 0
        calls: ClassVar[list[int]] = []

        def fresh(self) -> Any:
            return None

        def judge(self, state: Any, reading: Any, held: Any) -> Any:
            self.calls.append(reading.seq)
            from forge_mms.anomaly.threshold import ThresholdRule
            return ThresholdRule(self.settings).judge(state, reading, held)  # type: ignore[arg-type]

    rule = Custom()
    state = SensorState("temp-1", "temperature", [rule])  # type: ignore[list-item]
    assert state.quiet == [None]
    events = [e.state for v, seq in [(70, 1), (85, 2), (101, 3)] for e in state.observe(make_reading(seq, v))]
    assert rule.calls == [1, 2, 3] and events == ["raised", "cleared", "raised"]  # escalated



@pytest.mark.parametrize(("levels", "values"), [
    ({"warning": 80.0, "critical": 100.0}, [79.9, 80.0, 80.1, 100.5]),
    ({"direction": "below", "warning": 10.0, "critical": 5.0}, [10.1, 10.0, 9.9, 4.0]),
    ({"critical": 100.0}, [99.0, 101.0]), ({"direction": "below", "warning": 10.0}, [11.0, 9.0]),
])
def test_the_threshold_quiet_path_is_judge_past_a_level(levels: dict[str, Any], values: list[float],
                                                         make_reading: Any) -> None:
    """judge_quiet compares with the least extreme level alone: a verdict exactly where judge() finds a condition."""
    rule = RuleBook(SensorProcessorParams.load(
        {"rules": [{"name": "t", "type": "threshold", "kind": "temperature", **levels}]}).rules).rules[0]  # type: ignore[arg-type]
    for seq, value in enumerate(values, 1):
        reading = make_reading(seq, value)
        verdict = rule.judge(None, reading, None)
        assert rule.judge_quiet(None, reading) == (verdict if verdict.severity is not None else None), value  # type: ignore[attr-defined]
