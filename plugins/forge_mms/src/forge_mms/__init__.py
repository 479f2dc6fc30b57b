"""forge-mms: monitoring and maintenance components for Forge plants (storage monitor, threshold alerts)."""

from forge_mms.components.storage_monitor import LEVELS, StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert, resolve_pointer
from forge_mms.settings import STORAGE_MONITOR_PARAMS, THRESHOLD_ALERT_PARAMS

__version__ = "0.1.0"

__all__ = ["LEVELS", "STORAGE_MONITOR_PARAMS", "THRESHOLD_ALERT_PARAMS", "StorageMonitor", "ThresholdAlert",
           "__version__", "resolve_pointer"]
