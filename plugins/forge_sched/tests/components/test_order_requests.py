"""sched.order_request / sched.order_reply in a plant (two replicas, virtual time): only the leader
answers, a request repeated after a leader's death creates nothing twice, cancel revokes."""

from __future__ import annotations

from typing import Any

from forge_core.testing import TestPlant

from .test_order_scheduler import leader, plant  # noqa: F401 - the plant fixture


def request(p: TestPlant, request_id: str, **body: Any) -> list[dict[str, Any]]:
    seen = len(p.observed)
    p.publish("orders/requests", "sched.order_request", {"requestId": request_id, **body})
    p.advance(0.5)
    return [e.payload for e in p.observed[seen:] if e.type == "sched.order_reply"
            and e.payload["requestId"] == request_id]


def test_only_the_leader_answers_and_a_retry_after_failover_creates_nothing_twice(plant):  # noqa: F811
    p = plant()
    p.advance(3)
    create = {"action": "create", "idempotencyKey": "erp:PS-1:PR-1", "productType": "WIDGET-A", "quantity": 4,
              "deadline": "2030-01-05T12:00:00Z"}
    [reply] = request(p, "r-1", **create)
    assert reply["ok"] and reply["created"] and reply["order"]["status"] == "assigned"
    assert p.sent("factory/+/orders", type="sched.order_assigned")[-1].payload["orderId"] == reply["order"]["orderId"]
    p.kill(leader(p).name)
    assert request(p, "r-2", **create) == [], "no leader for a while: unanswered (the requester retries)"
    p.advance(10)
    [again] = request(p, "r-3", **create)
    assert again["created"] is False and again["order"]["orderId"] == reply["order"]["orderId"]
    [got] = request(p, "r-4", action="get", idempotencyKey="erp:PS-1:PR-1")
    assert got["order"]["status"] == "assigned"
    [cancel] = request(p, "r-5", action="cancel", orderId=reply["order"]["orderId"])
    assert cancel["order"]["status"] == "cancelled"
    revoked = p.sent("factory/+/orders/revoked", type="sched.order_revoked")
    assert revoked[-1].payload["orderId"] == reply["order"]["orderId"]
    [bad] = request(p, "r-6", action="change", orderId=reply["order"]["orderId"])
    assert bad["code"] == "invalid_argument"
    failed = [(c.name, c.detail) for c in p.stop().checks if not c.passed]
    assert not failed, failed
