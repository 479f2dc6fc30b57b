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
