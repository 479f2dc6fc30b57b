"""The order service's statements, built once and run with parameters: building one per call
(coercions, a new cache key) cost SQLAlchemy about as much as running it, and these run for every
order event."""

from __future__ import annotations

import sqlalchemy as sa

from forge_sched.orders.tables import UNFINISHED, assignments, factories, orders
from forge_sched.orders.tables import outbox as outbox_table

#: One read answering what a scheduling pass may have to do: orders waiting? messages queued? Plain SQL
#: on the pool's DBAPI connection (the same text for SQLite and PostgreSQL): each replica runs it every
#: ``schedule_interval``, and through SQLAlchemy's execution path it cost ~120 us against ~33 us (6 % of
#: industry40's simulated day went to it).
PROBE = (f"SELECT EXISTS (SELECT 1 FROM {orders.name} WHERE status = 'pending'), "
          f"EXISTS (SELECT 1 FROM {outbox_table.name})")

DT = orders.c.updated_at.type
REPLAY = sa.select(orders.c.request_hash, orders.c.response, orders.c.id).where(
    orders.c.idempotency_key == sa.bindparam("b_key"))
ID_TAKEN = sa.select(orders.c.id).where(orders.c.id == sa.bindparam("b_id"))
ORDER = sa.select(orders).where(orders.c.id == sa.bindparam("b_id"))
NEW_ORDER = orders.insert()
RESPONSE = orders.update().where(orders.c.id == sa.bindparam("b_id")).values(
    response=sa.bindparam("b_response", type_=orders.c.response.type))
PROGRESS = orders.update().where(
    orders.c.id == sa.bindparam("b_id"), orders.c.factory_id == sa.bindparam("b_factory"),
    orders.c.status.in_(UNFINISHED)).values(
    status="in_progress", progress=sa.bindparam("b_progress", type_=orders.c.progress.type),
    updated_at=sa.bindparam("b_at", type_=DT))
HELD_BY = sa.select(assignments.c.id).where(
    assignments.c.order_id == sa.bindparam("b_id"), assignments.c.factory_id == sa.bindparam("b_factory")).limit(1)
COUNT_COMPLETION = orders.update().where(orders.c.id == sa.bindparam("b_id")).values(
    completions=orders.c.completions + 1)
END_ASSIGNMENT = assignments.update().where(
    assignments.c.order_id == sa.bindparam("b_id"), assignments.c.revoked_at.is_(None)).values(
    revoked_at=sa.bindparam("b_at", type_=DT), revoke_reason="completed")
CAPACITY = sa.select(factories.c.capacity).where(factories.c.id == sa.bindparam("b_id"))
NEW_FACTORY = factories.insert()
SET_CAPACITY = factories.update().where(factories.c.id == sa.bindparam("b_id")).values(
    capacity=sa.bindparam("b_capacity", type_=factories.c.capacity.type))
SET_RISK = factories.update().where(factories.c.id == sa.bindparam("b_id")).values(
    risk=sa.bindparam("b_risk", type_=factories.c.risk.type))
SET_STATUS = factories.update().where(factories.c.id == sa.bindparam("b_id")).values(
    status=sa.bindparam("b_status", type_=factories.c.status.type),
    reason=sa.bindparam("b_reason", type_=factories.c.reason.type),
    updated_at=sa.bindparam("b_at", type_=factories.c.updated_at.type))
COMPLETE = orders.update().where(orders.c.id == sa.bindparam("b_id")).values(
    status="completed", factory_id=None, progress=1.0, completed_at=sa.bindparam("b_at", type_=DT),
    completed_by=sa.bindparam("b_factory", type_=orders.c.completed_by.type), updated_at=sa.bindparam("b_at2", type_=DT))
