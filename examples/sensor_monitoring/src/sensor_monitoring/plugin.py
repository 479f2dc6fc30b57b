"""The hooks of the ``sensor_monitoring`` plugin (entry point ``sensor_monitoring = "sensor_monitoring.plugin"``).

The command schema belongs to the plant (``schemas: [schemas]`` in plant.yaml); the readings and
alerts are forge-mms's types. The processors are forge-mms's ``mms.sensor_processor``: this package
adds the simulated sensors and the whole-plant checks (:mod:`sensor_monitoring.audit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core import Check
    from forge_core.dashboard import Panel
    from forge_core.plugin import ComponentRegistry, DrillRegistry
    from forge_core.runtime import RunSummary, Runtime


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sensor_monitoring.sensors", "sensor_monitoring.components.sensors:Sensors",
                 description="simulated temperature, vibration and energy sensors with injectable anomalies")
    registry.add("sensor_monitoring.monitor", "sensor_monitoring.components.monitor:Monitor",
                 description="live view: readings produced and stored per second, processing time, active alerts, "
                             "partition assignments and rebalances")


@hookimpl
def forge_plant_started(runtime: Runtime) -> None:
    """Remember the runtime: a one-process run's checks read its storage."""
    from sensor_monitoring.audit import remember

    remember(runtime)


@hookimpl
def forge_plant_checks(summary: RunSummary) -> list[Check]:
    """Readings stored == produced, anomalies alerted, no alert without one, alerts cleared."""
    from sensor_monitoring.audit import last_runtime, plant_checks

    return plant_checks(summary, last_runtime())


@hookimpl
def forge_register_drills(registry: DrillRegistry) -> None:
    """The failure drills on a three-broker Kafka cluster (``forge drill examples/sensor_monitoring --list``)."""
    from sensor_monitoring.drills import scenarios

    for scenario in scenarios():
        registry.add(scenario)


@hookimpl
def forge_dashboard_panel(runtime: Runtime) -> Panel | None:
    """Produced/stored readings, alerts, processors and lag on ``forge run --dashboard`` (docs/dashboard.md)."""
    from sensor_monitoring.dashboard import panel

    return panel(runtime)
