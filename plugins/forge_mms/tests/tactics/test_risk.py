"""The risk strategy: rules at their boundaries, the latency trend test, the drain rule, replaceability."""

from __future__ import annotations

import random

import pytest
from forge_core.tactics import Status

from forge_mms.monitoring.beats import Beat
from forge_mms.settings import RiskRulesSettings
from forge_mms.tactics.risk import Risk, RuleBasedRisk, least_squares_slope, should_preemptively_rebalance


def beat(at, *, failed=False, transit=0.05, latency_ms=None, gap=1.0, offset=0.0):
    return Beat("f", at, at - transit - offset, 0.0, 1.0 if failed else 0.0, gap, False, latency_ms=latency_ms)


def window(n=300, **kwargs):
    return [beat(float(t), **kwargs) for t in range(n)]


def test_least_squares_slope():
    assert least_squares_slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)
    assert least_squares_slope([0, 1, 2], [5, 5, 5]) == 0.0
    assert least_squares_slope([1], [1]) is None and least_squares_slope([2, 2], [1, 3]) is None


def test_error_rate_at_one_tenth_is_not_high_just_over_is():
    rules = RuleBasedRisk(RiskRulesSettings())
    beats = [beat(float(t), failed=t < 30) for t in range(300)]  # 30 / 300 = 0.1
    assert rules.assess("f", beats, 299.0).risk is Risk.LOW
    beats = [beat(float(t), failed=t < 31) for t in range(300)]
    assessment = rules.assess("f", beats, 299.0)
    assert assessment.risk is Risk.HIGH and assessment.error_rate == pytest.approx(31 / 300)
    assert "error rate" in assessment.reason


def test_a_rising_transit_time_is_medium_a_flat_noisy_one_low():
    rules = RuleBasedRisk(RiskRulesSettings())
    rising = [beat(float(t), transit=0.05 + 0.002 * t) for t in range(300)]  # +2 ms per s
    assessment = rules.assess("f", rising, 299.0)
    assert assessment.risk is Risk.MEDIUM and assessment.latency_slope == pytest.approx(2.0)
    gentle = [beat(float(t), transit=0.05 + 0.0009 * t) for t in range(300)]  # 0.9 ms/s: under 1.0
    assert rules.assess("f", gentle, 299.0).risk is Risk.LOW
    rng = random.Random(3)
    noisy = [beat(float(t), transit=0.05 + rng.uniform(0, 0.1)) for t in range(300)]
    assert rules.assess("f", noisy, 299.0).risk is Risk.LOW


def test_a_constant_clock_offset_between_factory_and_monitor_is_no_trend():
    rules = RuleBasedRisk(RiskRulesSettings())
    assert rules.assess("f", window(offset=3600.0), 299.0).risk is Risk.LOW


def test_too_few_samples_give_no_latency_verdict():
    rules = RuleBasedRisk(RiskRulesSettings(min_samples=30))
    rising = [beat(float(t), transit=0.05 + 0.01 * t) for t in range(29)]
    assessment = rules.assess("f", rising, 28.0)
    assert assessment.risk is Risk.LOW and assessment.latency_slope is None
    assert rules.assess("f", [*rising, beat(29.0, transit=0.34)], 29.0).risk is Risk.MEDIUM


def test_reported_latency_wins_over_transit_and_inter_arrival_reads_the_gaps():
    auto = RuleBasedRisk(RiskRulesSettings())
    flat_transit_rising_report = [beat(float(t), latency_ms=10.0 + 3.0 * t) for t in range(60)]
    assert auto.assess("f", flat_transit_rising_report, 59.0).risk is Risk.MEDIUM
    transit = RuleBasedRisk(RiskRulesSettings(latency="transit"))
    assert transit.assess("f", flat_transit_rising_report, 59.0).risk is Risk.LOW
    gaps = RuleBasedRisk(RiskRulesSettings(latency="inter_arrival"))
    stretching = [beat(float(t), gap=1.0 + 0.01 * t) for t in range(60)]  # gaps grow 10 ms per beat
    assert gaps.assess("f", stretching, 59.0).risk is Risk.MEDIUM


def test_preemptive_rebalance_needs_high_risk_an_up_factory_and_a_healthy_peer():
    up = {"a": Status.UP, "b": Status.UP}
    assert should_preemptively_rebalance("a", {"a": Risk.HIGH, "b": Risk.LOW}, up)
    assert should_preemptively_rebalance("a", {"a": Risk.HIGH, "b": Risk.MEDIUM}, up)
    assert not should_preemptively_rebalance("a", {"a": Risk.MEDIUM}, up)
    assert not should_preemptively_rebalance("a", {"a": Risk.HIGH, "b": Risk.HIGH}, up), "nowhere to go"
    assert not should_preemptively_rebalance("a", {"a": Risk.HIGH}, {"a": Status.UP, "b": Status.DOWN})
    assert not should_preemptively_rebalance("a", {"a": Risk.HIGH}, {"a": Status.DOWN, "b": Status.UP}), \
        "a DOWN factory is failed over, not drained"


@pytest.mark.parametrize("latency", ["auto", "reported", "transit", "inter_arrival"])
def test_the_window_fits_signal_is_signal_for_the_setting(latency):
    """The kept window's fits call one function per setting (RuleBasedRisk._signal), not signal() with
    its branches: for every kind of beat it gives what signal() gives."""
    rules = RuleBasedRisk(RiskRulesSettings(latency=latency))
    beats = [beat(5.0, latency_ms=12.5), beat(6.0, transit=0.2), beat(7.0, gap=None),
             beat(8.0, gap=None, latency_ms=3.0), beat(9.0, gap=2.5, transit=0.0)]
    assert [rules._signal(b) for b in beats] == [rules.signal(b) for b in beats]
    assert any(rules._signal(b) is not None for b in beats)


@pytest.mark.parametrize("latency", ["auto", "transit", "inter_arrival"])
def test_the_monitors_kept_window_assesses_like_a_list_of_the_same_beats(latency):
    """BeatHistory.window keeps the error count and the least-squares sums as beats arrive and expire
    (rebuilt now and then); over a long irregular day it must judge exactly as the list does."""
    from forge_mms.monitoring.beats import BeatHistory

    rules = RuleBasedRisk(RiskRulesSettings(latency=latency))
    history = BeatHistory(300.0, late_after=1.5)
    rnd = random.Random(12)
    at, errors, checked = 80_000.0, 0, 0
    for step in range(3_000):
        at += rnd.choice([1.0, 1.0, 1.0, 0.6, 2.7, 4.5]) if step % 500 > 20 else 40.0  # silences empty the window
        errors += rnd.random() < 0.08
        transit = 0.05 + (0.002 * (step % 400) if step % 1000 < 600 else rnd.random() * 0.3)
        payload = {"timestamp": at - transit, "metrics": {"errors": errors}}
        if step % 7 == 0:
            payload["latencyMs"] = 5.0 + step % 50
        history.add("f", at, payload)
        now = at + (0.5 if step % 3 else 0.0)
        kept = history.window("f", 300.0, now)
        listed = history.beats("f", 300.0, now)
        assert list(kept) == listed
        fast, slow = rules.assess("f", kept, now), rules.assess("f", listed, now)
        assert fast.risk is slow.risk and fast.error_rate == pytest.approx(slow.error_rate, abs=1e-12)
        if slow.latency_slope is None:
            assert fast.latency_slope is None
        else:
            assert fast.latency_slope == pytest.approx(slow.latency_slope, rel=1e-7, abs=1e-9)
            checked += 1
    assert checked > 1_000, "the slope was compared on most steps"
