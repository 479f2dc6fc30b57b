"""The hooks of the ``sparkplug`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sparkplug.edge_node", "forge_sparkplug.components.edge_node:EdgeNode",
                 description="Sparkplug B edge node: births, seq, rebirth, report by exception, store-and-forward")
    registry.add("sparkplug.host", "forge_sparkplug.components.host:Host",
                 description="Sparkplug B host application: STATE, seq gaps -> rebirth, primary failover with fencing")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")
