"""The params of the forge_mms components, declared once (``forge_core.Settings``).

Each model gives the manifest's JSON Schema (``forge validate``), the defaults (``self.params``
is an instance, defaults filled) and the docs table (``settings_table(StorageMonitorParams)``).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from forge_core import Settings
from pydantic import Field, model_validator

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
    check_every: float = Field(1.0, gt=0, description="seconds between two checks for silent factories (and risk); "
                                                      "DOWN comes within max_gap + check_every of the last beat")
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
                                                       "HIGH and another factory is UP below HIGH risk")
    resend_after: float = Field(5.0, gt=0, description="after a report failed (retries spent) or was rejected, try "
                                                       "again this many seconds later while the status still differs")
    retention: float = Field(86_400.0, gt=0, description="raw beats older than this many seconds are deleted")
    prune_every: float = Field(60.0, gt=0, description="seconds between two deletions of expired beats")
    flush_every: float = Field(1.0, gt=0, description="beats are written in one transaction this often, seconds")
    batch_size: int = Field(1000, ge=1, description="…or as soon as this many beats wait")
    record_beats: bool = Field(True, description="write every beat to the heartbeats table")
    handover_keep: float = Field(30.0, gt=0, description="seconds of beats a replica that does not lead keeps "
                                                         "unwritten, so it writes the beats of a handover when it "
                                                         "takes over (longer than the lease's ttl + retry)")
    status_topic: str = Field("forge/status/{factory}", description="where forge.status changes go")
    risk_topic: str = Field("mms/risk/{factory}", description="where mms.risk_changed goes")
    failover_topic: str = Field("mms/failover/{factory}", description="where mms.failover_event goes")


class StatusReporterSettings(Settings):
    """``tactics.status_reporter``: the kind has no shared keys; ``use:`` picks ``bus`` (forge_mms) or ``grpc``
    (forge_sched), each with its own settings."""


class BusStatusReporterSettings(Settings):
    """``tactics.status_reporter`` with ``use: bus``."""

    timeout: float = Field(5.0, gt=0, description="seconds to wait for sched.status_report_result")
    request_topic: str = Field("mms/status_report", description="where mms.status_report goes")
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
