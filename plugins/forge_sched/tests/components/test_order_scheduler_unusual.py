"""sched.order_scheduler on schema-valid but unusual messages: 2.0 where the schema says integer, ints where it says
number, the extremes of progress, a huge epoch, extra fields. The scheduler and its order modules may run compiled
(mypyc checks annotations where it is entered; docs/compiled.md): the same answers pure and compiled."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core.errors import MessageRejected

from . import test_order_scheduler as scheduler_tests
from .test_order_scheduler import leader, report, rest

plant = scheduler_tests.plant  # the fixture: a TestPlant of two replicas with these params


def request(p: Any, request_id: str, **fields: Any) -> dict[str, Any]:
    seen = len(p.observed)
    p.publish("orders/requests", "sched.order_request", {"requestId": request_id, **fields})
    return p.expect("sched.order_reply", within=2, after=seen, where=lambda e: e.payload["requestId"] == request_id).payload


def test_a_whole_float_quantity_is_refused_by_the_schema_check_and_an_int_one_taken(plant):
    p = plant()
    p.advance(2)
    # Forge's schema check takes no 2.0 for "integer": the request never reaches the scheduler
    with pytest.raises(MessageRejected, match="is not of type 'integer'"):
        p.publish("orders/requests", "sched.order_request", {"requestId": "q1", "action": "create",
                                                             "productType": "gear", "quantity": 2.0})
    created = request(p, "q2", action="create", productType="gear", quantity=1_000_000, idempotencyKey="k2",
                      deadline="2030-01-01T00:00:00+00:00")
    assert created["ok"] is True and created["order"]["quantity"] == 1_000_000, created
    assert request(p, "q3", action="get", idempotencyKey="k2")["order"]["quantity"] == 1_000_000


def test_progress_at_its_limits_and_as_ints(plant):
    p = plant({"capacities": {"f1": 3}})
    p.advance(2)
    ids = [rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1,
                                            "deadline": "2030-01-01T00:00:00Z"}).json()["id"] for _ in range(3)]
    p.advance(0.5)
    for order_id, progress in zip(ids, [0, 1, 0.5], strict=True):  # ints where the schema says number
        p.publish("factory/f1/progress", "sched.order_progress",
                  {"orderId": order_id, "factoryId": "f1", "progress": progress, "note": "extra"})
    p.advance(2)
    got = [rest(p, "GET", f"/orders/{order_id}").json() for order_id in ids]
    assert [o["status"] for o in got] == ["in_progress"] * 3
    assert [o["progress"] for o in got] == [0.0, 1.0, 0.5]
    assert leader(p).counts.get("bad_messages", 0) == 0


def test_status_reports_with_unusual_epochs(plant):
    p = plant({"capacities": {"f1": 1}})
    p.advance(2)
    assert report(p, "f1", "DEGRADED", 0, "e0")["accepted"]
    big = report(p, "f1", "UP", 2**62, "e1")  # a BIGINT's range
    assert big["accepted"], big
    assert report(p, "f1", "DOWN", 2**62 - 1, "e2")["code"] == "stale_epoch"
    assert report(p, "f1", "DOWN", 3.0, "e3")["field"] == "epoch"  # type: ignore[arg-type]
    assert rest(p, "GET", "/factories/f1").json()["status"] == "UP"


def test_heartbeats_and_risks_with_ints_and_extra_fields(plant):
    p = plant({"capacities": {}, "default_capacity": 2})
    p.advance(2)
    p.publish("factory/f-7/heartbeat", "mms.factory_heartbeat",
              {"factoryId": "f-7", "timestamp": 1, "latencyMs": 0, "metrics": {"errors": 2**53, "cpu": 0}, "x": [1]})
    p.publish("mms/risk/f-7", "mms.risk_changed", {"factoryId": "f-7", "risk": "MEDIUM", "errorRate": 1,
                                                   "extra": None})
    p.advance(0.5)
    factory = rest(p, "GET", "/factories/f-7").json()
    assert (factory["capacity"], factory["risk"]) == (2, "MEDIUM")
