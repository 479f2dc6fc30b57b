"""baseline: EWMA mean and variance, z-score; anomalies are not learned; relearning a lasting level."""

from __future__ import annotations

import math
import random

from forge_mms.anomaly import build_rule
from forge_mms.settings import BaselineRuleSettings

RULE = {"name": "energy", "type": "baseline", "kind": "energy", "alpha": 0.1, "z_limit": 4.0, "warmup": 20,
        "clear_after": 1}


def noisy(n: int, mean: float = 50.0, sd: float = 1.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.gauss(mean, sd), 3) for _ in range(n)]


def test_clean_noise_raises_nothing(judge):
    assert judge(RULE, noisy(500), kind="energy") == []


def test_a_spike_raises_and_the_next_normal_reading_clears(judge):
    values = noisy(60)
    values[40] = 80.0
    assert judge(RULE, values, kind="energy") == [(41, "raised", "warning"), (42, "cleared", "warning")]


def test_the_anomaly_does_not_move_the_baseline(make_reading):
    rule = build_rule(BaselineRuleSettings.load(RULE))
    state = rule.fresh()
    for seq, value in enumerate(noisy(40), 1):
        rule.judge(state, make_reading(seq, value, kind="energy"), None)
    mean = state.mean
    for seq in range(41, 51):  # a burst
        verdict = rule.judge(state, make_reading(seq, 90.0, kind="energy"), "warning")
        assert verdict is not None and verdict.severity == "warning"
    assert state.mean == mean


def test_z_is_against_the_mean_and_std_before_the_reading(make_reading):
    rule = build_rule(BaselineRuleSettings.load({**RULE, "alpha": 0.5, "warmup": 2}))
    state = rule.fresh()
    assert rule.judge(state, make_reading(1, 10.0, kind="energy"), None) is None
    assert rule.judge(state, make_reading(2, 12.0, kind="energy"), None) is None
    # the warm-up's plain mean and sample variance: 11 and 2
    assert (state.mean, state.var) == (11.0, 2.0)
    verdict = rule.judge(state, make_reading(3, 14.0, kind="energy"), None)
    assert verdict is not None and math.isclose(verdict.value, 3.0 / math.sqrt(2.0))
    # then learned the EWMA way: d = 3, mean += 0.5 * 3, var = 0.5 * (2 + 0.5 * 9)
    assert (state.mean, state.var) == (12.5, 3.25)


def test_relearn_after_a_lasting_new_level(judge):
    values = noisy(40) + noisy(100, mean=70.0, seed=2)
    once = judge({**RULE, "relearn_after": 5}, values, kind="energy")
    assert once[0] == (41, "raised", "warning")
    assert once[1][1] == "cleared" and once[1][0] < 41 + 5 + RULE["warmup"] + 5, "cleared soon after relearning"
    assert len(once) == 2
    never = judge(RULE, values, kind="energy")
    assert never == [(41, "raised", "warning")], "without relearn_after the new level stays an anomaly"


def test_a_flat_signal_uses_min_std(judge):
    values = [5.0] * 30 + [5.5]
    assert judge({**RULE, "min_std": 0.1}, values, kind="energy") == [(31, "raised", "warning")]
    assert judge({**RULE, "min_std": 1.0}, values, kind="energy") == []
