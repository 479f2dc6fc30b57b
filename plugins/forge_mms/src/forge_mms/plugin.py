"""The hooks of the ``mms`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry, TacticRegistry
    from forge_core.storage import MigrationRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("mms.storage_monitor", "forge_mms.components.storage_monitor:StorageMonitor",
                 description="storage monitor: alert when a stock level leaves its band (20..80 %)")
    registry.add("mms.threshold_alert", "forge_mms.components.threshold_alert:ThresholdAlert",
                 description="sensor anomaly rule: alert when a reading leaves its band")
    registry.add("mms.factory_monitor", "forge_mms.components.factory_monitor:FactoryMonitor",
                 description="factory heartbeats -> UP/DEGRADED/DOWN and risk; the leader reports to the PMS")
    registry.add("mms.sensor_processor", "forge_mms.components.sensor_processor:SensorProcessor",
                 description="sensor readings -> anomaly rules -> alerts; readings, alerts, sensors, rollups stored once")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")


@hookimpl
def forge_register_tactics(registry: TacticRegistry) -> None:
    registry.add_kind("status_reporter", settings="forge_mms.settings:StatusReporterSettings", default_use="bus",
                      description="how the MMS reports a factory's status to the PMS")
    registry.add("status_reporter.bus", "forge_mms.tactics.status_reporter:make_bus_reporter",
                 settings="forge_mms.settings:BusStatusReporterSettings",
                 description="mms.status_report on the bus, answered by sched.status_report_result")
    registry.add_kind("risk", settings="forge_mms.settings:RiskSettings", default_use="rules",
                      description="a factory's failure risk from its recent beats")
    registry.add("risk.rules", "forge_mms.tactics.risk:make_rules", settings="forge_mms.settings:RiskRulesSettings",
                 description="HIGH on error rate, MEDIUM on a rising latency, else LOW")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    registry.add("mms", Path(__file__).parent / "migrations")
