"""The hooks of the ``sensor_monitoring`` plugin (entry point ``sensor_monitoring = "sensor_monitoring.plugin"``).

The command schema belongs to the plant (``schemas: [schemas]`` in plant.yaml); the readings and
alerts are forge-mms's types. The processors are forge-mms's ``mms.sensor_processor``: this package
adds the simulated sensors and the whole-plant checks (:mod:`sensor_monitoring.audit`).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from forge_core import hookimpl
from sensor_monitoring.components.sensors import Sensors

if TYPE_CHECKING:
    from forge_core import Check
    from forge_core.plugin import ComponentRegistry, DrillRegistry
    from forge_core.runtime import RunSummary, Runtime

#: The runtime of the last one-process run that started here: its storage is what the checks read.
_last_runtime: weakref.ref[Runtime] | None = None


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sensor_monitoring.sensors", Sensors,
                 description="simulated temperature, vibration and energy sensors with injectable anomalies")


@hookimpl
def forge_plant_started(runtime: Runtime) -> None:
    global _last_runtime
    _last_runtime = weakref.ref(runtime)


@hookimpl
def forge_plant_checks(summary: RunSummary) -> list[Check]:
    """Readings stored == produced, anomalies alerted, no alert without one, alerts cleared."""
    from sensor_monitoring.audit import plant_checks

    runtime = _last_runtime() if _last_runtime is not None else None
    return plant_checks(summary, runtime)


@hookimpl
def forge_register_drills(registry: DrillRegistry) -> None:
    """The failure drills on a three-broker Kafka cluster (``forge drill examples/sensor_monitoring --list``)."""
    from sensor_monitoring.drills import scenarios

    for scenario in scenarios():
        registry.add(scenario)
