"""forge-mms: monitoring and maintenance components for Forge plants (storage monitor, threshold alerts,
factory monitor with failover and recovery reports, sensor processor with anomaly rules)."""

from forge_mms.anomaly import SENSOR_ALERT, SENSOR_READING, register_rule_type
from forge_mms.components.factory_monitor import RISK_CHANGED, FactoryMonitor
from forge_mms.components.sensor_processor import SensorProcessor
from forge_mms.components.storage_monitor import LEVELS, STORAGE_ALERT, STORAGE_LEVELS, StorageMonitor
from forge_mms.components.threshold_alert import ThresholdAlert, resolve_pointer
from forge_mms.maintenance.reports import FAILOVER_EVENT
from forge_mms.monitoring.beats import FACTORY_HEARTBEAT
from forge_mms.settings import (
    FactoryMonitorParams,
    RuleSettings,
    SensorProcessorParams,
    StorageMonitorParams,
    ThresholdAlertParams,
)
from forge_mms.tactics.risk import Risk, RiskAssessment, RiskStrategy
from forge_mms.tactics.status_reporter import STATUS_REPORT, ReportResult, StatusReporter

__version__ = "0.1.0"

#: Every message type forge_mms owns (its schemas are registered by the plugin).
MESSAGE_TYPES = (STORAGE_LEVELS, STORAGE_ALERT, FACTORY_HEARTBEAT, RISK_CHANGED, FAILOVER_EVENT, STATUS_REPORT,
                 SENSOR_READING, SENSOR_ALERT)

__all__ = ["FACTORY_HEARTBEAT", "FAILOVER_EVENT", "LEVELS", "MESSAGE_TYPES", "RISK_CHANGED", "SENSOR_ALERT",
           "SENSOR_READING", "STATUS_REPORT", "STORAGE_ALERT", "STORAGE_LEVELS", "FactoryMonitor",
           "FactoryMonitorParams", "ReportResult", "Risk", "RiskAssessment", "RiskStrategy", "RuleSettings",
           "SensorProcessor", "SensorProcessorParams", "StatusReporter", "StorageMonitor", "StorageMonitorParams",
           "ThresholdAlert", "ThresholdAlertParams", "__version__", "register_rule_type", "resolve_pointer"]
