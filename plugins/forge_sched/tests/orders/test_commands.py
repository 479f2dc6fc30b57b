"""Orders over messages (forge_sched.orders.commands) and the changes behind them
(forge_sched.orders.changes), on SQLite and a real PostgreSQL: create with an idempotency key,
change and cancel only what has not started, get, and every bad request named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from forge_sched.orders import queries
from forge_sched.orders.commands import handle
from forge_sched.orders.invariants import holder_problems
from forge_sched.orders.tables import orders

from .conftest import queued

DEADLINE = "2030-01-05T12:00:00Z"


def ask(service, **body: Any) -> dict[str, Any]:
    return asyncio.run(handle(service, {"requestId": "r-1", **body}, assign=True))


def create(service, key: str = "erp:PS-1:PR-1", quantity: int = 10) -> dict[str, Any]:
    return ask(service, action="create", idempotencyKey=key, productType="WIDGET-A", quantity=quantity,
               deadline=DEADLINE)


def no_problems(engine) -> None:
    assert holder_problems(engine) == {"holders": [], "overlaps": [], "down": [], "completed": []}


def test_create_once_per_key_and_get_by_key_or_id(engine, make_service):
    s = make_service()
    asyncio.run(s.configure_factories({"f1": 2}))
    first = create(s)
    assert first["ok"] and first["created"] and first["order"]["status"] == "assigned"
    assert first["order"]["idempotencyKey"] == "erp:PS-1:PR-1" and first["order"]["factoryId"] == "f1"
    again = create(s)
    assert again["ok"] and again["created"] is False and again["order"]["orderId"] == first["order"]["orderId"]
    assert len(queries.list_orders(engine)) == 1, "re-sent: no second order"
    other = create(s, quantity=11)
    assert (other["code"], other["field"]) == ("invalid_argument", "idempotencyKey")
    by_key = ask(s, action="get", idempotencyKey="erp:PS-1:PR-1")
    by_id = ask(s, action="get", orderId=first["order"]["orderId"])
    assert by_key["order"] == by_id["order"] and by_key["detail"].endswith("is assigned")
    assert ask(s, action="get", orderId="nope")["code"] == "not_found"


def test_change_an_assigned_order_revokes_and_places_it_again_with_the_new_terms(engine, make_service):
    s = make_service()
    asyncio.run(s.configure_factories({"f1": 2}))
    oid = create(s)["order"]["orderId"]
    seen = len(queued(engine))
    changed = ask(s, action="change", idempotencyKey="erp:PS-1:PR-1", quantity=25, deadline="2030-02-01T00:00:00Z")
    assert changed["ok"] and changed["order"]["quantity"] == 25 and changed["order"]["deadline"] == "2030-02-01T00:00:00Z"
    assert changed["order"]["status"] == "assigned"
    messages = [(t, p) for _, t, p in queued(engine)[seen:]]
    assert [t for t, _ in messages] == ["sched.order_revoked", "sched.order_assigned"]
    assert messages[1][1]["quantity"] == 25, "the factory is sent the new terms"
    assert s.stats["changed"] == 1
    no_problems(engine)
    # a pending order changes in place (nothing to tell a factory)
    pending = ask(s, action="create", idempotencyKey="k2", productType="x", quantity=1, deadline=DEADLINE)
    pending = ask(s, action="create", idempotencyKey="k3", productType="x", quantity=1, deadline=DEADLINE)
    assert pending["order"]["status"] == "pending"
    assert ask(s, action="change", orderId=pending["order"]["orderId"], quantity=3)["order"]["quantity"] == 3
    assert oid


def test_a_started_or_completed_order_is_not_changed_or_cancelled(engine, make_service):
    s = make_service()
    asyncio.run(s.configure_factories({"f1": 2}))
    oid = create(s)["order"]["orderId"]
    asyncio.run(s.progress(oid, "f1", 0.1))
    refused = ask(s, action="change", orderId=oid, quantity=99)
    assert (refused["code"], refused["ok"]) == ("conflict", False) and "in_progress" in refused["detail"]
    assert ask(s, action="cancel", orderId=oid)["code"] == "conflict"
    asyncio.run(s.complete(oid, "f1"))
    assert ask(s, action="cancel", orderId=oid)["code"] == "conflict"
    with engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.quantity, orders.c.status).where(orders.c.id == oid)).one() == (
            10, "completed")
    assert s.stats["change_refused"] == 1 and s.stats["cancel_refused"] == 2


def test_cancel_an_assigned_order_frees_the_factory_and_is_never_placed_again(engine, make_service):
    s = make_service()
    asyncio.run(s.configure_factories({"f1": 1}))
    oid = create(s)["order"]["orderId"]
    waiting = create(s, key="erp:PS-1:PR-2")["order"]
    assert waiting["status"] == "pending"
    cancelled = ask(s, action="cancel", idempotencyKey="erp:PS-1:PR-1")
    assert cancelled["ok"] and cancelled["order"]["status"] == "cancelled" and cancelled["order"]["factoryId"] is None
    assert ask(s, action="cancel", orderId=oid)["detail"].endswith("cancelled already"), "repeating it is harmless"
    asyncio.run(s.assign_pending())
    assert {o["id"]: o["status"] for o in queries.list_orders(engine)} == {oid: "cancelled",
                                                                        waiting["orderId"]: "assigned"}
    revoked = [p for _, t, p in queued(engine) if t == "sched.order_revoked"]
    assert revoked and revoked[-1]["orderId"] == oid
    assert queries.list_orders(engine, status="cancelled")[0]["id"] == oid
    no_problems(engine)


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "create", "productType": "x", "quantity": 0, "deadline": DEADLINE}, "quantity"),
    ({"action": "create", "productType": "x", "quantity": 1, "deadline": "tomorrow"}, "deadline"),
    ({"action": "create", "productType": " x", "quantity": 1, "deadline": DEADLINE}, "productType"),
    ({"action": "change", "orderId": "o1"}, "body"),
    ({"action": "cancel"}, "body"),
    ({"action": "explode", "orderId": "o1"}, "action"),
    ({"action": "get", "orderId": "o1", "colour": "red"}, "colour"),
    ({"action": "get", "idempotencyKey": "has space"}, "idempotencyKey"),
])
def test_bad_requests_are_refused_naming_the_field(engine, make_service, body, field):
    reply = ask(make_service(), **body)
    assert (reply["ok"], reply["code"]) == (False, "invalid_argument")
    assert reply["field"] == field or (field == "body" and reply["field"] in ("body", ""))
    assert asyncio.run(handle(make_service(), ["not", "an", "object"], assign=True))["field"] == "body"
