"""The plant's storage engine: created from ``storage`` in the manifest, on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.manifest import Manifest
    from forge_core.plugins import Plugins


def open_engine(manifest: Manifest, plugins: Plugins, *, virtual: bool) -> Engine:
    """The engine of ``manifest.storage`` (its pool and statement settings applied), migrated to head
    when ``storage.migrate_on_start`` asks; under a virtual clock (``virtual``) SQLite commits without
    fsync (:func:`forge_core.storage.engine.commit_without_fsync`)."""
    from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
    from forge_core.storage.engine import commit_without_fsync

    engine = create_engine_from_url(manifest.storage.url, plant_dir=manifest.plant_dir,
                                    **manifest.storage.engine_kwargs())
    if virtual and engine.dialect.name == "sqlite":
        commit_without_fsync(engine)
    if manifest.storage.migrate_on_start:
        upgrade(engine, plugins.collect_migrations(MigrationRegistry(include_core=False)))
    return engine
