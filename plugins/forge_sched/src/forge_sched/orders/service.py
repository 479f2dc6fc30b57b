"""The scheduling service: orders in, factories' statuses in, assignments out, each change in one
(retried) transaction. The component decides *who* may call what (the leader assigns); this module
decides what happens.

* ``create_order``: assigned to the UP factory with the most free capacity (ties by id), else pending.
* ``report_status``: fenced by the reporter's epoch, then DOWN moves every unfinished order away
  (``reschedule``), DEGRADED drains the not-yet-started ones, UP assigns pending orders and rebalances.
* ``complete`` / ``progress``: what factories report; a second completion is counted, not applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from forge_core.tactics import NotLeader
from sqlalchemy import Connection

from forge_sched.orders import fences, outbox, planner
from forge_sched.orders import statements as st
from forge_sched.orders.ids import IdDraw
from forge_sched.orders.moves import Change, Held, NewRow, Topics, Writer, iso
from forge_sched.orders.plain import execute, pipelined, stamp
from forge_sched.orders.queries import factory_views, order_view
from forge_sched.orders.status import StatusReportResult
from forge_sched.orders.tables import UNFINISHED
from forge_sched.orders.transactions import Transactor

__all__ = ["CREATED", "IdempotencyMismatch", "NewOrder", "OrderService", "request_hash"]

CREATED = "sched.order_created"

class IdempotencyMismatch(ValueError):
    """An Idempotency-Key already used for a different request body."""


@dataclass(frozen=True)
class NewOrder:
    """A validated order request."""

    product_type: str
    quantity: int
    deadline: datetime


def request_hash(order: NewOrder) -> str:
    body = {"product_type": order.product_type, "quantity": order.quantity, "deadline": iso(order.deadline)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class OrderService:
    """Orders and factories in the plant's database, changed through ``transactor``.

    ``leader_epoch()`` gives the caller's leadership epoch (None: unfenced, e.g. a lone instance in
    a test); a write whose epoch is older than the newest writer seen raises ``NotLeader``.
    """

    def __init__(self, transactor: Transactor, *, topics: Topics, created_topic: str, now: Callable[[], float],
                 new_id: Callable[[], str], default_capacity: int, writer_fence: str = "writer:order_scheduler",
                 leader_epoch: Callable[[], int | None] = lambda: None) -> None:
        self.tx = transactor
        self.topics = topics
        self.created_topic = created_topic
        self._now = now
        self.new_id = new_id
        self.ids = IdDraw(new_id)
        self.default_capacity = default_capacity
        self.writer_fence = writer_fence
        self.leader_epoch = leader_epoch
        self.placed: int | NotLeader = 0  # see complete(place=True)
        self.stats = {"created": 0, "idempotent_replays": 0, "assigned": 0, "moved": 0, "revoked_to_pending": 0,
                      "completed": 0, "duplicate_completions": 0, "unknown_completions": 0, "stale_reports": 0,
                      "unfenced_reports": 0, "reports": 0, "new_factories": 0}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now(), UTC)

    def _writer(self, conn: Connection, *, fenced: bool = True) -> Writer:
        epoch = self.leader_epoch() if fenced else None
        writer = Writer(conn, self.topics, self.now(), epoch)
        if epoch is not None:
            newer = fences.advance(conn, self.writer_fence, epoch, writer.now)
            if newer is not None:
                raise NotLeader(f"order scheduler epoch {epoch} is older than epoch {newer}: another replica leads")
        return writer

    # -- factories ---------------------------------------------------------------------------------
    def _ensure_factory(self, w: Writer, factory_id: str, *, capacity: int | None = None,
                        status: str = "UP") -> bool:
        """Insert ``factory_id`` if unknown (True if it was); update its capacity when given."""
        row = execute(w.conn, st.P_CAPACITY, {"id": factory_id}).fetchone()
        if row is None:
            w.conn.execute(st.NEW_FACTORY, {"id": factory_id, "status": status, "updated_at": w.now,
                                          "capacity": self.default_capacity if capacity is None else capacity})
            self.stats["new_factories"] += 1
            return True
        if capacity is not None and row[0] != capacity:
            w.conn.execute(st.SET_CAPACITY, {"b_id": factory_id, "b_capacity": capacity})
        return False

    async def configure_factories(self, capacities: Mapping[str, int]) -> None:
        """Factories known from the settings: added (UP) if new, their capacity set from the settings."""
        def work(conn: Connection) -> None:
            w = self._writer(conn)
            for fid, capacity in capacities.items():
                self._ensure_factory(w, fid, capacity=capacity)
            self._assign_pending(w)

        await self.tx.run(work)

    async def see_factory(self, factory_id: str) -> bool:
        """A factory heard of (a heartbeat): added UP with the default capacity if new; True if it was."""
        def work(conn: Connection) -> bool:
            w = self._writer(conn)
            added = self._ensure_factory(w, factory_id)
            if added:
                self._assign_pending(w)
            return added

        return await self.tx.run(work)

    async def set_risk(self, factory_id: str, risk: str) -> None:
        def work(conn: Connection) -> None:
            w = self._writer(conn)
            self._ensure_factory(w, factory_id)
            execute(conn, st.P_SET_RISK, {"id": factory_id, "risk": risk})

        await self.tx.run(work)

    # -- orders ------------------------------------------------------------------------------------
    async def create_order(self, order: NewOrder, *, idempotency_key: str | None = None,
                           assign: bool = True) -> tuple[dict[str, Any], bool]:
        """Store the order and (if ``assign``: the leader) place it; returns (its view, created).

        With ``idempotency_key``: a key seen before returns the first request's view and False, or
        raises :class:`IdempotencyMismatch` if that request's body differed."""
        # SQLite keeps a datetime's wall time and drops its offset: store UTC everywhere
        order = NewOrder(order.product_type, order.quantity, order.deadline.astimezone(UTC))
        digest = request_hash(order) if idempotency_key is not None else None

        def replay(conn: Connection) -> tuple[dict[str, Any], bool] | None:
            row = execute(conn, st.P_REPLAY, {"key": idempotency_key}).fetchone()
            if row is None:
                return None
            request_hash_, response, first_id = row
            if request_hash_ != digest:
                raise IdempotencyMismatch(f"Idempotency-Key {idempotency_key!r} was used for order {first_id} with "
                                          "a different body")
            return json.loads(response), False

        def work(conn: Connection) -> tuple[dict[str, Any], bool]:
            if idempotency_key is not None:
                seen = replay(conn)
                if seen is not None:
                    return seen
            w = self._writer(conn, fenced=assign)
            oid = self.ids.fresh(conn)  # seeded ids (simulation) repeat in a revived replica or a reused database
            best = planner.pick(w.loads().values()) if assign else None
            # the row as inserted, assigned at once if there is a place (not read back: the values are these,
            # to the microsecond)
            row = NewRow(oid, order.product_type, order.quantity, order.deadline, "pending" if best is None
                         else "assigned", None if best is None else best.id, 0.0, w.now, w.now)
            view = order_view(row)
            execute(conn, st.P_NEW_ORDER, {"id": oid, "product_type": order.product_type, "quantity": order.quantity,
                                           "deadline": stamp(conn, order.deadline), "status": row.status,
                                           "factory": row.factory_id, "key": idempotency_key, "hash": digest,
                                           "response": None if idempotency_key is None else json.dumps(view),
                                           "at": stamp(conn, w.now)})
            queue = [] if best is None else [w.hold(row, best.id)]  # its sched.order_assigned before its created
            queue.append(outbox.message(self.created_topic, CREATED, {
                "orderId": oid, "productType": order.product_type, "quantity": order.quantity,
                "deadline": view["deadline"], "status": view["status"]}, key=oid))
            outbox.put_many(conn, queue)
            return view, True

        try:
            view, created = await self.tx.run(pipelined(work))  # reads wait, writes go together
        except sa.exc.IntegrityError:
            if idempotency_key is None:
                raise
            # a concurrent request with the same key won the insert: answer as its replay
            with self.tx.engine.connect() as conn:
                seen = replay(conn)
            if seen is None:
                raise
            view, created = seen
        if created:
            self.stats["created"] += 1
            self.stats["assigned"] += view["status"] == "assigned"
        else:
            self.stats["idempotent_replays"] += 1
        return view, created

    def probe(self) -> tuple[bool, bool]:
        """(pending orders exist, messages are queued), one read outside any write transaction; pending is False
        for a replica that does not lead. A read finding neither serves this process's other replicas too."""
        try:
            self.leader_epoch()
            leading = True
        except NotLeader:
            leading = False
        kept = self.tx.raw()
        raw = self.tx.engine.raw_connection() if kept is None else kept
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(st.PROBE)
                row = cursor.fetchone()  # always one row: two EXISTS
                pending, queued = (row[0], row[1]) if row is not None else (False, False)
            finally:
                cursor.close()
        finally:
            if kept is None:
                raw.close()  # back to the pool, which rolls the read back
            else:
                raw.rollback()  # the read ends here (a no-op where a SELECT opened no transaction)
        if not (pending or queued):
            self.tx.found_idle(self._now())
        return bool(pending) and leading, bool(queued)

    async def assign_pending(self) -> int:
        """Place pending orders where there is capacity (earliest deadline first); returns how many."""
        def work(conn: Connection) -> int:
            return self._assign_pending(self._writer(conn))

        # none placed: nothing written but the fence (no capacity taken, no message queued)
        return await self.tx.run(work, changes_work=bool)

    def _assign_pending(self, w: Writer) -> int:
        pending = w.pending()
        if not pending:
            return 0
        loads = w.loads()
        placed: list[Change] = []
        for order in pending:
            best = planner.pick(loads.values())
            if best is None:
                break
            placed.append(Change(order, best.id))
            best.load += 1
        w.apply(placed, revoke_held=False)
        self.stats["assigned"] += len(placed)
        return len(placed)

    async def rebalance(self) -> int:
        """Even out free capacity across UP factories by moving not-yet-started orders; returns moves."""
        def work(conn: Connection) -> int:
            return self._rebalance(self._writer(conn))

        return await self.tx.run(work)

    def _rebalance(self, w: Writer) -> int:
        loads = w.loads()
        movable = {fid: w.held(fid, ("assigned",)) for fid, f in loads.items() if f.status == "UP" and f.load}
        by_id = {o.id: o for rows in movable.values() for o in rows}
        moves = planner.rebalance_moves(list(loads.values()), {fid: [o.id for o in rows]
                                                               for fid, rows in movable.items()})
        w.apply([Change(by_id[order_id], target, f"rebalanced to {target}") for order_id, _source, target in moves])
        self.stats["moved"] += len(moves)
        return len(moves)

    async def reschedule_orders(self, from_factory: str, to_factory: str | None = None) -> int:
        """Move every unfinished order of ``from_factory`` to ``to_factory`` (as far as its capacity
        goes) or else to the UP factories with the most free capacity, in one transaction; what finds
        no place goes pending. Returns the orders moved to another factory."""
        def work(conn: Connection) -> int:
            return self._reschedule(self._writer(conn), from_factory, to_factory, UNFINISHED, "rescheduled")

        return await self.tx.run(work)

    def _reschedule(self, w: Writer, source: str, target: str | None, statuses: tuple[str, ...], why: str,
                    *, leftovers_pending: bool = True) -> int:
        loads = w.loads()
        changes: list[Change] = []
        moved = 0
        for order in w.held(source, statuses):
            if target is not None:
                dest = loads.get(target)
                best = dest if dest is not None and dest.status == "UP" and dest.free > 0 else None
            else:
                best = planner.pick(loads.values(), exclude=source)
            if best is None:
                if not leftovers_pending:
                    break
                changes.append(Change(order, None, f"{why}: no capacity elsewhere, pending", to_pending=True))
                self.stats["revoked_to_pending"] += 1
                continue
            changes.append(Change(order, best.id, f"{why} to {best.id}"))
            loads[source].load -= 1
            best.load += 1
            moved += 1
        w.apply(changes)  # every change of the pass in a few statements (forge_sched.orders.moves)
        self.stats["moved"] += moved
        return moved

    # -- status reports ----------------------------------------------------------------------------
    async def report_status(self, factory_id: str, status: str, reason: str, epoch: int | None,
                            lease: str) -> StatusReportResult:
        """Apply a validated status report (fenced when ``epoch`` is given) in one transaction."""
        def work(conn: Connection) -> StatusReportResult:
            w = self._writer(conn)
            if epoch is not None:
                newer = fences.advance(conn, f"report:{lease}", epoch, w.now)
                if newer is not None:
                    return StatusReportResult(False, f"stale epoch {epoch} of lease {lease!r}: epoch {newer} "
                                                     "was seen already", 0, "stale_epoch", "epoch")
            added = self._ensure_factory(w, factory_id, status=status)
            execute(conn, st.P_SET_STATUS, {"id": factory_id, "status": status, "reason": reason,
                                            "at": stamp(conn, w.now)})
            if status == "DOWN":
                moved = self._reschedule(w, factory_id, None, UNFINISHED, f"{factory_id} DOWN")
            elif status == "DEGRADED":  # drain what has not started, only where there is room
                moved = self._reschedule(w, factory_id, None, ("assigned",), f"{factory_id} DEGRADED",
                                         leftovers_pending=False)
            else:
                self._assign_pending(w)
                moved = self._rebalance(w)
            note = " (new factory)" if added else ""
            return StatusReportResult(True, f"{factory_id} {status}{note}; {moved} orders moved", moved)

        result = await self.tx.run(work)
        self.stats["reports"] += 1
        if result.code == "stale_epoch":
            self.stats["stale_reports"] += 1
        elif epoch is None:
            self.stats["unfenced_reports"] += 1
        return result

    # -- what factories report ---------------------------------------------------------------------
    async def progress(self, order_id: str, factory_id: str, progress: float, *, defer: bool = False) -> bool:
        """Progress of the holder on an order (others are ignored); True if recorded. ``defer``: one on an
        order recorded in progress for that factory waits for the next transaction (``orders.progress``)."""
        value = max(0.0, min(1.0, progress))
        started = self.tx.progress.started
        if defer and started.get(order_id) == factory_id:
            self.tx.progress.add(order_id, factory_id, value, self._now())
            return True

        def work(conn: Connection) -> bool:
            params = {"id": order_id, "factory": factory_id, "progress": value, "at": stamp(conn, self.now())}
            # in progress already: the lighter UPDATE first. A deferred report comes here only for an order not
            # recorded in progress by this process (nearly always assigned): P_PROGRESS alone takes either state
            done = execute(conn, st.P_PROGRESS if defer else st.P_PROGRESS_ON, params)
            if done.rowcount <= 0 and not defer:
                done = execute(conn, st.P_PROGRESS, params)  # assigned -> in_progress (or not the holder's)
            return bool(done.rowcount > 0)

        # progress makes no work for the pass (no pending order, capacity or queued message)
        recorded = await self.tx.run(work, changes_work=False)
        if recorded and defer:
            if len(started) >= 10_000:  # orders revoked from a factory that never completes them
                started.clear()
            started[order_id] = factory_id
        return recorded

    async def complete(self, order_id: str, factory_id: str, *, place: bool = False) -> str:
        """A factory finished an order: ``completed`` (applied), ``duplicate`` (already completed:
        counted, not applied) or ``unknown`` (no such order, or never held by that factory). ``place``
        (the leader): pending orders placed on the freed capacity in the same transaction, fenced as
        :meth:`assign_pending` (``placed``: how many, or the NotLeader that refused it; the completion stands)."""
        def work(conn: Connection) -> str:
            self.placed = 0
            state = execute(conn, st.P_ORDER_STATE, {"id": order_id, "factory": factory_id}).fetchone()
            if state is None or not state[2]:  # no such order, or never held by that factory
                return "unknown"
            status, holder, _held = state
            if status == "completed":
                execute(conn, st.P_COUNT_COMPLETION, {"id": order_id})
                return "duplicate"
            w = Writer(conn, self.topics, self.now(), None)
            at = stamp(conn, w.now)
            if holder is not None and holder != factory_id:
                # a former holder finished it after all: the current one drops it (a revoke reads
                # only the order's id and holder)
                w.revoke(Held(order_id, holder), f"completed by {factory_id}", to_pending=False)
            else:
                execute(conn, st.P_END_ASSIGNMENT, {"id": order_id, "at": at})
            execute(conn, st.P_COMPLETE, {"id": order_id, "at": at, "factory": factory_id})
            try:
                self.placed = self._assign_pending(self._writer(conn)) if place else 0
            except NotLeader as exc:  # refused before it wrote anything
                self.placed = exc
            return "completed"

        outcome = await self.tx.run(work)
        self.tx.progress.started.pop(order_id, None)
        key = {"completed": "completed", "duplicate": "duplicate_completions", "unknown": "unknown_completions"}
        self.stats[key[outcome]] += 1
        return outcome

    def get_factory_capacity(self, factory_id: str) -> dict[str, Any] | None:
        """``{id, status, risk, capacity, load, free, ...}`` of one factory, or None if unknown."""
        views = factory_views(self.tx.engine, factory_id, connect=self.tx.connect)
        return views[0] if views else None
