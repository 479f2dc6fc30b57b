"""Core's own tables, as SQLAlchemy Core objects: the dead letters and the fenced key-value
store that state tactics use. The migrations (``versions/``) are the source of truth for the
schema; these mirror them for queries."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["dead_letters_table", "kv_table"]

_metadata = sa.MetaData()

# Mirrors migration forge_core_0001; the migration is the source of truth for the schema.
dead_letters_table = sa.Table(
    "forge_dead_letters",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("transport", sa.String(128), nullable=False),
    sa.Column("topic", sa.String(512), nullable=False),
    sa.Column("component", sa.String(128)),
    sa.Column("message_type", sa.String(256)),
    sa.Column("errors", sa.Text, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

kv_table = sa.Table(
    "forge_kv",
    _metadata,
    sa.Column("namespace", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
