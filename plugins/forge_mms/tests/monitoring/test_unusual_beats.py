"""Schema-valid but unusual heartbeats through the beat history, the fault detector and the risk rules: ints
where the schema says number, 2.0 where a count is whole, huge numbers, missing optional fields, extra fields,
a dict subclass. These modules may run compiled (mypyc checks annotations where it is entered): the same
outcome pure and compiled, which is the outcome of the plain float beat (docs/compiled.md)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from forge_core.tactics import Status

from forge_mms.monitoring.beats import Beat, BeatHistory, BeatWindow, error_rate
from forge_mms.monitoring.faults import FaultDetector
from forge_mms.settings import RiskRulesSettings
from forge_mms.tactics.risk import Risk, RuleBasedRisk, least_squares_slope, should_preemptively_rebalance


class Payload(dict[str, Any]):
    """A dict subclass, as a decoder or a bridge may hand over."""


class Heartbeat:
    """The ``tactics.heartbeat`` settings the fault detector reads, as plain ints."""

    interval = 1
    degraded_after = 2
    error_rate_threshold = 0.2
    error_window = 30
    recover_after = 3


def beats_of(payloads: list[dict[str, Any]], times: list[Any]) -> list[Beat]:
    history = BeatHistory(60, late_after=2)
    return [history.add("f1", at, payload) for at, payload in zip(times, payloads, strict=True)]


def plain(errors: float, t: float, **extra: float) -> dict[str, Any]:
    return {"timestamp": t, "metrics": {"errors": errors, "cpu": 12.5, "memory": 40.0}, **extra}


PLAIN = [plain(0.0, 100.0, latencyMs=5.0), plain(0.0, 101.0, latencyMs=6.0), plain(2.0, 102.0, latencyMs=7.0),
         plain(2.0, 105.0, latencyMs=9.0)]
TIMES = [10.0, 11.0, 12.0, 15.0]


@pytest.mark.parametrize(("payloads", "times"), [
    pytest.param([{"timestamp": int(p["timestamp"]), "latencyMs": int(p["latencyMs"]),
                   "metrics": {"errors": int(p["metrics"]["errors"]), "cpu": 12.5, "memory": 40}} for p in PLAIN],
                 [10, 11, 12, 15], id="ints-for-numbers-and-arrival-times"),
    pytest.param([Payload(p, metrics=Payload(p["metrics"])) for p in PLAIN], TIMES, id="dict-subclass"),
    pytest.param([OrderedDict(p, factoryId="f1", extra={"nested": [1, 2]}) for p in PLAIN], TIMES, id="extra-fields"),
])
def test_unusual_numbers_give_the_beats_of_plain_floats(payloads, times):
    expected = beats_of(PLAIN, TIMES)
    got = beats_of(payloads, times)
    assert got == expected
    assert [b.failed for b in got] == [False, False, True, True]  # 2 new errors, then a gap of 3 s > 2 s
    assert all(type(b.timestamp) is float and type(b.errors) is float for b in got)  # as float() gives them


def test_huge_and_extreme_values_are_numbers_as_float_gives_them():
    history = BeatHistory(60.0, late_after=1.5)
    beat = history.add("f1", 1.0, {"timestamp": 10**30, "latencyMs": 1e308,
                                   "metrics": {"errors": 2**70, "cpu": 10**20, "memory": 0}})
    assert beat == Beat("f1", 1.0, 1e30, float(2**70), 0.0, None, False, 1e20, 0.0, 1e308)
    with pytest.raises(OverflowError):  # a JSON integer past a double's range: float() refuses it, both ways
        history.add("f1", 2.0, {"timestamp": 10**400, "metrics": {"errors": 0}})


def test_missing_optional_fields_and_non_numbers_the_schema_would_refuse():
    history = BeatHistory(60.0, late_after=1.5)
    bare = history.add("f1", 1.0, {"timestamp": 1.0, "metrics": {"errors": 0}})
    assert (bare.cpu, bare.memory, bare.latency_ms) == (None, None, None)
    # a bool is no JSON Schema number; reaching the history anyway it is no cpu or memory reading
    odd = history.add("f1", 2.0, {"timestamp": 2.0, "metrics": {"errors": True, "cpu": True, "memory": "7"}})
    assert (odd.errors, odd.new_errors, odd.cpu, odd.memory) == (1.0, 1.0, None, None)
    assert history.add("f2", 3.0, {"timestamp": 3.0, "metrics": None}).errors == 0.0


def test_windows_and_error_rates_of_int_arrival_times():
    history = BeatHistory(60, late_after=2)
    for at in range(5):
        history.add("f1", at, {"timestamp": at, "metrics": {"errors": at // 2}})
    window = history.window("f1", 30, 4)
    assert (len(window), window.failed, window.error_rate) == (5, 2, 0.4)
    assert window.fit(lambda beat: beat.at) == (5, pytest.approx(1.0))
    assert history.calculate_error_rate("f1", 30, 4) == 0.4 == error_rate(list(window))
    assert window.oldest_at() == 0 and window.expires_by(31) and not window.expires_by(30)
    int_window = BeatWindow(10, [Beat("f", 1, 1, 0, 1, None, False), Beat("f", 2, 3, 0, 0, 1, True)])
    assert (int_window.error_rate, int_window.fit(lambda beat: beat.timestamp)) == (1.0, (2, 2.0))


def test_the_fault_detector_with_int_settings_and_int_times():
    detector = FaultDetector(Heartbeat(), max_gap=5, missed_beats=3)
    assert (detector.interval, detector.down_after, detector.late_after) == (1.0, 3.0, 2.0)
    changes = [detector.observe(Beat("f1", t, t, 0, 0, 1 if t else None, False)) for t in range(3)]
    assert [c.new if c else None for c in changes] == [Status.UP, None, None]
    assert detector.next_verdict() == pytest.approx(4.000001)
    assert [(c.source, c.new) for c in detector.evaluate(10)] == [("f1", Status.DOWN)]
    assert detector.missed_beats(0, 10) == 9 and detector.missed_beats(0, 10**20) == 10**20 - 1
    detector.restore("f2", "DOWN", 3)
    detector.restore("f3", "UP", 4)
    assert detector.statuses() == {"f1": Status.DOWN, "f2": Status.DOWN, "f3": Status.UP}


@pytest.mark.parametrize("latency", ["auto", "reported", "transit", "inter_arrival"])
def test_risk_of_int_valued_beats_is_the_risk_of_their_floats(latency):
    rules = RuleBasedRisk(RiskRulesSettings.load({"latency": latency, "min_samples": 3}))
    ints = [Beat("f", t, t - 1, 0, 0, 1 if t else None, False, 1, 2, t * 10) for t in range(6)]
    floats = [Beat("f", float(t), t - 1.0, 0.0, 0.0, 1.0 if t else None, False, 1.0, 2.0, t * 10.0) for t in range(6)]
    history = BeatHistory(60, late_after=2)
    for t in range(6):
        history.add("f", t, {"timestamp": t - 1, "latencyMs": t * 10, "metrics": {"errors": 0, "cpu": 1}})
    expected = rules.assess("f", floats, 6.0)
    assert rules.assess("f", ints, 6) == expected == rules.assess("f", tuple(ints), 6)
    assert rules.assess("f", history.window("f", 30, 6), 6) == expected
    assert expected.risk is (Risk.MEDIUM if latency in ("auto", "reported") else Risk.LOW)


def test_least_squares_and_rebalancing_with_ints_and_other_mappings():
    assert least_squares_slope([1, 2, 3], [2, 4, 7]) == 2.5
    assert least_squares_slope((1, 2, 10**20), (2, 4, 7)) == pytest.approx(5e-20)
    risks = OrderedDict(a=Risk.HIGH, b=Risk.LOW)
    assert should_preemptively_rebalance("a", risks, Payload(a=Status.UP, b=Status.UP))
    assert not should_preemptively_rebalance("a", risks, {"a": Status.UP, "b": Status.DOWN})
