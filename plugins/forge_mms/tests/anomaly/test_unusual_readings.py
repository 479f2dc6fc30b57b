"""Schema-valid but unusual sensor readings through the anomaly rules: ints where the schema says number, huge and
tiny values, huge sequence numbers, timestamps with offsets, rule settings given as ints. The rules may run compiled
(mypyc checks annotations where it is entered; docs/compiled.md): the same alerts pure and compiled, those of the
same readings as floats."""

from __future__ import annotations

from typing import Any

import pytest

from forge_mms.anomaly import Reading, build_rule, parse_reading
from forge_mms.anomaly.engine import SensorState
from forge_mms.settings import SensorProcessorParams

RULES: dict[str, dict[str, Any]] = {
    "threshold": {"type": "threshold", "warning": 80, "critical": 100, "hysteresis": 2, "clear_after": 1},
    "rms": {"type": "rms", "window": 2, "limit": 5, "hysteresis": 1},
    "stuck": {"type": "stuck", "window": 2, "epsilon": 0},
    "rate_of_change": {"type": "rate_of_change", "limit": 1, "min_dt": 1},
    "rate_of_change_both": {"type": "rate_of_change", "limit": 1, "min_dt": 0, "direction": "both"},
}
TIMES = ["2026-12-02T14:00:00.000000Z", "2026-12-02T14:00:01Z", "2026-12-02T15:00:02+01:00", "2026-12-02T14:00:03.5"]
VALUES: dict[str, list[Any]] = {
    "ints": [70, 90, 200, 200], "huge-ints": [10**30, 10**30, -(10**30), 10**300], "huge-floats": [1e308] * 4,
    "tiny": [5e-324, 0.0, -0.0, 5e-324],
}


def events(rule: dict[str, Any], readings: list[Reading]) -> list[tuple[Any, ...]]:
    settings = SensorProcessorParams.load({"rules": [{"name": "r", "kind": "temperature", **rule}]}).rules[0]
    state = SensorState("temp-1", "temperature", [build_rule(settings)])  # type: ignore[arg-type, list-item]
    return [(e.reading.seq, e.state, e.severity) for r in readings for e in state.observe(r)]


def parsed(values: list[Any], seqs: list[int]) -> list[Reading]:
    return [parse_reading({"sensor_id": "temp-1", "kind": "temperature", "location": "l", "seq": seq, "value": value,
                           "unit": "C", "timestamp": at, "anomaly": None}, {"temperature": "C"})
            for seq, value, at in zip(seqs, values, TIMES, strict=True)]


@pytest.mark.parametrize("seqs", [[1, 2, 3, 4], [2**63 - 1, 2**63, 2**64, 10**30]], ids=["small-seqs", "huge-seqs"])
@pytest.mark.parametrize("values", list(VALUES.values()), ids=list(VALUES))
@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_unusual_readings_raise_the_alerts_of_their_floats(rule, values, seqs):
    readings = parsed(values, seqs)
    assert all(type(r.value) is float for r in readings)  # the parser makes a float of a JSON number
    assert events(rule, readings) == events(rule, parsed([float(v) for v in values], seqs))


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_readings_made_in_code_with_ints_judge_as_floats(rule):
    # a Reading built by a plugin's code, not the parser: int values and times where floats are declared
    ints = [Reading("temp-1", "temperature", "l", seq, value, "C", 1000 + 2 * seq, "x")
            for seq, value in enumerate([70, 90, 200, 200, 3], start=1)]
    floats = [Reading("temp-1", "temperature", "l", seq, float(value), "C", 1000.0 + 2 * seq, "x")
              for seq, value in enumerate([70, 90, 200, 200, 3], start=1)]
    assert events(rule, ints) == events(rule, floats)
