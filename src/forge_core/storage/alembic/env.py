"""Alembic environment for Forge: online only, on the connection handed in by
:mod:`forge_core.storage.migrations` through ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from forge_core.storage.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Forge migrations run online only, through forge_core.storage.migrations.upgrade() "
        "or `forge db upgrade`, which pass the connection in config.attributes['connection']"
    )

context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; batch mode recreates tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)

with context.begin_transaction():
    context.run_migrations()
