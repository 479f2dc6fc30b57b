"""The hooks of the ``mms`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_mms.components.storage_monitor import StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("mms.storage_monitor", StorageMonitor,
                 description="storage monitor: alert when a stock level leaves its band (20..80 %)")
    registry.add("mms.threshold_alert", ThresholdAlert,
                 description="sensor anomaly rule: alert when a reading leaves its band")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")
