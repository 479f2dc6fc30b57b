"""The hooks of the ``mms`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_mms.components.storage_monitor import StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert
from forge_mms.settings import STORAGE_MONITOR_PARAMS, THRESHOLD_ALERT_PARAMS

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("mms.storage_monitor", StorageMonitor, params_schema=STORAGE_MONITOR_PARAMS,
                 description="pasta storage monitor: alert when a stock level leaves 20..80 %")
    registry.add("mms.threshold_alert", ThresholdAlert, params_schema=THRESHOLD_ALERT_PARAMS,
                 description="sensor anomaly rule: alert when a reading leaves its band")
