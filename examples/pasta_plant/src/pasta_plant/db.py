"""The ``batches`` table as SQLAlchemy Core sees it (migrations ``pasta_0001`` and ``pasta_0002``)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()

batches = sa.Table(
    "batches", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("blade_type", sa.String(1), nullable=False),
    sa.Column("is_fresh", sa.Boolean, nullable=False),
    sa.Column("production_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("in_stock", sa.Integer, nullable=False),
    # the envelope id of the heartbeat the batch was made for (NULL: seed stock); unique with
    # is_fresh, so a redelivered heartbeat cannot make its two batches again
    sa.Column("heartbeat_id", sa.Text, nullable=True),
    sa.Index("ux_batches_heartbeat", "heartbeat_id", "is_fresh", unique=True),
)

SEED_DATE = datetime(2024, 1, 1, tzinfo=UTC)
#: (blade, fresh) categories in the order storage levels name them
CATEGORIES = (("A", True), ("A", False), ("B", True), ("B", False))
LEVEL_KEYS = {("A", True): "aFresh", ("A", False): "aDry", ("B", True): "bFresh", ("B", False): "bDry"}


def seed_rows(date: datetime = SEED_DATE) -> list[dict[str, object]]:
    return [{"blade_type": blade, "is_fresh": fresh, "production_date": date, "in_stock": 10}
            for blade, fresh in CATEGORIES for _ in range(5)]
