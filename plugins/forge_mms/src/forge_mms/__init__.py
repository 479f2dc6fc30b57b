"""forge-mms: monitoring and maintenance components for Forge plants (storage monitor, threshold alerts)."""

from forge_mms.components.storage_monitor import LEVELS, STORAGE_ALERT, STORAGE_LEVELS, StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert, resolve_pointer
from forge_mms.settings import StorageMonitorParams, ThresholdAlertParams

__version__ = "0.1.0"

#: Every message type forge_mms owns (its schemas are registered by the plugin).
MESSAGE_TYPES = (STORAGE_LEVELS, STORAGE_ALERT)

__all__ = ["LEVELS", "MESSAGE_TYPES", "STORAGE_ALERT", "STORAGE_LEVELS", "StorageMonitor", "StorageMonitorParams",
           "ThresholdAlert", "ThresholdAlertParams", "__version__", "resolve_pointer"]
