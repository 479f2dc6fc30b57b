"""The params of the forge_mms components, declared once (``forge_core.Settings``).

Each model gives the manifest's JSON Schema (``forge validate``), the defaults (``self.params``
is an instance, defaults filled) and the docs table (``settings_table(StorageMonitorParams)``).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from forge_core import Settings
from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, model_validator
from pydantic_core import CoreSchema, core_schema

_POINTER = "^(/.*)?$"


class StorageMonitorParams(Settings):
    """Params of ``mms.storage_monitor``."""

    interval: float = Field(10.0, gt=0, description="seconds between two evaluations of the stock levels")
    low: float = Field(20.0, ge=0, le=100, description="a level below this percent is out of band")
    high: float = Field(80.0, ge=0, le=100, description="a level above this percent is out of band")
    min_change: float = Field(1.0, ge=0,
                              description="another alert only when some level moved more than this (points) since "
                                          "the last alert")
    source: Literal["messages", "database"] = Field(
        "messages", description="levels from mms.storage_levels messages, or summed from the batches table")
    capacity: float = Field(100.0, gt=0, description="stock of one category that is 100 % (database source)")
    table: str = Field("batches", pattern="^[A-Za-z_][A-Za-z0-9_]*$",
                       description="the batches table (database source)")
    levels_topic: str = Field("storage/levels", description="where mms.storage_levels arrive (messages source)")
    alert_topic: str = Field("storage/alert", description="where alerts go")
    alert_type: str = Field("mms.storage_alert", min_length=1,
                            description="message type of the alert: mms.storage_alert, or the type its consumer "
                                        "owns for the same body (sched.storage_alert for sched.blade_scheduler)")

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


DEFAULT_ALERT_PAYLOAD: dict[str, Any] = {
    "source": "{source}", "field": "{field}", "value": "{value}", "low": "{low}", "high": "{high}",
    "direction": "{direction}", "at": "{time}"}


class ThresholdAlertParams(Settings):
    """Params of ``mms.threshold_alert``."""

    topics: list[str] = Field(min_length=1, description="where readings arrive (MQTT-style patterns)")
    types: list[str] | None = Field(None, description="message types that are readings (default: any on those "
                                                      "topics)")
    field: str = Field(pattern=_POINTER,
                       description="JSON pointer (RFC 6901) of the reading in the payload, e.g. /temperature")
    source_field: str | None = Field(None, pattern=_POINTER,
                                     description="JSON pointer of the sensor id in the payload (default: the "
                                                 "envelope's source)")
    low: float | None = Field(None, description="below this is out of band")
    high: float | None = Field(None, description="above this is out of band")
    alert_type: str = Field(min_length=1, description="message type of the alert; its schema belongs to the plant")
    alert_topic: str = Field(min_length=1, description="where alerts go; {source} is replaced by the sensor id")
    min_interval: float = Field(10.0, ge=0,
                                description="at least this many seconds between two alerts of one sensor")
    repeat_every: float | None = Field(None, gt=0,
                                       description="while a sensor stays out of band, alert again this often "
                                                   "(null: once)")
    payload: dict[str, Any] = Field(DEFAULT_ALERT_PAYLOAD,
                                    description="the alert payload; a string that is exactly one {placeholder} "
                                                "becomes its typed value (source, field, value, low, high, "
                                                "direction, time, topic, type), others are formatted")

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.low is None and self.high is None:
            raise ValueError("needs low, high or both (a band to leave)")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class FactoryMonitorParams(Settings):
    """Params of ``mms.factory_monitor``. The beat interval, the DEGRADED gap, the error-rate window and
    threshold and the healthy beats before recovery are the core ``tactics.heartbeat`` settings
    (``interval``, ``degraded_after``, ``error_window``, ``error_rate_threshold``, ``recover_after``)."""

    topics: list[str] = Field(["factory/+/heartbeat"], min_length=1,
                              description="where beats arrive (MQTT-style patterns)")
    types: list[str] | None = Field(["mms.factory_heartbeat"],
                                    description="message types that are beats (null: any on those topics)")
    factory_level: int | None = Field(1, ge=0,
                                      description="topic level (0-based) naming the factory when a beat has no "
                                                  "factoryId and no key (null: such a beat is dead-lettered)")
    check_every: float = Field(1.0, gt=0, description="seconds between two checks of risk, drain and pending reports; "
                                                      "the leader also wakes when a silence verdict falls due, so DOWN "
                                                      "comes just past the timeout after the last beat")
    shadow_check_every: float | None = Field(
        None, gt=0, description="seconds between two checks of a replica that does not lead (null: check_every); it "
                                "judges silence at these checks only and checks at once when it takes over. Its "
                                "own verdicts, reported by no one, may come up to this much later "
                                "(docs/plugins/mms.md)")
    max_gap: float = Field(3.0, gt=0, description="DOWN once the last beat is older than this, seconds")
    missed_beats: int = Field(3, ge=1, description="DOWN once this many consecutive beats are missed (a beat is "
                                                   "missed once its due time, last beat + k x interval, has passed)")
    errors: Literal["cumulative", "per_beat"] = Field(
        "cumulative", description="metrics.errors is a rising counter (a beat failed if it rose) or a count per beat "
                                  "(a beat failed if it is above 0)")
    lease: str = Field("mms", min_length=1, description="the lease the replicas elect their leader on; only the "
                                                        "leader reports, publishes and records")
    risk_hold: float = Field(30.0, ge=0, description="a risk is lowered only once the strategy has assessed it lower "
                                                    "for this many seconds (no drain/undrain flapping at a threshold)")
    drain_on_high_risk: bool = Field(True, description="report an UP factory DEGRADED ('risk HIGH') when its risk is "
                                                       "HIGH and the PMS reports free capacity on another factory UP "
                                                       "below HIGH risk (the query failed: another factory UP below "
                                                       "HIGH risk)")
    capacity_timeout: float = Field(2.0, gt=0, description="seconds the capacity query (the status_reporter's "
                                                           "capacity(): on DOWN, before a risk drain) may take; "
                                                           "the DOWN report never waits for it")
    capacity_max_age: float = Field(10.0, gt=0, description="a capacity answer (or failure) decides risk drains for "
                                                           "this many seconds; then the next drain asks again")
    resend_after: float = Field(5.0, gt=0, description="after a report failed (retries spent) or was rejected, try "
                                                       "again this many seconds later while the status still differs")
    retention: float = Field(86_400.0, gt=0, description="raw beats older than this many seconds are deleted")
    prune_every: float = Field(60.0, gt=0, description="seconds between two deletions of expired beats")
    flush_every: float = Field(1.0, gt=0, description="beats are written in one transaction this often, seconds")
    simulated_flush_every: float | None = Field(
        10.0, gt=0, description="under a virtual clock (a simulated run) beats are written this often instead, "
                                "seconds: no power cut falls inside virtual time, and a killed leader's unwritten "
                                "beats are written by its successor (within handover_keep); null: flush_every")
    batch_size: int = Field(1000, ge=1, description="…or as soon as this many beats wait")
    record_beats: bool = Field(True, description="write every beat to the heartbeats table")
    handover_keep: float = Field(30.0, gt=0, description="seconds of beats a replica that does not lead keeps "
                                                         "unwritten, so it writes the beats of a handover when it "
                                                         "takes over (longer than the lease's ttl + retry)")
    status_topic: str = Field("forge/status/{factory}", description="where forge.status changes go")
    risk_topic: str = Field("mms/risk/{factory}", description="where mms.risk_changed goes")
    failover_topic: str = Field("mms/failover/{factory}", description="where mms.failover_event goes")

    @model_validator(mode="after")
    def _flush_within_handover(self) -> Self:
        # a follower must still hold every beat its killed leader had not written when it takes over
        if self.simulated_flush_every is not None and self.simulated_flush_every >= self.handover_keep:
            raise ValueError(f"simulated_flush_every ({self.simulated_flush_every}) must be below handover_keep "
                             f"({self.handover_keep}): a successor writes the beats its killed leader held unwritten")
        return self


class StatusReporterSettings(Settings):
    """``tactics.status_reporter``: the kind has no shared keys; ``use:`` picks ``bus`` (forge_mms) or ``grpc``
    (forge_sched), each with its own settings."""


class BusStatusReporterSettings(Settings):
    """``tactics.status_reporter`` with ``use: bus``."""

    timeout: float = Field(5.0, gt=0, description="seconds to wait for sched.status_report_result (or "
                                                  "sched.factory_capacity)")
    request_topic: str = Field("mms/status_report", description="where mms.status_report and mms.capacity_query go")
    reply_topic: str = Field("sched/status_report_result", description="where the answers arrive")


class RiskSettings(Settings):
    """``tactics.risk``: what every risk strategy shares."""

    window: float = Field(300.0, gt=0, description="the strategy sees the beats of this many seconds")


class RiskRulesSettings(Settings):
    """``tactics.risk`` with ``use: rules`` (the default strategy)."""

    high_error_rate: float = Field(0.1, ge=0, lt=1, description="an error rate over the window above this is HIGH")
    latency: Literal["auto", "reported", "transit", "inter_arrival"] = Field(
        "auto", description="the latency signal: latencyMs (reported), arrival - timestamp (transit), gap to the "
                            "previous beat (inter_arrival); auto: latencyMs when the beat has it, else transit")
    latency_slope: float = Field(1.0, gt=0, description="a least-squares slope of the latency signal above this, ms "
                                                        "per second, is MEDIUM")
    min_samples: int = Field(30, ge=3, description="no latency verdict over fewer beats than this")


# -- mms.sensor_processor and its anomaly rules ---------------------------------------------------
Severity = Literal["warning", "critical"]
_RULE_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class RuleSettings(Settings):
    """What every anomaly rule of ``mms.sensor_processor`` has (``rules:`` items). A rule type is a subclass
    with ``type: Literal["<name>"]``, registered with :func:`forge_mms.anomaly.register_rule_type`."""

    name: str = Field(pattern=_RULE_NAME, description="the rule's name, unique in the list; alerts carry it and "
                                                      "their id is <sensor_id>:<name>:<seq>")
    type: str = Field(description="the rule type: threshold, rms, baseline, stuck, rate_of_change, or one a plugin "
                                  "registered")
    kind: str | None = Field(description="the sensor kind it judges (temperature, vibration, energy, ...); null: "
                                         "every kind")
    sensors: list[str] | None = Field(None, min_length=1, description="only sensors whose id matches one of these "
                                                                      "shell patterns (temp-*); null: all of the kind")
    clear_after: int = Field(3, ge=1, le=10_000, description="an alert clears (or drops to warning) after this many "
                                                            "readings in a row back past the clearing level")
    hysteresis: float = Field(0.0, ge=0, description="the clearing level is this much inside the raising level, in "
                                                     "the units of what the rule measures")


class ThresholdRuleSettings(RuleSettings):
    """``type: threshold``: the reading itself against a warning and a critical level."""

    type: Literal["threshold"] = Field(description="the rule type")
    warning: float | None = Field(None, description="past this the alert is a warning")
    critical: float | None = Field(None, description="past this the alert is critical")
    direction: Literal["above", "below"] = Field("above", description="above: a value greater than a level crosses "
                                                                      "it; below: a smaller one")

    @model_validator(mode="after")
    def _levels(self) -> Self:
        if self.warning is None and self.critical is None:
            raise ValueError("needs warning, critical or both")
        if self.warning is not None and self.critical is not None:
            if self.direction == "above" and self.warning >= self.critical:
                raise ValueError(f"warning ({self.warning}) must be below critical ({self.critical}) for direction "
                                 f"above")
            if self.direction == "below" and self.warning <= self.critical:
                raise ValueError(f"warning ({self.warning}) must be above critical ({self.critical}) for direction "
                                 f"below")
        return self


class RmsRuleSettings(RuleSettings):
    """``type: rms``: the root mean square of the last ``window`` readings above ``limit`` (vibration)."""

    type: Literal["rms"] = Field(description="the rule type")
    window: int = Field(10, ge=2, le=10_000, description="readings in the window (no verdict until it is full)")
    limit: float = Field(gt=0, description="an RMS above this raises the alert")
    severity: Severity = Field("warning", description="the alert's severity")


class BaselineRuleSettings(RuleSettings):
    """``type: baseline``: an EWMA z-score. The baseline is an exponentially weighted moving average of the
    readings and of their variance (weight ``alpha``); a reading's z = (value - mean) / std, both taken before
    the reading is learned. A reading beyond ``z_limit`` is not learned (an anomaly does not shift the baseline)."""

    type: Literal["baseline"] = Field(description="the rule type")
    alpha: float = Field(0.05, gt=0, le=1, description="weight of a new reading in the mean and the variance "
                                                       "(memory ~ 1/alpha readings)")
    z_limit: float = Field(4.0, gt=0, description="|z| (or z, -z with direction) above this raises the alert")
    warmup: int = Field(30, ge=2, description="readings learned before the first verdict")
    min_std: float = Field(1e-6, gt=0, description="floor of the standard deviation, in the reading's unit (a flat "
                                                   "signal does not make every change infinite)")
    direction: Literal["both", "above", "below"] = Field("both", description="which side of the baseline counts")
    relearn_after: int | None = Field(None, ge=1, description="after this many readings in a row beyond z_limit the "
                                                              "baseline starts again from the reading (a lasting "
                                                              "new level); null: never")
    severity: Severity = Field("warning", description="the alert's severity")


class StuckRuleSettings(RuleSettings):
    """``type: stuck``: the last ``window`` readings all within ``epsilon`` of each other (max - min)."""

    type: Literal["stuck"] = Field(description="the rule type")
    window: int = Field(10, ge=2, le=10_000, description="readings in a row that must (nearly) agree")
    epsilon: float = Field(0.0, ge=0, description="largest max - min over the window that is still stuck (0: "
                                                  "identical values)")
    severity: Severity = Field("warning", description="the alert's severity")


class RateOfChangeRuleSettings(RuleSettings):
    """``type: rate_of_change``: |value - earlier value| / (time - earlier time) above ``limit`` per second, the
    earlier reading being the newest one at least ``min_dt`` seconds older."""

    type: Literal["rate_of_change"] = Field(description="the rule type")
    limit: float = Field(gt=0, description="units per second; a faster change raises the alert")
    min_dt: float = Field(0.0, ge=0, le=3600, description="the change is taken against the newest reading at "
                                                          "least this many seconds older (0: the previous one); "
                                                          "at high rates, so noise over milliseconds is no rate")
    direction: Literal["both", "rising", "falling"] = Field("both", description="which changes count")
    severity: Severity = Field("warning", description="the alert's severity")


#: Rule types known to the processor's params: name -> settings model. Built-ins here; a plugin adds
#: its own with :func:`forge_mms.anomaly.register_rule_type`, which also rebuilds the params model.
RULE_SETTINGS: dict[str, type[RuleSettings]] = {
    "threshold": ThresholdRuleSettings, "rms": RmsRuleSettings, "baseline": BaselineRuleSettings,
    "stuck": StuckRuleSettings, "rate_of_change": RateOfChangeRuleSettings}


class AnyRule:
    """A ``rules:`` item: validated by the model of its ``type`` (a discriminated union over RULE_SETTINGS,
    read when the params model is built or rebuilt)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        choices = {name: handler.generate_schema(model) for name, model in sorted(RULE_SETTINGS.items())}
        return core_schema.tagged_union_schema(
            choices, discriminator="type", custom_error_type="rule_type",
            custom_error_message=f"unknown or missing rule type; known: {', '.join(sorted(RULE_SETTINGS))}")

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        # if/then per type rather than oneOf: a typo in a key is reported against its own rule type
        return {"type": "object", "required": ["type"],
                "properties": {"type": {"enum": sorted(RULE_SETTINGS), "description": "the rule type"}},
                "allOf": [{"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                           "then": model.json_schema()} for name, model in sorted(RULE_SETTINGS.items())],
                "description": "an anomaly rule; its keys are those of its type"}


DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "temperature", "type": "threshold", "kind": "temperature", "warning": 80.0, "critical": 100.0,
     "hysteresis": 2.0},
    {"name": "temperature_rate", "type": "rate_of_change", "kind": "temperature", "limit": 10.0, "min_dt": 0.5},
    {"name": "vibration_rms", "type": "rms", "kind": "vibration", "window": 10, "limit": 7.1, "severity": "critical"},
    {"name": "energy_baseline", "type": "baseline", "kind": "energy", "alpha": 0.05, "z_limit": 4.0},
    {"name": "stuck", "type": "stuck", "kind": None, "window": 10, "epsilon": 0.0},
]

