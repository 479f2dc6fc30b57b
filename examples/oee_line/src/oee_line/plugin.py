"""The hooks of the ``oee_line`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.dashboard import Panel
    from forge_core.plugin import ComponentRegistry, SchemaRegistry
    from forge_core.runtime import Runtime
    from forge_core.storage import MigrationRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("oee_line.gateway", "oee_line.components.gateway:Gateway",
                 description="edge gateway: opcua.data_change -> sparkplug.metric_update (machine = device)")
    registry.add("oee_line.historian", "oee_line.components.historian:Historian",
                 description="sparkplug.metrics -> telemetry, events, 1 min/5 min/1 h rollups, retention")
    registry.add("oee_line.oee", "oee_line.components.oee:OeeCalculator",
                 description="OEE per machine, line and shift (ISO 22400) from storage -> oee_line.oee")
    # the virtual-time profile (--simulate ... --profile chaos): docs/examples/oee_line.md, "Simulation"
    registry.add("oee_line.sim_plc", "oee_line.sim.plc:SimPlc",
                 description="simulated PLC machines on the plant clock -> opcua.data_change (virtual time)")
    registry.add("oee_line.sim_edge_node", "oee_line.sim.sparkplug:SimEdgeNode",
                 description="sparkplug.edge_node on a simulated broker")
    registry.add("oee_line.sim_host", "oee_line.sim.sparkplug:SimHost",
                 description="sparkplug.host on a simulated broker")
    registry.add("oee_line.chaos", "oee_line.sim.chaos:Chaos",
                 description="seeded broker outages, PLC restarts, edge network losses")
    registry.add("oee_line.audit", "oee_line.sim.audit:Audit",
                 description="the simulated run's invariants against the PLC's truth")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    registry.add("oee_line", Path(__file__).parent / "migrations")


@hookimpl
def forge_dashboard_panel(runtime: Runtime) -> Panel | None:
    """The current shift's OEE per machine and line on ``forge run --dashboard`` (docs/dashboard.md)."""
    from oee_line.dashboard import panel

    return panel(runtime)
