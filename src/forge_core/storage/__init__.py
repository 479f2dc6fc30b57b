"""Storage: engines from URLs, per-plugin Alembic migrations, persisted dead letters."""

from forge_core.storage.dead_letters import SqlDeadLetterStore
from forge_core.storage.engine import DEFAULT_DATABASE_URL, StorageError, create_engine_from_url, mask_url
from forge_core.storage.migrations import MigrationInfo, MigrationRegistry, current, history, upgrade

__all__ = [
    "DEFAULT_DATABASE_URL",
    "MigrationInfo",
    "MigrationRegistry",
    "SqlDeadLetterStore",
    "StorageError",
    "create_engine_from_url",
    "current",
    "history",
    "mask_url",
    "upgrade",
]
