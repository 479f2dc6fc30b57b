"""The hooks of the ``opcua`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("opcua.source", "forge_opcua.components.source:OpcUaSource",
                 description="OPC UA subscription -> opcua.data_change; reconnects, adaptive sampling")
    registry.add("opcua.plc_simulator", "forge_opcua.components.plc_simulator:PlcSimulator",
                 description="an OPC UA server of simulated machines (state, faults, counters) on the plant's clock")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")
