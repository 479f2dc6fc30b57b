"""The components of forge_mms, one module each."""

from forge_mms.components.sensor_processor import SensorProcessor
from forge_mms.components.storage_monitor import StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert

__all__ = ["SensorProcessor", "StorageMonitor", "ThresholdAlert"]
