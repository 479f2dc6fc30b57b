"""forge-mms: monitoring and maintenance components for Forge plants (storage monitor, threshold alerts,
factory monitor with failover and recovery reports, sensor processor with anomaly rules)."""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
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

#: Every message type forge_mms owns (its schemas are registered by the plugin). Names of the constants, resolved on first use:
_MESSAGE_TYPES_OF = (
    "STORAGE_LEVELS",
    "STORAGE_ALERT",
    "FACTORY_HEARTBEAT",
    "RISK_CHANGED",
    "FAILOVER_EVENT",
    "STATUS_REPORT",
    "SENSOR_READING",
    "SENSOR_ALERT",
)

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SENSOR_ALERT": "forge_mms.anomaly:SENSOR_ALERT",
        "SENSOR_READING": "forge_mms.anomaly:SENSOR_READING",
        "register_rule_type": "forge_mms.anomaly:register_rule_type",
        "RISK_CHANGED": "forge_mms.components.factory_monitor:RISK_CHANGED",
        "FactoryMonitor": "forge_mms.components.factory_monitor:FactoryMonitor",
        "SensorProcessor": "forge_mms.components.sensor_processor:SensorProcessor",
        "LEVELS": "forge_mms.components.storage_monitor:LEVELS",
        "STORAGE_ALERT": "forge_mms.components.storage_monitor:STORAGE_ALERT",
        "STORAGE_LEVELS": "forge_mms.components.storage_monitor:STORAGE_LEVELS",
        "StorageMonitor": "forge_mms.components.storage_monitor:StorageMonitor",
        "ThresholdAlert": "forge_mms.components.threshold_alert:ThresholdAlert",
        "resolve_pointer": "forge_mms.components.threshold_alert:resolve_pointer",
        "FAILOVER_EVENT": "forge_mms.maintenance.reports:FAILOVER_EVENT",
        "FACTORY_HEARTBEAT": "forge_mms.monitoring.beats:FACTORY_HEARTBEAT",
        "FactoryMonitorParams": "forge_mms.settings:FactoryMonitorParams",
        "RuleSettings": "forge_mms.settings:RuleSettings",
        "SensorProcessorParams": "forge_mms.settings:SensorProcessorParams",
        "StorageMonitorParams": "forge_mms.settings:StorageMonitorParams",
        "ThresholdAlertParams": "forge_mms.settings:ThresholdAlertParams",
        "Risk": "forge_mms.tactics.risk:Risk",
        "RiskAssessment": "forge_mms.tactics.risk:RiskAssessment",
        "RiskStrategy": "forge_mms.tactics.risk:RiskStrategy",
        "STATUS_REPORT": "forge_mms.tactics.status_reporter:STATUS_REPORT",
        "ReportResult": "forge_mms.tactics.status_reporter:ReportResult",
        "StatusReporter": "forge_mms.tactics.status_reporter:StatusReporter",
    },
    tuples={"MESSAGE_TYPES": _MESSAGE_TYPES_OF},
)


__version__ = "0.1.0"

__all__ = [
    "FACTORY_HEARTBEAT",
    "FAILOVER_EVENT",
    "LEVELS",
    "MESSAGE_TYPES",
    "RISK_CHANGED",
    "SENSOR_ALERT",
    "SENSOR_READING",
    "STATUS_REPORT",
    "STORAGE_ALERT",
    "STORAGE_LEVELS",
    "FactoryMonitor",
    "FactoryMonitorParams",
    "ReportResult",
    "Risk",
    "RiskAssessment",
    "RiskStrategy",
    "RuleSettings",
    "SensorProcessor",
    "SensorProcessorParams",
    "StatusReporter",
    "StorageMonitor",
    "StorageMonitorParams",
    "ThresholdAlert",
    "ThresholdAlertParams",
    "__version__",
    "register_rule_type",
    "resolve_pointer",
]
