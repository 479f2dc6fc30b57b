"""MEDIUM risk end to end (issue 12: "rising latency ... → MEDIUM"): a plain factory's beats on the
memory bus whose reported latency climbs, judged by the MMS's rule-based risk, published as
mms.risk_changed, and stored on the factory's status row; MEDIUM drains nothing (only HIGH does)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from industry40.testing import registered_types

pytestmark = pytest.mark.skipif(not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor"},
                                reason="forge-sched's order scheduler or forge-mms's factory monitor missing")


def risks(plant, factory_id: str) -> list[dict]:
    return [e.payload for e in plant.sent(f"mms/risk/{factory_id}", type="mms.risk_changed")]


def test_a_rising_latency_is_medium_risk_and_a_flat_one_stays_low(plant40):
    plant = plant40(keep=("pms", "mms"))
    plant.advance(5)
    # 40 beats: factory 7's latency climbs 20 ms a beat (20 ms/s, above the 1.0 ms/s limit, over more
    # than min_samples 30 beats); factory 8's stays at 50 ms
    for i in range(40):
        plant.publish_raw("factory/7/heartbeat", {"timestamp": plant.clock.time(), "latencyMs": 20.0 * i,
                                                  "metrics": {"cpu": 10, "memory": 20, "errors": 0}})
        plant.publish_raw("factory/8/heartbeat", {"timestamp": plant.clock.time(), "latencyMs": 50.0,
                                                  "metrics": {"cpu": 10, "memory": 20, "errors": 0}})
        plant.advance(1)
    plant.advance(2)
    medium = [r for r in risks(plant, "7") if r["risk"] == "MEDIUM"]
    assert medium, risks(plant, "7")
    assert medium[0]["previous"] == "LOW" and medium[0]["latencySlope"] > 1.0
    assert "latency rising" in medium[0]["reason"] and medium[0]["errorRate"] == 0
    assert risks(plant, "8") == [], "a flat latency is LOW: no change to publish"
    # stored on the factory's status row (the MMS's table in the plant's one database); nothing
    # drained: MEDIUM only warns
    with plant.component("pms-0").transactor.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT risk FROM factory_status WHERE factory_id = '7'")).one()
    assert row.risk == "MEDIUM"
    assert not plant.sent("factory/7/orders/revoked")
    assert not plant.dead_letters
