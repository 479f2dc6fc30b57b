"""The hooks of the ``oee_line`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.storage import MigrationRegistry


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    registry.add("oee_line", Path(__file__).parent / "migrations")
