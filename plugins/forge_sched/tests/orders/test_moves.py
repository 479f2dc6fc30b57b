"""Writer.apply: a pass's changes in a fixed number of statements, with the same rows and messages
(per order its revoke before its assignment, orders in the pass's order) as one change at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa

from forge_sched.orders import queries
from forge_sched.orders.invariants import holder_problems
from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import assignments

from .conftest import queued

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


def run(coro):
    return asyncio.run(coro)


def holding(s, engine, n: int) -> list[str]:
    """``n`` new orders on f1 (the other factories DOWN while they are placed, then UP again
    unreported, so no rebalance moves them), the outbox emptied; their ids, latest deadline first
    (the order a DOWN pass takes them in)."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE factories SET status = CASE WHEN id = 'f1' THEN 'UP' ELSE 'DOWN' END"))
    ids = [run(s.create_order(NewOrder("p", 1, DEADLINE.replace(day=i + 1))))[0]["id"] for i in range(n)]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE factories SET status = 'UP' WHERE id != 'f1'"))
        conn.execute(sa.text("DELETE FROM sched_outbox"))
    return ids[::-1]


def statements_of_down(engine, s) -> int:
    count = [0]

    def counted(*_args: object) -> None:
        count[0] += 1

    sa.event.listen(engine, "before_cursor_execute", counted)
    try:
        assert run(s.report_status("f1", "DOWN", "gone", 1, "mms")).accepted
    finally:
        sa.event.remove(engine, "before_cursor_execute", counted)
    return count[0]


def test_a_down_pass_costs_the_same_statements_for_2_orders_as_for_12(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 50, "f2": 50, "f3": 50}))
    holding(s, engine, 2)
    with_two = statements_of_down(engine, s)
    holding(s, engine, 12)
    assert statements_of_down(engine, s) == with_two <= 12, "one statement per kind of row, not per order"
    assert holder_problems(engine) == {"holders": [], "overlaps": [], "down": [], "completed": []}


def test_a_down_pass_queues_each_orders_revoke_before_its_assignment(engine, make_service):
    s = make_service(epoch=3)
    run(s.configure_factories({"f1": 50, "f2": 50, "f3": 50}))
    ids = holding(s, engine, 6)
    result = run(s.report_status("f1", "DOWN", "gone", 1, "mms"))
    assert result.orders_moved == 6
    messages = [(t, p["orderId"], p["factoryId"]) for _, t, p in queued(engine)]
    assert [m[1] for m in messages] == [o for o in ids for _ in (0, 1)], "orders in the pass's order"
    assert [m[0] for m in messages] == ["sched.order_revoked", "sched.order_assigned"] * 6
    assert all(m[2] == "f1" for m in messages[0::2]) and all(m[2] in ("f2", "f3") for m in messages[1::2])
    with engine.connect() as conn:  # one open assignment per order, on its new holder; the old ones closed
        rows = conn.execute(sa.select(assignments.c.order_id, assignments.c.factory_id, assignments.c.revoked_at,
                                      assignments.c.revoke_reason, assignments.c.epoch)).all()
    open_ = {r.order_id: r.factory_id for r in rows if r.revoked_at is None}
    assert set(open_) == set(ids) and set(open_.values()) == {"f2", "f3"}
    closed = [r for r in rows if r.revoked_at is not None]
    assert {r.order_id for r in closed} == set(ids) and all(r.revoke_reason.startswith("f1 DOWN to f") for r in closed)
    assert all(r.epoch == 3 for r in rows if r.revoked_at is None), "stamped with the leader's epoch"
    assert holder_problems(engine) == {"holders": [], "overlaps": [], "down": [], "completed": []}


def test_orders_with_no_room_go_pending_in_the_same_pass(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 50, "f2": 1, "f3": 1}))
    ids = holding(s, engine, 4)
    result = run(s.report_status("f1", "DOWN", "gone", 1, "mms"))
    assert result.orders_moved == 2
    pending = {o["id"] for o in queries.list_orders(engine, status="pending")}
    assert pending == set(ids[2:]), "the first two in the pass's order found room"
    kinds = [t for _, t, _ in queued(engine)]
    assert kinds == ["sched.order_revoked", "sched.order_assigned"] * 2 + ["sched.order_revoked"] * 2
    assert holder_problems(engine) == {"holders": [], "overlaps": [], "down": [], "completed": []}


def test_held_reads_a_factorys_orders_in_the_statuses_asked_latest_deadline_first(engine, make_service):
    """``Writer.held`` (a DOWN pass and a rebalance read it): the factory's orders in the statuses asked, latest
    deadline first, with one status or two; its statement (plain SQL) binds one parameter per status and is
    built once per number of statuses."""
    from forge_sched.orders.moves import Writer, _held
    from forge_sched.orders.tables import UNFINISHED

    s = make_service()
    run(s.configure_factories({"f1": 50, "f2": 50}))
    ids = holding(s, engine, 3)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'in_progress' WHERE id = :id"), {"id": ids[1]})
    with engine.connect() as conn:
        w = Writer(conn, s.topics, datetime.now(UTC), None)
        assert [o.id for o in w.held("f1")] == ids
        assert [o.id for o in w.held("f1", UNFINISHED)] == ids
        assert [o.id for o in w.held("f1", ("assigned",))] == [ids[0], ids[2]]
        assert [o.id for o in w.held("f1", ("in_progress",))] == [ids[1]]
        assert w.held("f2") == [] and w.held("f1", ("completed",)) == []
        assert w.held("f1")[0].deadline.day == 3 and w.held("f1")[0].factory_id == "f1"
    assert _held(2) is _held(2)
    assert "IN (:s0, :s1)" in _held(2).sqlite, "plain SQL, one parameter per status"