DEFAULT_KINDS: dict[str, str] = {"temperature": "C", "vibration": "mm/s", "energy": "kW"}


class SensorProcessorParams(Settings):
    """Params of ``mms.sensor_processor``."""

    topic: str = Field("sensor-data", min_length=1, description="where mms.sensor_reading arrive (a pattern: "
                                                               "sensors/+/reading on MQTT)")
    alert_topic: str = Field("alerts", min_length=1, description="where mms.sensor_alert go (keyed by sensor id)")
    group: str = Field("sensor-processors", min_length=1, description="the consumer group the processors share "
                                                                      "the readings in")
    rules: list[AnyRule] = Field(default_factory=lambda: list(DEFAULT_RULES),  # type: ignore[arg-type]
                                 description="the anomaly rules (see the rule types below)")
    kinds: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_KINDS), min_length=1,
                                  description="sensor kind -> its unit; a reading of another kind or unit is "
                                              "dead-lettered")
    batch_max: int = Field(500, ge=1, le=10_000, description="most readings judged and written per transaction (a "
                                                             "bigger batch from the transport is split)")
    store: bool = Field(True, description="write readings, alerts, sensors and rollups to the database")
    warm_readings: int = Field(1000, ge=1, description="most readings of a sensor read back to warm its rules after "
                                                       "a (re)assignment (each rule reads what its window needs)")
    db_retry_deadline: float | None = Field(
        None, gt=0, description="seconds a batch retries a failing database (backoff of tactics.retry) before it is "
                                "handed back to the transport (Redeliver); null: until the database answers")
    virtual_commit_readings: int = Field(
        500, ge=1, description="under a virtual clock only: readings per transaction, committed before any other "
                               "connection of the engine is checked out, at stop and at a kill (1: a transaction "
                               "per batch, as in real time)")
    status_every: float | None = Field(
        5.0, gt=0, description="seconds between the consumer_status rows in system_events (the group's lag per "
                               "partition, held partitions, batch time p50/max, readings of the interval); null: "
                               "none")

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [rule.name for rule in self.rules]  # type: ignore[attr-defined]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"rule names must be unique: {', '.join(doubles)} more than once")
        return self
