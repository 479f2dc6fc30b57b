"""Alembic migrations with one version folder per plugin.

Core and every plugin own a folder of Alembic revisions. Each folder is its own branch: the
first revision has ``down_revision = None`` and ``branch_labels = ("<name>",)``, where name
is the name registered here. :func:`upgrade` applies all branches to ``"heads"``, so plugins
never need to know about each other's revisions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from forge_core.errors import DuplicateRegistration

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, Engine

# SQLAlchemy and Alembic (0.3-0.6 s to import) load when a migration runs, not when a plugin
# registers its versions directory: every plugin imports MigrationRegistry via forge_core.plugin.

__all__ = [
    "CORE_MIGRATIONS",
    "CORE_VERSIONS_DIR",
    "SCRIPT_LOCATION",
    "VERSION_TABLE",
    "MigrationEntry",
    "MigrationInfo",
    "MigrationRegistry",
    "current",
    "history",
    "upgrade",
]

HOOK = "forge_register_migrations"
#: Shipped env.py and script template.
SCRIPT_LOCATION = Path(__file__).parent / "alembic"
#: Core's own revisions (branch label :data:`CORE_MIGRATIONS`).
CORE_VERSIONS_DIR = Path(__file__).parent / "versions"
CORE_MIGRATIONS = "forge_core"
#: PostgreSQL advisory lock key held while migrating ("Forge" in ASCII).
MIGRATION_LOCK = 0x466F726765
#: Forge's own version table, so a plant database can also hold an app's own Alembic history.
VERSION_TABLE = "forge_alembic_version"

EngineOrUrl: TypeAlias = "Engine | Connection | str"


@dataclass(frozen=True)
class MigrationEntry:
    name: str
    versions_dir: Path
    plugin: str | None


@dataclass(frozen=True)
class MigrationInfo:
    """One revision, as :func:`history` reports it."""

    revision: str
    down_revision: str | tuple[str, ...] | None
    branch: str | None  # the registered name whose folder holds it
    doc: str
    path: Path
    applied: bool | None  # None when history() was asked without a database


class MigrationRegistry:
    """Named version folders; core's is registered first unless ``include_core=False``."""

    def __init__(self, *, include_core: bool = True) -> None:
        self._entries: dict[str, MigrationEntry] = {}
        #: Set by the plugin manager while a plugin's ``forge_register_migrations`` runs.
        self.current_plugin: str | None = None
        if include_core:
            self.add(CORE_MIGRATIONS, CORE_VERSIONS_DIR, plugin="forge-core")

    def add(self, name: str, versions_dir: Path, *, plugin: str | None = None) -> None:
        """Register ``versions_dir`` under branch label ``name``; a name can be taken once."""
        plugin = plugin or self.current_plugin
        if name in self._entries:
            first = self._entries[name].plugin or "<unnamed>"
            raise DuplicateRegistration(
                f"migrations {name!r} are registered twice: by plugin {first!r} and by plugin "
                f"{plugin or '<unnamed>'!r}; each plugin must use its own name",
                plugin=plugin,
                hook=HOOK,
            )
        path = Path(versions_dir).resolve()
        if not path.is_dir():
            from forge_core.storage.engine import StorageError

            raise StorageError(f"migrations {name!r} (plugin {plugin!r}): versions dir {path} does not exist")
        self._entries[name] = MigrationEntry(name, path, plugin)

    def __iter__(self) -> Iterator[MigrationEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def config(self) -> Config:
        """An Alembic config over all registered folders (no ini file involved)."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", _ini(SCRIPT_LOCATION))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", os.pathsep.join(_ini(e.versions_dir) for e in self))
        return cfg

    def script_directory(self) -> ScriptDirectory:
        """The combined revisions, after checking each folder carries its own branch label."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self.config())
        self._check_branches(script)
        return script

    def _check_branches(self, script: ScriptDirectory) -> None:
        from forge_core.storage.engine import StorageError

        by_dir: dict[Path, list[str]] = {}
        labels: dict[Path, set[str]] = {}
        for rev in script.walk_revisions():
            folder = Path(rev.path).resolve().parent
            by_dir.setdefault(folder, []).append(rev.revision)
            if rev.down_revision is None:
                labels.setdefault(folder, set()).update(rev.branch_labels)
        for entry in self:
            if entry.versions_dir in by_dir and entry.name not in labels.get(entry.versions_dir, set()):
                raise StorageError(
                    f"migrations {entry.name!r} (plugin {entry.plugin!r}) in {entry.versions_dir}: the first "
                    f"revision must have down_revision = None and branch_labels = ({entry.name!r},)"
                )

    def branch_of(self, path: Path) -> str | None:
        folder = Path(path).resolve().parent
        for entry in self:
            if entry.versions_dir == folder:
                return entry.name
        return None


def _ini(path: Path) -> str:
    return str(path).replace("%", "%%")  # Config values pass through ConfigParser interpolation


@contextmanager
def _connection(target: EngineOrUrl, plant_dir: Path | None, *, write: bool) -> Iterator[Connection]:
    from sqlalchemy import Connection

    from forge_core.storage.engine import create_engine_from_url

    if isinstance(target, Connection):
        yield target
        return
    engine = create_engine_from_url(target, plant_dir=plant_dir) if isinstance(target, str) else target
    try:
        with engine.begin() if write else engine.connect() as conn:
            yield conn
    finally:
        if isinstance(target, str):
            engine.dispose()


def upgrade(
    engine_or_url: EngineOrUrl,
    registry: MigrationRegistry | None = None,
    target: str = "heads",
    *,
    plant_dir: Path | None = None,
) -> list[str]:
    """Apply migrations up to ``target`` (all branches by default) in one transaction.

    Running it again is a no-op. Returns the heads now in the database.
    """
    registry = registry if registry is not None else MigrationRegistry()
    import sqlalchemy as sa
    from alembic import command

    registry.script_directory()  # validate branch labels before touching the database
    cfg = registry.config()
    with _connection(engine_or_url, plant_dir, write=True) as conn:
        if conn.dialect.name == "postgresql":
            # Processes of one plant start together and all migrate: one at a time, the others
            # then find the work done (the lock ends with the transaction).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
        return sorted(_heads(conn))


def _heads(conn: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_heads()


def current(
    engine_or_url: EngineOrUrl,
    registry: MigrationRegistry | None = None,
    *,
    plant_dir: Path | None = None,
) -> dict[str, str | None]:
    """Applied head per registered name (``None``: that branch is not applied yet)."""
    registry = registry if registry is not None else MigrationRegistry()
    script = registry.script_directory()
    with _connection(engine_or_url, plant_dir, write=False) as conn:
        heads = _heads(conn)
    result: dict[str, str | None] = {entry.name: None for entry in registry}
    for head in heads:
        name = registry.branch_of(Path(script.get_revision(head).path))
        if name is not None:
            result[name] = head
    return result


def history(
    engine_or_url: EngineOrUrl | None = None,
    registry: MigrationRegistry | None = None,
    *,
    plant_dir: Path | None = None,
) -> list[MigrationInfo]:
    """Every registered revision, oldest first; with a database, whether each is applied."""
    registry = registry if registry is not None else MigrationRegistry()
    script = registry.script_directory()
    applied: set[str] | None = None
    if engine_or_url is not None:
        with _connection(engine_or_url, plant_dir, write=False) as conn:
            heads = _heads(conn)
        applied = set()
        for head in heads:
            applied.update(rev.revision for rev in script.iterate_revisions(head, "base"))
    infos = []
    for rev in reversed(list(script.walk_revisions())):
        down = rev.down_revision
        infos.append(
            MigrationInfo(
                revision=rev.revision,
                down_revision=tuple(down) if isinstance(down, list | tuple) else down,
                branch=registry.branch_of(Path(rev.path)),
                doc=rev.doc or "",
                path=Path(rev.path),
                applied=None if applied is None else rev.revision in applied,
            )
        )
    return infos
