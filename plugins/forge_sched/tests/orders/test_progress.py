"""Progress reports that wait for the next transaction (``progress(defer=True)``), on SQLite and
PostgreSQL: the first report of an order is written at once (it makes the order in progress), the
later ones ride the next transaction of the process (any service's on the database) or are written
alone; one that a rolled-back transaction carried waits again; an order completed or moved meanwhile
is left alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection

from forge_sched.orders import queries
from forge_sched.orders.service import NewOrder

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


def run(coro):
    return asyncio.run(coro)


def progress_of(engine, order_id: str) -> tuple[str, float]:
    view = queries.get_order(engine, order_id)
    return view["status"], view["progress"]


def test_a_later_report_rides_the_next_transaction_of_any_replica(engine, make_service):
    leader, shadow = make_service(), make_service()
    run(leader.configure_factories({"f1": 5}))
    first = run(leader.create_order(NewOrder("widget", 2, DEADLINE)))[0]["id"]
    second = run(leader.create_order(NewOrder("widget", 3, DEADLINE)))[0]["id"]
    assert run(shadow.progress(first, "f1", 0.0, defer=True)), "the first report: written at once"
    assert progress_of(engine, first) == ("in_progress", 0.0)
    assert run(leader.progress(first, "f1", 0.25, defer=True)), "another replica's later report waits"
    assert run(shadow.progress(first, "f1", 0.5, defer=True))
    assert progress_of(engine, first) == ("in_progress", 0.0)
    assert run(leader.progress(second, "f1", 0.1, defer=True)), "an order not seen in progress: at once"
    assert progress_of(engine, second) == ("in_progress", 0.1)
    assert progress_of(engine, first) == ("in_progress", 0.5), "the newest report rode that transaction"
    assert run(leader.progress(second, "f1", 0.7, defer=True))
    assert leader.tx.write_progress() == 1 and progress_of(engine, second) == ("in_progress", 0.7)
    assert leader.tx.write_progress() == 0, "nothing waits"


def test_a_rolled_back_transaction_puts_its_reports_back(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 5}))
    oid = run(s.create_order(NewOrder("widget", 2, DEADLINE)))[0]["id"]
    run(s.progress(oid, "f1", 0.0, defer=True))
    run(s.progress(oid, "f1", 0.4, defer=True))

    def failing(conn: Connection) -> None:
        raise RuntimeError("the work failed after the reports were written")

    with pytest.raises(RuntimeError):
        run(s.tx.run(failing))
    assert progress_of(engine, oid) == ("in_progress", 0.0)
    assert list(s.tx.progress.rows) == [oid], "waiting again"
    assert s.tx.write_progress() == 1 and progress_of(engine, oid) == ("in_progress", 0.4)


def test_a_report_on_an_order_completed_or_moved_meanwhile_changes_nothing(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 5, "f2": 5}))
    done = run(s.create_order(NewOrder("widget", 2, DEADLINE)))[0]
    moved = run(s.create_order(NewOrder("widget", 3, DEADLINE)))[0]
    for view in (done, moved):
        run(s.progress(view["id"], view["factory_id"], 0.0, defer=True))
        run(s.progress(view["id"], view["factory_id"], 0.6, defer=True))
    assert run(s.complete(done["id"], done["factory_id"])) == "completed"  # rides along, then completes
    assert progress_of(engine, done["id"]) == ("completed", 1.0)
    run(s.progress(done["id"], done["factory_id"], 0.9, defer=True))  # a late report: at once, not recorded
    assert progress_of(engine, done["id"]) == ("completed", 1.0)
    run(s.progress(moved["id"], moved["factory_id"], 0.8, defer=True))
    run(s.reschedule_orders(moved["factory_id"]))  # rides first: 0.8 written, then the order moves (progress 0)
    view = queries.get_order(engine, moved["id"])
    assert view["factory_id"] != moved["factory_id"] and view["status"] == "assigned"
    run(s.progress(moved["id"], moved["factory_id"], 0.95, defer=True))  # the former holder's late report
    assert s.tx.write_progress() == 1, "it waited (the order was recorded in progress there) and was written"
    assert progress_of(engine, moved["id"]) == ("assigned", 0.0), "to no row: the new holder's order is as moved"


def test_a_deferred_report_on_an_order_in_progress_not_recorded_here_is_written_at_once(engine, make_service):
    """A process that did not see the order start (restarted: its record of started orders is empty) writes the
    report in one UPDATE whether the order is assigned or already in progress; a factory not holding it is ignored."""
    s = make_service()
    run(s.configure_factories({"f1": 5}))
    oid = run(s.create_order(NewOrder("widget", 2, DEADLINE)))[0]["id"]
    assert run(s.progress(oid, "f1", 0.2, defer=True))
    s.tx.progress.started.clear()  # as after a restart
    assert run(s.progress(oid, "f1", 0.6, defer=True)), "in progress already: written at once"
    assert progress_of(engine, oid) == ("in_progress", 0.6)
    assert not run(s.progress(oid, "f2", 0.9, defer=True)), "not the holder's"
    assert progress_of(engine, oid) == ("in_progress", 0.6)
