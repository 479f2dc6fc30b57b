"""The params of the oee_line components, declared once (``forge_core.Settings``)."""

from __future__ import annotations

from pydantic import Field

from forge_core import Settings

__all__ = ["GatewayParams", "HistorianParams", "OeeParams", "RetentionSettings", "ShiftSpec"]


class GatewayParams(Settings):
    """``oee_line.gateway``: OPC UA data changes -> Sparkplug metric updates of one edge node."""

    topics: list[str] = Field(default_factory=lambda: ["opcua/#"], description="bus topics of opcua.data_change")
    group: str = Field(..., min_length=1, description="Sparkplug group of the edge node")
    node: str = Field(..., min_length=1, description="Sparkplug edge node id")
    updates_topic: str = Field("sparkplug/update/{group}/{node}", description="the edge node's updates_topic")
    separators: str = Field("/.", description="a tag is <machine><separator><metric>: the first of these found "
                                              "splits it (browsed: M1/State, given: M1.State)")


class RetentionSettings(Settings):
    """Days each table keeps its rows (0: forever)."""

    telemetry_days: float = Field(7.0, ge=0)
    rollup_1m_days: float = Field(30.0, ge=0)
    rollup_5m_days: float = Field(90.0, ge=0)
    rollup_1h_days: float = Field(730.0, ge=0)
    events_days: float = Field(365.0, ge=0)


class HistorianParams(Settings):
    """``oee_line.historian``: sparkplug.metrics -> telemetry, events and rollups."""

    topics: list[str] = Field(default_factory=lambda: ["sparkplug/data/#"], description="bus topics of "
                                                                                        "sparkplug.metrics")
    state_metric: str = Field("State", description="the metric whose string value is the machine state")
    fault_metric: str = Field("FaultCode", description="the metric carried into a state event's payload")
    percentile_every: float = Field(10.0, gt=0, description="seconds between p50/p95 refreshes of touched buckets")
    retention_every: float = Field(3600.0, gt=0, description="seconds between retention sweeps")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


class ShiftSpec(Settings):
    name: str = Field(..., min_length=1)
    start: str = Field(..., pattern=r"^\d\d:\d\d$", description="HH:MM, UTC")
    hours: float = Field(8.0, gt=0, le=24)


class OeeParams(Settings):
    """``oee_line.oee``: OEE per machine, line and shift from the stored data, published as oee_line.oee."""

    line: str = Field("line1", min_length=1, description="the line's id in messages")
    machines: list[str] = Field(default_factory=list, description="machines of the line (empty: all stored)")
    interval: float = Field(60.0, gt=0, description="seconds between OEE publications")
    topic: str = Field("oee/{line}/{scope}/{id}", description="bus topic ({line}, {scope}: machine|line, {id})")
    shifts: list[ShiftSpec] = Field(default_factory=lambda: [
        ShiftSpec(name="early", start="06:00", hours=8), ShiftSpec(name="late", start="14:00", hours=8),
        ShiftSpec(name="night", start="22:00", hours=8)])
    ideal_cycle_time: float = Field(30.0, gt=0, description="seconds per part when no IdealCycleTime is stored")
    small_stop_threshold: float = Field(300.0, ge=0, description="a down/idle stop shorter than this is a small "
                                                                 "stop (performance), longer a breakdown")
    startup_window: float = Field(300.0, ge=0, description="bad parts this long after setup/down/restart are "
                                                           "startup rejects")
