"""End-to-end scenarios of the embedded plant under virtual time: factories, the PMS (forge-sched's
order scheduler) and the MMS (forge-mms's factory monitor) on the memory bus, SQLite, the clients
posting orders over the in-process REST app."""

from __future__ import annotations

import re

import industry40.stale
import pytest
import sqlalchemy as sa
from industry40 import downs
from industry40.testing import registered_types

pytestmark = pytest.mark.skipif(not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor"},
                                reason="forge-sched's order scheduler or forge-mms's factory monitor missing")

BUSY = {"clients": {"min_interval": 2.0, "max_interval": 4.0}}


def mode(plant, factory_id: str, value: str) -> None:
    plant.publish(f"factory/{factory_id}/mode", "industry40.factory_mode", {"factoryId": factory_id, "mode": value})


def statuses(plant, factory_id: str) -> list[tuple[float, str]]:
    return [(e.time, e.payload["status"]) for e in plant.sent(f"forge/status/{factory_id}", type="forge.status")]


def holders(plant) -> dict[str, str]:
    """orderId -> the factory holding it now (from the messages): assigned, not revoked, not completed."""
    held: dict[str, str] = {}
    for e in plant.observed:
        if e.type == "sched.order_assigned":
            held[e.payload["orderId"]] = e.payload["factoryId"]
        elif e.type in ("sched.order_revoked", "sched.order_completed") and \
                held.get(e.payload["orderId"]) == e.payload["factoryId"]:
            del held[e.payload["orderId"]]
    return held


def all_checks_pass(plant) -> None:
    failed = [(c.name, c.detail) for c in plant.stop().checks if not c.passed]
    assert not failed, failed


def test_a_stopped_factory_goes_down_and_its_orders_move_within_the_bound(plant40):
    plant = plant40(drop=("chaos",), params=BUSY)
    plant.advance(60)
    victim = "factory-2"
    held = [o for o, f in holders(plant).items() if f == victim]
    assert held, "the clients' orders reached every factory"
    mode(plant, victim, "stop")
    last_beat = plant.sent(f"factory/{victim}/heartbeat")[-1].time
    plant.advance(10)
    down = [t for t, s in statuses(plant, victim) if s == "DOWN"]
    assert down and down[0] - last_beat <= 4.0 + 1e-6, "DOWN within 3 missed beats / a 3 s gap (+ one check)"
    moved = {e.payload["orderId"]: e for e in plant.sent("factory/+/orders", type="sched.order_assigned")
             if e.payload["orderId"] in held and e.payload["factoryId"] != victim}
    completed = {e.payload["orderId"] for e in plant.sent("factory/+/completed")}
    assert set(held) <= set(moved) | completed
    assert all(e.time - down[0] <= 1.0 + 1e-6 for e in moved.values()), "moved in the verdict's scheduling pass"
    assert not plant.component("factory-1").orders, "the stopped factory was told to drop them"
    assert victim not in set(holders(plant).values())
    all_checks_pass(plant)


def test_a_recovered_factory_is_up_after_five_beats_and_gets_orders_again(plant40):
    plant = plant40(drop=("chaos",), params=BUSY)
    plant.advance(30)
    mode(plant, "factory-3", "stop")
    plant.advance(20)
    mode(plant, "factory-3", "recover")
    back = plant.clock.time()
    plant.advance(60)
    ups = [t for t, s in statuses(plant, "factory-3") if s == "UP"]
    assert len(ups) == 2, "discovered, then recovered"
    first_beat = next(e.time for e in plant.sent("factory/factory-3/heartbeat") if e.time >= back)
    assert ups[1] - first_beat == pytest.approx(4.0, abs=1.01), "UP on the 5th healthy beat"
    reports = [e.payload for e in plant.sent("mms/status_report", type="mms.status_report")
               if e.payload["factoryId"] == "factory-3"]
    assert [r["status"] for r in reports][-1] == "UP"
    later = [e for e in plant.sent("factory/factory-3/orders", type="sched.order_assigned")
             if e.time > back]
    assert later, "the PMS assigns to the recovered factory again (rebalance or new orders)"
    all_checks_pass(plant)


