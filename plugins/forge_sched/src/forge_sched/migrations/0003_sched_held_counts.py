"""sched: sched_factory_held, each factory's count of held orders, kept by triggers on orders

Every placement reads each factory's load. Counting the held orders (``status IN ('assigned',
'in_progress')``) made that read grow with the table; this count is kept by the database itself,
in the transaction of the order change that moves it (insert, status or holder change, delete),
whichever process or replica makes the change and whatever statement it uses. A failover or a
second replica therefore sees the same count as a ``count(*)`` would.

A held order is one whose ``status`` is ``assigned`` or ``in_progress`` and whose ``factory_id``
is set (the same rows the former count read). The table starts from the orders already there.

SQLite drops a table's triggers with the table: a later migration that rebuilds ``orders`` in
batch mode must create them again (:func:`create_triggers`).

Revision ID: sched_0003
Revises: sched_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sched_0003"
down_revision: str | Sequence[str] | None = "sched_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = "('assigned', 'in_progress')"
TABLE = "sched_factory_held"


def _is_held(row: str) -> str:
    return f"({row}.factory_id IS NOT NULL AND {row}.status IN {HELD})"


def _inc(row: str) -> str:
    return (f"INSERT INTO {TABLE} (factory_id, held) VALUES ({row}.factory_id, 1) "
            f"ON CONFLICT (factory_id) DO UPDATE SET held = {TABLE}.held + 1")


def _dec(row: str) -> str:
    return f"UPDATE {TABLE} SET held = held - 1 WHERE factory_id = {row}.factory_id"


# An update that keeps the order held by the same factory (assigned -> in_progress) changes nothing.
_SAME = "(OLD.factory_id = NEW.factory_id)"
SQLITE_TRIGGERS = {
    "sched_held_insert": f"AFTER INSERT ON orders WHEN {_is_held('NEW')} BEGIN {_inc('NEW')}; END",
    "sched_held_delete": f"AFTER DELETE ON orders WHEN {_is_held('OLD')} BEGIN {_dec('OLD')}; END",
    "sched_held_update_old": (f"AFTER UPDATE OF status, factory_id ON orders WHEN {_is_held('OLD')} "
                              f"AND NOT ({_is_held('NEW')} AND {_SAME}) BEGIN {_dec('OLD')}; END"),
    "sched_held_update_new": (f"AFTER UPDATE OF status, factory_id ON orders WHEN {_is_held('NEW')} "
                              f"AND NOT ({_is_held('OLD')} AND {_SAME}) BEGIN {_inc('NEW')}; END"),
}

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION sched_held_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was boolean := false;
    now_held boolean := false;
BEGIN
    IF TG_OP <> 'INSERT' THEN was := {_is_held('OLD')}; END IF;
    IF TG_OP <> 'DELETE' THEN now_held := {_is_held('NEW')}; END IF;
    IF was AND now_held AND OLD.factory_id = NEW.factory_id THEN RETURN NULL; END IF;
    IF was THEN {_dec('OLD')}; END IF;
    IF now_held THEN {_inc('NEW')}; END IF;
    RETURN NULL;
END
$$
"""
POSTGRES_TRIGGER = ("CREATE TRIGGER sched_held_count AFTER INSERT OR DELETE OR UPDATE OF status, factory_id "
                    "ON orders FOR EACH ROW EXECUTE FUNCTION sched_held_count()")


def create_triggers() -> None:
    """The triggers that keep ``sched_factory_held`` (on SQLite or PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS sched_held_count ON orders")
        op.execute("DROP FUNCTION IF EXISTS sched_held_count()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("factory_id", sa.String(100), primary_key=True),
        sa.Column("held", sa.Integer, nullable=False),
    )
    op.execute(f"INSERT INTO {TABLE} (factory_id, held) SELECT factory_id, count(*) FROM orders "
               f"WHERE factory_id IS NOT NULL AND status IN {HELD} GROUP BY factory_id")
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_table(TABLE)
