"""``samples_stored``: what is lost, what is stored with another value, and what is past the horizon."""

from __future__ import annotations

import sqlalchemy as sa
from oee_line.sim.invariants import samples_stored
from oee_line.storage.tables import events, metadata, telemetry


def test_lost_and_wrong_samples_are_named_and_samples_past_the_horizon_are_not_due() -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine, tables=[telemetry, events])
    with engine.begin() as conn:
        conn.execute(telemetry.insert(), [
            {"machine_id": "M1", "metric": "GoodCount", "time": 1.0, "value": 1.0, "quality": "good"},
            {"machine_id": "M1", "metric": "GoodCount", "time": 2.0, "value": 5.0, "quality": "good"},  # 2 sent
            {"machine_id": "M1", "metric": "TotalCount", "time": 1.0, "value": 0.1 + 0.2, "quality": "good"},
        ])
        conn.execute(events.insert(), [{"machine_id": "M1", "event_type": "running", "ts_start": 1.0, "payload": {}}])
    samples = {("M1", "GoodCount", 1000): 1, ("M1", "GoodCount", 2000): 2, ("M1", "TotalCount", 1000): 0.3,
               ("M1", "State", 1000): "running", ("M1", "FaultCode", 1500): 0, ("M1", "FaultCode", 9000): 7}
    check = samples_stored(engine, samples, horizon=5.0)
    assert not check.passed
    assert check.detail.startswith("4 of 5 samples before the horizon stored; 1 lost")  # 9 s is past the horizon
    assert "first ['M1/FaultCode@1.500']" in check.detail
    assert "1 stored with another value, first ['M1/GoodCount@2.000']" in check.detail  # 0.1 + 0.2 is 0.3 here
    del samples[("M1", "GoodCount", 2000)], samples[("M1", "FaultCode", 1500)]
    check = samples_stored(engine, samples, horizon=5.0)
    assert check.passed and check.detail == "3 of 3 samples before the horizon stored"