def test_a_degraded_factory_is_high_risk_and_drained_of_unstarted_orders(plant40):
    plant = plant40(drop=("chaos",), params={"clients": {"min_interval": 1.0, "max_interval": 2.0},
                                             "factory": {"lines": 1}})
    plant.advance(40)
    mode(plant, "factory-4", "degraded")
    plant.advance(60)
    risks = [e.payload for e in plant.sent("mms/risk/factory-4", type="mms.risk_changed")]
    assert any(r["risk"] == "HIGH" for r in risks), risks
    revoked = [e.payload for e in plant.sent("factory/factory-4/orders/revoked", type="sched.order_revoked")]
    factory = plant.component("factory-3")
    assert revoked, "its waiting orders were moved away"
    assert sum(1 for o in factory.orders.values() if not o.started) == 0, "none waits on the failing factory"
    all_checks_pass(plant)


def test_a_plain_heartbeat_on_a_new_topic_is_a_new_factory(plant40):
    plant = plant40(keep=("pms", "mms"))
    plant.advance(5)
    for _ in range(6):
        plant.publish_raw("factory/9/heartbeat", {"timestamp": 1, "metrics": {"cpu": 1, "memory": 2, "errors": 0}})
        plant.advance(1)
    assert [s for _, s in statuses(plant, "9")] == ["UP"]
    results = [e.payload for e in plant.sent("sched/status_report_result") if "'9'" in repr(e.payload) or
               e.payload.get("detail", "").startswith("9 ")]
    assert results and results[0]["accepted"]
    # added by the MMS's UP report (the embedded PMS takes no beats): UP, with the default capacity
    assert plant.component("pms-0").params.topics.heartbeats is None
    with plant.component("pms-0").transactor.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, capacity FROM factories WHERE id = '9'")).one()
    assert tuple(row) == ("UP", 10)
    assert not plant.dead_letters


def test_a_simulated_chaos_hour_keeps_every_invariant(plant40):
    """The chaos profile for one simulated hour (kills of the MMS leader and the PMS included): every
    check of the run passes (no order lost or held twice, none on a DOWN factory at the end nor over the
    run, every order of a DOWN factory moved within the bound, completions once, stale epochs rejected
    (chaos replays a deposed MMS leader's reports), every posted order accepted)."""
    plant = plant40(profile="chaos", params={"chaos": {"min_interval": 20.0, "max_interval": 40.0}})
    plant.advance(3600)
    report = plant.component("chaos").report()
    assert report["kill"] >= 3 and report.get("stop", 0) + report.get("degraded", 0) >= 5, report
    assert report.get("stale_report", 0) >= 3, report
    completed = plant.sent("factory/+/completed", type="sched.order_completed")
    assert len(completed) > 100
    replies = [e.payload for e in plant.sent("sched/status_report_result") if e.payload.get("code") == "stale_epoch"]
    assert len(replies) == report["stale_report"], "each replay refused by the PMS as stale"
    chaos = plant.component("chaos")  # the factories run here: their beats stamp the book the DOWN watch reads
    assert not [s.pattern for s in chaos.ctx._subscriptions if s.pattern.endswith("/heartbeat")], "no beat delivered"
    assert set(chaos.downs.last_beat) == set(chaos.factory_ids) and max(chaos.downs.last_beat.values()) > 3590
    checks = {c.name: c for c in plant.stop().checks}
    moved, stale = checks[downs.MOVED], checks[industry40.stale.NAME]
    assert checks[downs.NOT_ASSIGNED].passed
    assert moved.passed and re.match(r"[1-9]\d* orders of [1-9]\d* DOWN verdicts moved within", moved.detail), moved
    assert stale.passed and stale.detail.startswith(f"{report['stale_report']} stale reports rejected, 0 accepted")
    all_checks_pass(plant)


def test_a_factory_stopped_before_its_first_beat_goes_down_and_its_orders_move(plant40):
    """factory-2 never beats (stopped from the start): the PMS holds it UP from its configured capacities,
    so without a beat the MMS would never judge it and its orders would wait forever. The MMS's leader
    asks the PMS which factories it holds and judges the unheard one silent since it started."""
    plant = plant40(drop=("chaos",), params={**BUSY, "factory": {"modes": {"factory-2": "stop"}}})
    start = plant.clock.time()
    plant.advance(30)
    assert [s for _, s in statuses(plant, "factory-2")] == ["DOWN"]
    (at, _), = statuses(plant, "factory-2")
    assert at - start <= 3.0 + 1.0 + 1.0, "a DOWN timeout after the monitor started, a check, the next check"
    assert "factory-2" not in holders(plant).values(), "no order waits on the factory that never beat"
    assigned = plant.sent("factory/+/orders", type="sched.order_assigned")
    assert not [e for e in assigned if e.payload["factoryId"] == "factory-2" and e.time > at + 1.0], \
        "none assigned to it after the verdict"
    all_checks_pass(plant)
