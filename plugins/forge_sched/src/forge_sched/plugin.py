"""The hooks of the ``sched`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_sched.components.blade_scheduler import BladeScheduler

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sched.blade_scheduler", BladeScheduler,
                 description="blade scheduler: discovery, balanced A/B, swap on failure and storage alerts, "
                             "active/shadow by leader election")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")
