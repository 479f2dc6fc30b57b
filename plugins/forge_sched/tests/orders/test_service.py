"""The scheduling service on SQLite and on a real PostgreSQL: placement, failure and recovery of
factories, fencing of status reports, completions, and the messages queued after each commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from forge_core.tactics import NotLeader

from forge_sched.orders import queries
from forge_sched.orders.invariants import holder_problems
from forge_sched.orders.service import IdempotencyMismatch, NewOrder

from .conftest import queued

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


def order(n: int = 1, product: str = "widget") -> NewOrder:
    return NewOrder(product, n, DEADLINE.replace(day=n % 28 + 1))


def run(coro):
    return asyncio.run(coro)


def holders(engine) -> dict[str, str | None]:
    return {o["id"]: o["factory_id"] for o in queries.list_orders(engine, limit=1000)}


def loads(engine) -> dict[str, int]:
    return {f["id"]: f["load"] for f in queries.factory_views(engine)}


def no_problems(engine) -> None:
    assert holder_problems(engine) == {"holders": [], "overlaps": [], "down": [], "completed": []}


def test_create_goes_to_the_most_free_up_factory_ties_by_id_else_pending(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f2": 2, "f1": 2, "f3": 1}))
    placed = [run(s.create_order(order(i)))[0]["factory_id"] for i in range(1, 7)]
    # f1 and f2 tie (2 free): f1; then f2 (2 free); then f1/f2/f3 at 1 free: f1; f2; f3; then all full
    assert placed == ["f1", "f2", "f1", "f2", "f3", None]
    assert queries.list_orders(engine, status="pending")[0]["id"] == "o0006"
    assert loads(engine) == {"f1": 2, "f2": 2, "f3": 1}
    kinds = [(topic, t) for topic, t, _ in queued(engine)]
    assert kinds[:2] == [("factory/f1/orders", "sched.order_assigned"), ("orders/created", "sched.order_created")]
    assert kinds[-1] == ("orders/created", "sched.order_created"), "the pending one: created, not assigned"
    no_problems(engine)


def test_a_shadow_stores_pending_and_the_leader_places_it(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 1}))
    view, created = run(s.create_order(order(), assign=False))
    assert created and view["status"] == "pending"
    assert run(s.assign_pending()) == 1
    assert holders(engine) == {view["id"]: "f1"}


def test_idempotency_key_creates_one_order_and_refuses_another_body(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 5}))
    first, created = run(s.create_order(order(3), idempotency_key="k-1"))
    again, created_again = run(s.create_order(order(3), idempotency_key="k-1"))
    assert created and not created_again and again == first
    assert len(queries.list_orders(engine)) == 1
    with pytest.raises(IdempotencyMismatch, match="k-1"):
        run(s.create_order(order(4), idempotency_key="k-1"))
    assert s.stats["idempotent_replays"] == 1


def test_down_moves_every_unfinished_order_in_one_go_and_the_rest_go_pending(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 3, "f2": 1, "f3": 1}))
    ids = [run(s.create_order(order(i)))[0]["id"] for i in range(1, 6)]
    on_f1 = [oid for oid, fid in holders(engine).items() if fid == "f1"]
    assert len(on_f1) == 3
    assert run(s.progress(on_f1[0], "f1", 0.5))  # in progress: moves too on DOWN
    result = run(s.report_status("f1", "DOWN", "3 missed beats", 1, "mms"))
    assert result.accepted and result.orders_moved == 0, "f2 and f3 are full: nothing can move"
    assert all(holders(engine)[o] is None for o in on_f1)
    assert {o["id"] for o in queries.list_orders(engine, status="pending")} == set(on_f1)
    run(s.configure_factories({"f4": 5}))  # capacity appears: pending orders are placed
    assert sorted(fid for oid, fid in holders(engine).items() if oid in on_f1) == ["f4"] * 3
    assert len(ids) == 5 and None not in holders(engine).values()
    revoked = [p for _, t, p in queued(engine) if t == "sched.order_revoked"]
    assert sorted(p["orderId"] for p in revoked) == sorted(on_f1) and {p["factoryId"] for p in revoked} == {"f1"}
    no_problems(engine)


def test_down_moves_to_factories_with_capacity_and_reports_the_count(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 2, "f2": 2, "f3": 2}))
    for i in range(1, 4):
        run(s.create_order(order(i)))
    result = run(s.report_status("f1", "DOWN", "gone", 5, "mms"))
    assert result.accepted and result.orders_moved == 1 and result.code == "ok"
    assert "f1" not in holders(engine).values()
    assert loads(engine) == {"f1": 0, "f2": 2, "f3": 1}
    run(s.create_order(order(9)))
    assert loads(engine)["f1"] == 0, "no new order for a DOWN factory"
    no_problems(engine)


def test_reschedule_orders_from_one_factory_to_another(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 3, "f2": 1}))
    for i in range(1, 4):
        run(s.create_order(order(i)))
    assert loads(engine) == {"f1": 3, "f2": 0}, "3 free beats 1, then the tie at 1 goes to f1"
    run(s.configure_factories({"f3": 1}))
    assert run(s.reschedule_orders("f1", "f3")) == 1, "f3 takes one; the others go pending (f3 was asked for)"
    assert loads(engine) == {"f1": 0, "f2": 0, "f3": 1}
    assert len(queries.list_orders(engine, status="pending")) == 2
    assert run(s.assign_pending()) == 2, "f1 is still UP: the pending orders may go back to it"
    no_problems(engine)


def test_degraded_takes_no_new_orders_and_drains_only_unstarted_ones_where_there_is_room(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 3, "f2": 0}))
    for i in range(1, 4):
        run(s.create_order(order(i)))
    on_f1 = sorted(oid for oid, fid in holders(engine).items() if fid == "f1")
    assert len(on_f1) == 3
    run(s.progress(on_f1[0], "f1", 0.2))
    run(s.configure_factories({"f2": 1}))  # one free slot elsewhere
    result = run(s.report_status("f1", "DEGRADED", "error rate 0.2", 1, "mms"))
    assert result.accepted and result.orders_moved == 1
    assert holders(engine)[on_f1[0]] == "f1", "the started order stays"
    assert list(holders(engine).values()).count("f1") == 2, "no room for the second unstarted one: it stays"
    assert not queries.list_orders(engine, status="pending"), "a drain never leaves an order pending"
    view, _ = run(s.create_order(order(8)))
    assert view["status"] == "pending", "DEGRADED takes no new order and the others are full"


def test_recovery_places_pending_orders_and_rebalances(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 4, "f2": 4}))
    run(s.report_status("f2", "DOWN", "gone", 1, "mms"))
    for i in range(1, 7):
        run(s.create_order(order(i)))
    assert loads(engine) == {"f1": 4, "f2": 0} and len(queries.list_orders(engine, status="pending")) == 2
    result = run(s.report_status("f2", "UP", "5 healthy beats", 1, "mms"))
    assert result.accepted and result.orders_moved == 1, "2 pending placed on f2, then one moved: 3/3"
    assert loads(engine) == {"f1": 3, "f2": 3}
    no_problems(engine)


def test_stale_epochs_are_rejected_even_after_a_restart(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 2}))
    assert run(s.report_status("f1", "DOWN", "gone", 7, "mms")).accepted
    assert run(s.report_status("f1", "DOWN", "again, same leader", 7, "mms")).accepted
    restarted = make_service()  # a new process: the fence comes from the database
    stale = run(restarted.report_status("f1", "UP", "old leader", 6, "mms"))
    assert not stale.accepted and stale.code == "stale_epoch" and stale.field == "epoch" and "7" in stale.detail
    assert queries.factory_views(engine)[0]["status"] == "DOWN", "a stale report changes nothing"
    assert restarted.stats["stale_reports"] == 1
    assert run(restarted.report_status("f1", "UP", "other lease", 1, "other")).accepted, "fences are per lease"
    assert run(restarted.report_status("f2", "UP", "unfenced", None, "mms")).accepted
    assert restarted.stats["unfenced_reports"] == 1


def test_an_unknown_factory_in_a_report_is_added_with_the_default_capacity(engine, make_service):
    s = make_service(default_capacity=3)
    result = run(s.report_status("factory-9", "UP", "first beat", None, "default"))
    assert result.accepted and "new factory" in result.detail
    assert queries.factory_views(engine) == [{**queries.factory_views(engine)[0], "id": "factory-9", "capacity": 3,
                                              "status": "UP", "load": 0, "free": 3}]
    assert s.get_factory_capacity("factory-9")["free"] == 3 and s.get_factory_capacity("nope") is None


def test_completion_is_applied_once_and_counted_again(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 1}))
    oid = run(s.create_order(order()))[0]["id"]
    waiting = run(s.create_order(order(2)))[0]["id"]
    assert run(s.complete(oid, "f2")) == "unknown", "f2 never held it"
    assert run(s.complete(oid, "f1")) == "completed"
    first = queries.get_order(engine, oid)
    assert run(s.complete(oid, "f1")) == "duplicate"
    assert queries.get_order(engine, oid)["completed_at"] == first["completed_at"]
    assert run(s.complete("nope", "f1")) == "unknown"
    assert s.stats["completed"] == 1 and s.stats["duplicate_completions"] == 1
    assert run(s.assign_pending()) == 1 and holders(engine)[waiting] == "f1", "the freed capacity is used"
    no_problems(engine)


def test_a_former_holder_completing_takes_the_order_from_the_current_one(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 1, "f2": 1}))
    oid = run(s.create_order(order()))[0]["id"]
    held_by = holders(engine)[oid]
    run(s.report_status(held_by, "DOWN", "gone", 1, "mms"))
    now_at = holders(engine)[oid]
    assert now_at not in (None, held_by)
    assert run(s.complete(oid, held_by)) == "completed", "it finished before it died: the work is done"
    assert queries.get_order(engine, oid)["completed_by"] == held_by
    last = queued(engine)[-1]
    assert last[1] == "sched.order_revoked" and last[2]["factoryId"] == now_at
    no_problems(engine)


def test_a_deposed_leaders_write_is_refused(engine, make_service):
    run(make_service(epoch=5).configure_factories({"f1": 1}))
    old = make_service(epoch=4)
    with pytest.raises(NotLeader, match="epoch 4 is older than epoch 5"):
        run(old.create_order(order()))
    assert queries.list_orders(engine) == [], "nothing of the refused transaction committed"
    view, _ = run(old.create_order(order(), assign=False))  # a shadow's pending insert is not fenced
    assert view["status"] == "pending"


def test_the_leaders_completion_places_what_waits_in_its_transaction_and_stands_when_deposed(engine, make_service):
    s = make_service(epoch=5)
    run(s.configure_factories({"f1": 1}))
    first = run(s.create_order(order()))[0]["id"]
    waiting = run(s.create_order(order(2)))[0]["id"]
    third = run(s.create_order(order(3)))[0]["id"]
    assert run(s.complete(first, "f1", place=True)) == "completed" and s.placed == 1
    assert holders(engine)[waiting] == "f1", "placed on the freed capacity by the completion's transaction"
    assert [p["orderId"] for _, t, p in queued(engine) if t == "sched.order_assigned"][-1] == waiting
    run(make_service(epoch=6).configure_factories({"f1": 1}))  # another replica leads now
    assert run(s.complete(waiting, "f1", place=True)) == "completed", "the completion stands"
    assert isinstance(s.placed, NotLeader) and holders(engine)[third] is None, "the deposed one placed nothing"
    assert queries.get_order(engine, waiting)["status"] == "completed"
    no_problems(engine)
