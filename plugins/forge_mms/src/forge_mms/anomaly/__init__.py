"""Anomaly rules of ``mms.sensor_processor``: one module per rule type, the alert state machine, the
registry a plugin adds rule types to, and the per-sensor engine."""

from forge_mms.anomaly.alerts import ActiveAlert, AlertEvent, AlertTracker, alert_id
from forge_mms.anomaly.engine import RuleBook, SensorState
from forge_mms.anomaly.readings import SENSOR_ALERT, SENSOR_READING, MalformedReading, Reading, parse_reading
from forge_mms.anomaly.registry import RuleType, build_rule, register_rule_type, rule_types
from forge_mms.anomaly.verdicts import RANK, Rule, Severity, Verdict, Window, judge_levels

__all__ = ["RANK", "SENSOR_ALERT", "SENSOR_READING", "ActiveAlert", "AlertEvent", "AlertTracker",
           "MalformedReading", "Reading", "Rule", "RuleBook", "RuleType", "SensorState", "Severity", "Verdict",
           "Window", "alert_id", "build_rule", "judge_levels", "parse_reading", "register_rule_type", "rule_types"]
