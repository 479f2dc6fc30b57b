"""The order service's statements, built once and run with parameters: building one per call
(coercions, a new cache key) cost SQLAlchemy about as much as running it, and these run for every
order event. Those of the hot paths (creation, progress, completion, status reports, the fence) are
plain SQL (:mod:`forge_sched.orders.plain`): even built once, SQLAlchemy's execution path cost more
than SQLite running them."""

from __future__ import annotations

import sqlalchemy as sa

from forge_sched.orders.plain import Plain
from forge_sched.orders.tables import UNFINISHED, assignments, factories, fences, orders
from forge_sched.orders.tables import outbox as outbox_table

#: One read answering what a scheduling pass may have to do: orders waiting? messages queued? Plain SQL
#: on the pool's DBAPI connection (the same text for SQLite and PostgreSQL): each replica runs it every
#: ``schedule_interval``, and through SQLAlchemy's execution path it cost ~120 us against ~33 us (6 % of
#: industry40's simulated day went to it).
PROBE = (f"SELECT EXISTS (SELECT 1 FROM {orders.name} WHERE status = 'pending'), "
          f"EXISTS (SELECT 1 FROM {outbox_table.name})")
#: Every replica reads both (the pending test is a seek in ``ix_orders_status``), so one that found neither
#: answers for the others of its process until a commit of the process (Transactor.idle_since).

NEW_FACTORY = factories.insert()
SET_CAPACITY = factories.update().where(factories.c.id == sa.bindparam("b_id")).values(
    capacity=sa.bindparam("b_capacity", type_=factories.c.capacity.type))

# Plain SQL for the statements order events run: creation, progress, completion, the fence every
# leader write advances, a factory's status and risk (the loads every placement reads: moves.py).
_HELD = ", ".join(f"'{s}'" for s in UNFINISHED)
O, A, F = orders.name, assignments.name, factories.name
P_PROGRESS = Plain(f"UPDATE {O} SET status = 'in_progress', progress = :progress, updated_at = :at "
                   f"WHERE id = :id AND factory_id = :factory AND status IN ({_HELD})")
#: progress on an order already in progress (nearly every report): no status in the SET, so neither the
#: status index nor the held-count triggers (AFTER UPDATE OF status) are touched; P_PROGRESS when no row
P_PROGRESS_ON = Plain(f"UPDATE {O} SET progress = :progress, updated_at = :at "
                      "WHERE id = :id AND factory_id = :factory AND status = 'in_progress'")
#: a completion's read: the order's status and holder, and whether ``factory`` ever held it (one statement)
P_ORDER_STATE = Plain(f"SELECT status, factory_id, EXISTS (SELECT 1 FROM {A} WHERE order_id = :id "
                      f"AND factory_id = :factory) FROM {O} WHERE id = :id")
P_COUNT_COMPLETION = Plain(f"UPDATE {O} SET completions = completions + 1 WHERE id = :id")
P_END_ASSIGNMENT = Plain(f"UPDATE {A} SET revoked_at = :at, revoke_reason = 'completed' "
                         "WHERE order_id = :id AND revoked_at IS NULL")
#: the completion applied and counted in one UPDATE (P_COUNT_COMPLETION alone counts a duplicate)
P_COMPLETE = Plain(f"UPDATE {O} SET status = 'completed', factory_id = NULL, progress = 1.0, completed_at = :at, "
                   "completed_by = :factory, updated_at = :at, completions = completions + 1 WHERE id = :id")
P_FENCE_INSERT = Plain(f"INSERT INTO {fences.name} (name, epoch, updated_at) VALUES (:name, :epoch, :at) "
                       "ON CONFLICT DO NOTHING")
P_FENCE_EPOCH = Plain(f"SELECT epoch FROM {fences.name} WHERE name = :name")
P_FENCE_MOVE = Plain(f"UPDATE {fences.name} SET epoch = :epoch, updated_at = :at WHERE name = :name")
P_REPLAY = Plain(f"SELECT request_hash, response, id FROM {O} WHERE idempotency_key = :key")
P_ID_TAKEN = Plain(f"SELECT 1 FROM {O} WHERE id = :id")
#: the next ids of a replica's stream, tested together once one was taken (forge_sched.orders.ids)
IDS_AHEAD = 64
P_IDS_TAKEN = Plain(f"SELECT id FROM {O} WHERE id IN ({', '.join(f':i{n}' for n in range(IDS_AHEAD))})")
#: a new order as it ends its transaction: pending, or assigned at once (the held-count trigger counts the
#: insert), with its stored answer: one statement where an insert, an UPDATE assigning it and one storing
#: the answer were three
P_NEW_ORDER = Plain(f"INSERT INTO {O} (id, product_type, quantity, deadline, status, factory_id, progress, "
                    "idempotency_key, request_hash, response, created_at, updated_at, completions) "
                    "VALUES (:id, :product_type, :quantity, :deadline, :status, :factory, 0.0, :key, :hash, "
                    ":response, :at, :at, 0)")
P_CAPACITY = Plain(f"SELECT capacity FROM {F} WHERE id = :id")
P_SET_RISK = Plain(f"UPDATE {F} SET risk = :risk WHERE id = :id")
P_SET_STATUS = Plain(f"UPDATE {F} SET status = :status, reason = :reason, updated_at = :at WHERE id = :id")
