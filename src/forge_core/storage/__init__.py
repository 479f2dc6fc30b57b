"""Storage: engines from URLs, per-plugin Alembic migrations, persisted dead letters, commit groups, Core statements
run on the driver's cursor."""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports

if TYPE_CHECKING:
    from forge_core.storage.commit_group import CommitGroup
    from forge_core.storage.dead_letters import SqlDeadLetterStore
    from forge_core.storage.driver_sql import DriverSql, DriverSqlError, DriverStatement, driver_cursor
    from forge_core.storage.engine import DEFAULT_DATABASE_URL, StorageError, create_engine_from_url, mask_url
    from forge_core.storage.migrations import MigrationInfo, MigrationRegistry, current, history, upgrade

# Imported on first use: the SQL backends and stores pull in SQLAlchemy/Alembic (docs/performance.md).
__getattr__, __dir__ = lazy_exports(__name__, {
    "CommitGroup": "forge_core.storage.commit_group:CommitGroup",
    "SqlDeadLetterStore": "forge_core.storage.dead_letters:SqlDeadLetterStore",
    "DriverSql": "forge_core.storage.driver_sql:DriverSql",
    "DriverSqlError": "forge_core.storage.driver_sql:DriverSqlError",
    "DriverStatement": "forge_core.storage.driver_sql:DriverStatement",
    "driver_cursor": "forge_core.storage.driver_sql:driver_cursor",
    "DEFAULT_DATABASE_URL": "forge_core.storage.engine:DEFAULT_DATABASE_URL",
    "StorageError": "forge_core.storage.engine:StorageError",
    "create_engine_from_url": "forge_core.storage.engine:create_engine_from_url",
    "mask_url": "forge_core.storage.engine:mask_url",
    "MigrationInfo": "forge_core.storage.migrations:MigrationInfo",
    "MigrationRegistry": "forge_core.storage.migrations:MigrationRegistry",
    "current": "forge_core.storage.migrations:current",
    "history": "forge_core.storage.migrations:history",
    "upgrade": "forge_core.storage.migrations:upgrade",
})

__all__ = [
    "DEFAULT_DATABASE_URL",
    "CommitGroup",
    "DriverSql",
    "DriverSqlError",
    "DriverStatement",
    "MigrationInfo",
    "MigrationRegistry",
    "SqlDeadLetterStore",
    "StorageError",
    "create_engine_from_url",
    "current",
    "driver_cursor",
    "history",
    "mask_url",
    "upgrade",
]
