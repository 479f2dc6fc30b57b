"""What ``industry40.erp_link`` must not forget across a crash: its requests and its unanswered asks.

Two tables in the plant's database (``storage``; PostgreSQL in the distributed profile, where the link
is a process of its own and may be killed):

* ``industry40_erp_requests`` — one row per imported B2MML request: the request as imported (the
  export needs its IDs, material, quantity and unit), the order serving it once the PMS said so,
  its status, and when a factory completed it / whether it was exported;
* ``industry40_erp_asks`` — each ``sched.order_request`` not answered yet (its body, and the
  ``b2mml.request_action`` it serves, if any): a restarted link sends them again with the same
  ``requestId`` (every action is safe to repeat on the PMS side).

A row is written before the message it stands for is published, and the link's inbound message is
acknowledged to the broker only after its handler returned: a kill at any point leaves either the
inbound message to be delivered again or the row to be acted on again, never neither. The tables
come from the plant's Alembic branch ``industry40`` (``industry40/migrations``); the definitions
below must match it (a test compares them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from forge_core.storage import DriverStatement, driver_cursor

_META = sa.MetaData()
REQUESTS = sa.Table(
    "industry40_erp_requests", _META,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("order_id", sa.String(256), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float, nullable=True),
    sa.Column("exported", sa.Boolean, nullable=False, default=False))
ASKS = sa.Table(
    "industry40_erp_asks", _META,
    sa.Column("request_id", sa.String(256), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=True),
    sa.Column("asked_at", sa.Float, nullable=False))


@dataclass
class Tracked:
    """One imported request and the order serving it."""

    key: str
    request: dict[str, Any]
    quantity: float | None
    unit: str | None
    material: str | None
    order_id: str | None = None
    status: str = "requested"  # until the PMS answers: then pending/assigned/in_progress/completed/cancelled/refused
    detail: str = ""
    requested_at: float = 0.0
    completed_at: float | None = None  # when a factory reported it (the export is due from then)
    exported: bool = False

    @classmethod
    def of(cls, key: str, request: dict[str, Any], at: float) -> Tracked:
        produced = (request.get("material_produced") or [{}])[0]
        return cls(key, request, produced.get("quantity"), produced.get("unit"),
                   produced.get("material_definition_id"), requested_at=at)


@dataclass
class Ask:
    """A ``sched.order_request`` waiting for its reply."""

    body: dict[str, Any]
    sent: float
    action: dict[str, Any] | None = None  # the b2mml.request_action it answers (Change/Cancel/Get)


_REQUEST_KEY = DriverStatement("industry40 erp request read", sa.select(REQUESTS.c.key).where(
    REQUESTS.c.key == sa.bindparam("key")))
_REQUEST_INSERT = DriverStatement("industry40 erp request insert", REQUESTS.insert(), columns=[
    "key", "request", "order_id", "status", "detail", "requested_at", "completed_at", "exported"])
_REQUEST_SAVE = DriverStatement("industry40 erp request save", REQUESTS.update().where(
    REQUESTS.c.key == sa.bindparam("b_key")).values(
    {name: sa.bindparam(f"b_{name}") for name in ("order_id", "status", "detail", "completed_at", "exported")}))
_ASK_DELETE = DriverStatement("industry40 erp ask delete", ASKS.delete().where(
    ASKS.c.request_id == sa.bindparam("request_id")), fields=("request_id",))
_ASK_INSERT = DriverStatement("industry40 erp ask insert", ASKS.insert(),
                              columns=["request_id", "body", "action", "asked_at"])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class LinkState:
    """Rows of the two tables; every method one short transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load(self) -> tuple[dict[str, Tracked], dict[str, Ask]]:
        """Every request (by B2MML key) and every unanswered ask (by requestId), as last written."""
        requests: dict[str, Tracked] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(REQUESTS)).all():
                t = requests[r.key] = Tracked.of(r.key, json.loads(r.request), r.requested_at)
                t.order_id, t.status, t.detail, t.completed_at, t.exported = (
                    r.order_id, r.status, r.detail or "", r.completed_at, bool(r.exported))
            asks = {r.request_id: Ask(json.loads(r.body), r.asked_at, json.loads(r.action) if r.action else None)
                    for r in conn.execute(sa.select(ASKS)).all()}
        return requests, asks

    def add_request(self, tracked: Tracked) -> bool:
        """Record a new request; False when its key is recorded already (an inbox published it again)."""
        with self.engine.begin() as conn, driver_cursor(conn) as cursor:
            if _REQUEST_KEY.on(conn).execute(cursor, {"key": tracked.key}).fetchone() is not None:
                return False
            _REQUEST_INSERT.on(conn).execute(cursor, {
                "key": tracked.key, "request": _json(tracked.request), "order_id": tracked.order_id,
                "status": tracked.status, "detail": tracked.detail, "requested_at": tracked.requested_at,
                "completed_at": tracked.completed_at, "exported": tracked.exported})
        return True

    def save(self, tracked: Tracked) -> None:
        """Write a request's order, status, completion and export flag."""
        with self.engine.begin() as conn, driver_cursor(conn) as cursor:
            _REQUEST_SAVE.on(conn).execute(cursor, {
                "b_key": tracked.key, "b_order_id": tracked.order_id, "b_status": tracked.status,
                "b_detail": tracked.detail, "b_completed_at": tracked.completed_at, "b_exported": tracked.exported})

    def put_ask(self, request_id: str, ask: Ask) -> None:
        """Record (or refresh) an unanswered ask."""
        with self.engine.begin() as conn, driver_cursor(conn) as cursor:
            _ASK_DELETE.on(conn).execute(cursor, (request_id,))
            _ASK_INSERT.on(conn).execute(cursor, {
                "request_id": request_id, "body": _json(ask.body), "asked_at": ask.sent,
                "action": _json(ask.action) if ask.action is not None else None})

    def drop_ask(self, request_id: str) -> None:
        with self.engine.begin() as conn, driver_cursor(conn) as cursor:
            _ASK_DELETE.on(conn).execute(cursor, (request_id,))
