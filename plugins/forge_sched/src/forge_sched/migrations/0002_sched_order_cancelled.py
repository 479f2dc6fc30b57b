"""sched: orders may be cancelled (status 'cancelled', from an order request message)

Revision ID: sched_0002
Revises: sched_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "sched_0002"
down_revision: str | Sequence[str] | None = "sched_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'assigned', 'in_progress', 'completed'"


def _status_check(statuses: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite cannot alter a CHECK: batch mode copies orders and drops the original, which its
        # children's foreign keys refuse (PRAGMA foreign_keys cannot change inside the migration's
        # transaction). So the assignments step aside for the swap and come back after it.
        op.execute("CREATE TABLE _sched_assignments_copy AS SELECT * FROM factory_assignments")
        op.execute("DELETE FROM factory_assignments")
    with op.batch_alter_table("orders") as batch:  # PostgreSQL: ALTER TABLE in place
        batch.drop_constraint("ck_orders_status", type_="check")
        batch.create_check_constraint("ck_orders_status", f"status IN ({statuses})")
    if sqlite:
        op.execute("INSERT INTO factory_assignments SELECT * FROM _sched_assignments_copy")
        op.execute("DROP TABLE _sched_assignments_copy")


def upgrade() -> None:
    _status_check(STATUSES + ", 'cancelled'")


def downgrade() -> None:
    op.execute("UPDATE orders SET status = 'completed' WHERE status = 'cancelled'")  # nothing else can hold it
    _status_check(STATUSES)
