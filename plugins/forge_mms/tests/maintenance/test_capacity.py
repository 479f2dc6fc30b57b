"""The capacity query: asked beside a DOWN report (never before it) and recorded in its failover event,
a failed query that delays no report, and the risk drain decided on the free capacity elsewhere (the
stand-in only when the query fails)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from forge_core import Settings, hookimpl
from forge_core.tactics import Status

from forge_mms.maintenance.capacity import CapacityView
from forge_mms.tactics.risk import Risk, should_preemptively_rebalance
from forge_mms.tactics.status_reporter import FactoryCapacity, ReportResult


def events(plant, status=None):
    return [
        e
        for e in plant.sent("mms/failover/+", type="mms.failover_event")
        if status is None or e.payload["status"] == status
    ]


def test_down_is_reported_first_and_its_event_records_the_capacity(factory_plant, beats):
    plant = factory_plant(pms={"capacity": {"f1": [10, 4], "f2": [10, 3], "f3": [5, 5]}})
    beats(plant, 5, "f1", "f2", "f3")
    asked_at_start = len(plant.sent("mms/status_report"))  # the leader's query for factories never heard
    beats(plant, 6, "f2", "f3")  # f1 stops
    sent = [e for e in plant.sent("mms/status_report")[asked_at_start:] if e.payload.get("status", "DOWN") == "DOWN"]
    assert [e.type for e in sent] == ["mms.status_report", "mms.capacity_query"], "the report goes out first"
    down = events(plant, "DOWN")
    assert len(down) == 1 and down[0].payload["outcome"] == "accepted"
    # the fake PMS answers what it holds: f1 UP with 4 orders, 7 free on f2, none on f3
    assert down[0].payload["capacity"] == {
        "freeElsewhere": 7,
        "load": 4,
        "fits": True,
        "detail": "7 free elsewhere; f1 holds 4, UP at the PMS",
    }
    with plant.component("monitor").ctx.storage.connect() as conn:
        row = conn.execute(
            sa.text("SELECT free_elsewhere, orders_fit, capacity_detail FROM failover_events WHERE status = 'DOWN'")
        ).one()
        others = conn.execute(sa.text("SELECT count(*) FROM failover_events WHERE free_elsewhere IS NULL")).scalar()
    assert tuple(row) == (7, True, "7 free elsewhere; f1 holds 4, UP at the PMS")
    assert others == len(events(plant)) - 1, "the other reports (UP, DEGRADED) carry no capacity"


def test_orders_that_do_not_fit_are_recorded_so(factory_plant, beats):
    plant = factory_plant(pms={"capacity": {"f1": [10, 9], "f2": [10, 7]}})
    beats(plant, 5, "f1", "f2")
    beats(plant, 6, "f2")
    assert events(plant, "DOWN")[0].payload["capacity"]["fits"] is False


def test_a_query_without_answer_delays_no_down_report(factory_plant, beats):
    """The PMS answers reports but not capacity queries: DOWN is reported and accepted as without the
    query; its event, once the query gave up, says the query failed."""
    times = {}
    for silent in (False, True):
        plant = factory_plant({"capacity_timeout": 3.0}, pms={"capacity_silent": silent})
        beats(plant, 5, "f1", "f2")
        beats(plant, 8, "f2")
        down = next(
            e for e in plant.sent("mms/status_report", type="mms.status_report") if e.payload["status"] == "DOWN"
        )
        answer = next(
            e for e in plant.sent("sched/status_report_result") if e.payload["requestId"] == down.payload["requestId"]
        )
        times[silent] = (down.time, answer.time)
        event = events(plant, "DOWN")[0].payload
        assert event["outcome"] == "accepted"
        if silent:
            assert event["capacity"]["freeElsewhere"] is None and event["capacity"]["fits"] is None
            assert event["capacity"]["detail"].startswith("capacity query failed: TimeoutError"), event
        assert (plant.component("monitor").capacity.stats["failed"] > 0) is silent  # the start's query too
    assert times[True] == times[False], times


class Hanging:
    """A reporter that answers reports at once and whose capacity query never returns (a PMS gone)."""

    reported: ClassVar[list[str]] = []

    async def report(self, factory_id, status, reason, *, epoch, lease):
        self.reported.append(status)
        return ReportResult(True)

    async def capacity(self):
        import asyncio

        await asyncio.Event().wait()


class HangingPlugin:
    @hookimpl
    def forge_register_tactics(self, registry):
        class NoSettings(Settings):
            pass

        registry.add("status_reporter.hanging", lambda settings, services: Hanging(), settings=NoSettings)


def test_a_capacity_query_that_hangs_is_bounded_and_the_report_went_first(factory_plant, beats):
    plant = factory_plant(
        {"capacity_timeout": 2.0},
        tactics={"status_reporter": {"use": "hanging"}},
        plugins=[("hanging", HangingPlugin())],
    )
    beats(plant, 5, "f1", "f2")
    down_at = None
    for _ in range(8):
        beats(plant, 1, "f2")
        if down_at is None and "DOWN" in Hanging.reported:
            down_at = plant.clock.time()
    event = events(plant, "DOWN")[0]
    assert event.payload["capacity"]["detail"] == "capacity query failed: no answer within 2.0 s"
    assert down_at is not None and event.time - 2.0 <= down_at, "the report went out as the query started"


def drain_scenario(plant, beats):
    beats(plant, 10, "f1", "f2")
    counter = 0
    for _ in range(8):  # f1's errors rise on 1 beat in 6: HIGH risk (> 0.1 over the window), still UP
        for k in range(6):
            counter += 1 if k == 0 else 0
            beats.one(plant, "f1", errors=counter)
            beats.one(plant, "f2")
            plant.advance(1.0)
    monitor = plant.component("monitor")
    assert monitor.risks["f1"] is Risk.HIGH and monitor.faults.status("f1") is Status.UP
    return monitor


@pytest.mark.parametrize(
    ("table", "drained"),
    [
        ({"f1": [10, 4], "f2": [10, 10]}, False),  # f2 full: nowhere to move f1's orders
        ({"f1": [10, 4], "f2": [10, 6]}, True),
    ],
)
def test_a_high_risk_factory_is_drained_only_with_free_capacity_elsewhere(factory_plant, beats, table, drained):
    plant = factory_plant(tactics={"risk": {"window": 60.0}}, pms={"capacity": table})
    monitor = drain_scenario(plant, beats)
    degraded = events(plant, "DEGRADED")
    assert plant.component("pms").queries, "the drain asked the PMS"
    assert monitor.failover.drains == int(drained) and len(degraded) == int(drained)
    if drained:
        assert degraded[0].payload["reason"] == "risk HIGH"
        assert degraded[0].payload["capacity"] == {
            "freeElsewhere": 4,
            "load": 4,
            "fits": True,
            "detail": "4 free elsewhere; f1 holds 4, UP at the PMS",
        }


def test_when_the_query_fails_the_drain_falls_back_to_a_healthy_peer(factory_plant, beats):
    plant = factory_plant(tactics={"risk": {"window": 60.0}}, pms={"capacity_silent": True})
    monitor = drain_scenario(plant, beats)
    assert monitor.failover.drains == 1 and monitor.capacity.stats["failed"] >= 1
    assert events(plant, "DEGRADED")[0].payload["capacity"]["detail"].startswith("capacity query failed")


def test_the_decision_rule():
    risks = {"f1": Risk.HIGH, "f2": Risk.LOW}
    statuses = {"f1": Status.UP, "f2": Status.UP}
    assert should_preemptively_rebalance("f1", risks, statuses, free_elsewhere=3)
    assert not should_preemptively_rebalance("f1", risks, statuses, free_elsewhere=0)
    assert should_preemptively_rebalance("f1", risks, statuses), "no answer: the stand-in (a healthy peer)"
    assert not should_preemptively_rebalance("f1", risks, {"f1": Status.UP, "f2": Status.DOWN})
    assert not should_preemptively_rebalance("f2", risks, statuses, free_elsewhere=9), "not at HIGH risk"


def test_free_capacity_elsewhere_counts_up_factories_below_high_risk():
    def f(name: str, status: str, capacity: int, load: int) -> Any:
        return FactoryCapacity(name, status, capacity, load, capacity - load)

    view = CapacityView(
        0.0,
        (
            f("a", "UP", 10, 4),
            f("b", "UP", 10, 12),
            f("c", "DEGRADED", 10, 0),
            f("d", "UP", 5, 2),
            f("e", "DOWN", 10, 0),
        ),
    )
    assert view.free_elsewhere("a") == 3, "b over capacity counts 0; c DEGRADED and e DOWN take no orders"
    assert view.free_elsewhere("x") == 9 and view.free_elsewhere("a", exclude={"d"}) == 0
    after = CapacityView(0.0, (f("a", "DOWN", 10, 0), f("d", "UP", 5, 2)))  # answered after a DOWN's move
    assert after.event("a")["fits"] is True, "room left: the PMS placed every order before any went pending"
    full = CapacityView(0.0, (f("a", "DOWN", 10, 0), f("d", "UP", 5, 5)))
    assert full.event("a") == {
        "freeElsewhere": 0,
        "load": 0,
        "fits": None,
        "detail": "0 free elsewhere; a holds 0, DOWN at the PMS (orders moved)",
    }
    assert CapacityView(0.0, None, "boom").event("a") == {
        "freeElsewhere": None,
        "load": None,
        "fits": None,
        "detail": "capacity query failed: boom",
    }


def test_a_factory_the_pms_holds_but_never_beat_is_judged_silent_since_the_start(factory_plant, beats):
    """f3 is UP at the PMS (configured) but never beats: the leader asks the PMS what it holds a DOWN
    timeout after it started and judges f3 silent since then; f1 and f2, heard, are left alone."""
    plant = factory_plant(pms={"capacity": {"f1": [10, 0], "f2": [10, 0], "f3": [10, 2]}})
    beats(plant, 10, "f1", "f2")
    queries = [e.time for e in plant.sent("mms/status_report") if e.type == "mms.capacity_query"]
    report = next(e for e in plant.sent("mms/status_report", type="mms.status_report") if e.payload["status"] == "DOWN")
    assert len(queries) == 2 and queries[0] < report.time <= queries[1], "asked once at the start, once for the DOWN"
    downs = [e.payload for e in events(plant, "DOWN")]
    assert [d["factoryId"] for d in downs] == ["f3"] and downs[0]["outcome"] == "accepted"
    assert plant.component("monitor").faults.statuses() == {"f1": Status.UP, "f2": Status.UP, "f3": Status.DOWN}


def test_unheard_factories_are_asked_again_when_the_query_failed(factory_plant, beats):
    """No PMS answers capacity: the query is asked again a capacity_max_age later, not on every check."""
    plant = factory_plant(pms={"capacity_silent": True})
    beats(plant, 30, "f1")
    queries = [e.time for e in plant.sent("mms/status_report") if e.type == "mms.capacity_query"]
    assert 2 <= len(queries) <= 3, queries
