"""Properties of mms.sensor_processor with its default rules, on the testing kit under virtual time
(hypothesis generates the readings; one plant for the module, a fresh sensor id per example):

* clean readings (bounded noise around a level well inside every limit) raise no alert;
* every injected anomaly (spike, drift, stuck, burst) raises its rule's alert, once, and the alert clears
  once the readings are clean again;
* an alert holds while the reading stays inside the hysteresis band, and clears once past it;
* a redelivered batch (any slice of what was handled, or all of it) stores nothing twice and publishes
  nothing again.

"Clean" is bounded on purpose: Gaussian noise has tails that a z-score rule must flag now and then.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_IDS = itertools.count(1)
#: Level and noise amplitude (a fraction of the level for energy) of clean readings, per kind.
CLEAN = {"temperature": ((20.0, 70.0), (0.1, 2.0)), "vibration": ((0.5, 3.0), (0.05, 0.5)),
         "energy": ((10.0, 200.0), (0.01, 0.05))}


@dataclass
class Stream:
    kind: str
    values: list[float]
    rule: str = ""
    severity: str = ""
    start: int = 0  # seq of the anomaly's first reading (1-based)
    end: int = 0  # seq of its last reading
    raise_by: int = 0  # the alert must be raised at or before this seq


def noise(draw, kind: str, n: int) -> tuple[float, float, list[float]]:
    (low, high), (amp_low, amp_high) = CLEAN[kind]
    base = draw(st.floats(low, high))
    amp = draw(st.floats(amp_low, amp_high)) * (base if kind == "energy" else 1.0)
    if kind == "vibration":
        amp = min(amp, base / 2)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # values from a seed: hypothesis would shrink to a flat line
    return base, amp, [round(base + rng.uniform(-amp, amp), 4) for _ in range(n)]


@st.composite
def clean_streams(draw) -> Stream:
    kind = draw(st.sampled_from(sorted(CLEAN)))
    return Stream(kind, noise(draw, kind, draw(st.integers(40, 120)))[2])


@st.composite
def anomalous_streams(draw) -> Stream:
    anomaly = draw(st.sampled_from(["spike", "energy_spike", "drift", "stuck", "burst"]))
    kind = {"spike": "temperature", "energy_spike": "energy", "drift": "temperature", "burst": "vibration"}.get(
        anomaly) or draw(st.sampled_from(sorted(CLEAN)))
    base, amp, values = noise(draw, kind, 120)
    at = draw(st.integers(35, 60))  # index of the anomaly's first reading; after the baseline's warm-up
    if anomaly == "spike":
        values[at] = draw(st.floats(101.0, 150.0))
        return Stream(kind, values, "temperature", "critical", at + 1, at + 1, at + 1)
    if anomaly == "energy_spike":
        values[at] = round(base + draw(st.sampled_from([-1, 1])) * amp * draw(st.floats(6.0, 20.0)), 4)
        return Stream(kind, values, "energy_baseline", "warning", at + 1, at + 1, at + 1)
    if anomaly == "drift":
        steps, top, hold = draw(st.integers(10, 30)), draw(st.floats(85.0, 95.0)), draw(st.integers(3, 15))
        ramp = [round(values[at] + (top - values[at]) * (i + 1) / steps, 4) for i in range(steps)] + [top] * hold
        values[at:at + len(ramp)] = ramp
        first_hot = at + next(i for i, v in enumerate(ramp) if v > 80.0)
        return Stream(kind, values, "temperature", "warning", at + 1, at + len(ramp), first_hot + 1)
    if anomaly == "stuck":
        length = draw(st.integers(10, 30))
        values[at:at + length] = [values[at]] * length
        return Stream(kind, values, "stuck", "warning", at + 1, at + length, at + 10)
    length = draw(st.integers(10, 25))  # burst: vibration far above its limit for a while
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    values[at:at + length] = [round(rng.uniform(9.0, 15.0), 4) for _ in range(length)]
    return Stream(kind, values, "vibration_rms", "critical", at + 1, at + length, at + 10)


def run(plant, stream: Stream) -> tuple[str, list[dict]]:
    """Publish ``stream`` as a fresh sensor's readings; that sensor's alert messages."""
    sensor = f"{stream.kind[:4]}-{next(_IDS)}"
    units = {"temperature": "C", "vibration": "mm/s", "energy": "kW"}
    for seq, value in enumerate(stream.values, 1):
        plant.publish("sensor-data", "mms.sensor_reading", {
            "sensor_id": sensor, "kind": stream.kind, "location": "line-1", "seq": seq, "value": value,
            "unit": units[stream.kind], "timestamp": f"2027-01-15T08:{seq // 60 % 60:02d}:{seq % 60:02d}Z"},
            key=sensor)
    return sensor, [e.payload for e in plant.sent(type="mms.sensor_alert") if e.payload["sensor_id"] == sensor]


@PROPERTY
@given(clean_streams())
def test_clean_readings_raise_no_alert(shared_sensor_plant, stream):
    _sensor, alerts = run(shared_sensor_plant, stream)
    assert alerts == []


@PROPERTY
@given(anomalous_streams())
def test_every_injected_anomaly_raises_its_alert_once_and_it_clears(shared_sensor_plant, stream):
    _sensor, alerts = run(shared_sensor_plant, stream)
    mine = [a for a in alerts if a["rule"] == stream.rule]
    raised = [a for a in mine if a["state"] == "raised"]
    assert len(raised) == 1, f"one {stream.rule} alert for the anomaly at {stream.start}..{stream.end}: {mine}"
    (alert,) = raised
    assert stream.start <= alert["reading_seq"] <= stream.raise_by and alert["severity"] == stream.severity
    cleared = [a for a in mine if a["state"] == "cleared"]
    assert [a["alert_id"] for a in cleared] == [alert["alert_id"]], "cleared once the readings are clean again"
    assert stream.end < cleared[0]["reading_seq"] <= stream.end + 10 + 3 + 1


@PROPERTY
@given(st.floats(81.0, 95.0), st.lists(st.floats(78.1, 81.9), min_size=3, max_size=30),
       st.lists(st.floats(40.0, 77.9), min_size=3, max_size=6))
def test_an_alert_holds_inside_the_hysteresis_band_and_clears_past_it(shared_sensor_plant, hot, band, calm):
    values = [60.0] * 5 + [hot] + band + calm
    stream = Stream("temperature", [round(v, 3) for v in values])
    _sensor, alerts = run(shared_sensor_plant, stream)
    mine = [(a["state"], a["reading_seq"]) for a in alerts if a["rule"] == "temperature"]
    clears_at = 6 + len(band) + 3  # the third calm reading in a row (clear_after 3)
    assert mine == [("raised", 6), ("cleared", clears_at)]


@PROPERTY
@given(anomalous_streams(), st.data())
def test_a_redelivered_batch_stores_nothing_twice_and_publishes_nothing_again(shared_sensor_plant, stream, data):
    plant = shared_sensor_plant
    sensor, _alerts = run(plant, stream)
    handled = [e for e in plant.sent(type="mms.sensor_reading") if e.payload["sensor_id"] == sensor]
    processor = plant.component("processor")
    before = len(plant.sent(type="mms.sensor_alert"))
    with plant.runtime.storage().connect() as conn:
        def stored():
            return (conn.execute(sa.text("SELECT count(*), count(DISTINCT seq) FROM readings WHERE sensor_id = :s"),
                                 {"s": sensor}).one(),
                    conn.execute(sa.text("SELECT * FROM alerts WHERE sensor_id = :s ORDER BY alert_id"),
                                 {"s": sensor}).all(),
                    conn.execute(sa.text("SELECT * FROM reading_rollups WHERE sensor_id = :s ORDER BY minute"),
                                 {"s": sensor}).all())

        first = stored()
        start = data.draw(st.integers(0, len(handled) - 1))
        stop = data.draw(st.integers(start + 1, len(handled)))
        plant.clock.run(processor.on_readings(handled[start:stop]))
        plant.clock.run(processor.on_readings(handled))
        conn.rollback()
        assert stored() == first and first[0] == (len(stream.values), len(stream.values))
    assert len(plant.sent(type="mms.sensor_alert")) == before
