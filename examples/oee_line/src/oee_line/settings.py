"""The params of the oee_line components, declared once (``forge_core.Settings``)."""

from __future__ import annotations

from typing import Literal

from forge_opcua.settings import MachineTiming
from pydantic import Field

from forge_core import Settings

__all__ = ["AuditParams", "ChaosParams", "GatewayParams", "HistorianParams", "OeeParams", "RetentionSettings",
           "ShiftSpec", "SimPlcParams", "SimSparkplugParams"]


class GatewayParams(Settings):
    """``oee_line.gateway``: OPC UA data changes -> Sparkplug metric updates of one edge node."""

    topics: list[str] = Field(default_factory=lambda: ["opcua/#"], description="bus topics of opcua.data_change")
    group: str = Field(..., min_length=1, description="Sparkplug group of the edge node")
    node: str = Field(..., min_length=1, description="Sparkplug edge node id")
    updates_topic: str = Field("sparkplug/update/{group}/{node}", description="the edge node's updates_topic")
    separators: str = Field("/.", description="a tag is <machine><separator><metric>: the first of these found "
                                              "splits it (browsed: M1/State, given: M1.State)")
    window: float = Field(0.0, ge=0, description="seconds of plant time a machine's changes are held, then sent as one "
                          "update (one DATA) carrying every value in order, a metric as often as it changed; 0: "
                          "what arrives together, at once. A latency, and what a killed process loses: the "
                          "simulated profile's choice (as the historian's commit_every)")


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
    commit_every: float = Field(0.0, ge=0, description="seconds of plant time what arrives is held and then "
                                                       "written in one transaction (0: each delivery at once; "
                                                       "a simulated day sets it: a transaction per sample was "
                                                       "most of its CPU). What is held is already "
                                                       "acknowledged, so a crash loses it: for simulated "
                                                       "runs only (refused at start under the real clock)")
    virtual_commit_samples: int = Field(1000, ge=0, description="under a virtual clock, samples written per "
                                        "commit (forge_core.storage.CommitGroup: one transaction on one kept "
                                        "connection, committed before any other checkout, at stop and at a "
                                        "kill); 0: a transaction per write. The real clock always commits each")
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


# -- the virtual-time profile (oee_line.sim) ------------------------------------------------------------
class SimPlcParams(Settings):
    """``oee_line.sim_plc``: the PLC simulator's machine model on the plant's clock, as opcua.source reports it."""

    machines: list[str] = Field(default_factory=lambda: ["M1", "M2", "M3"], min_length=1, description="machine ids")
    cycle_times: dict[str, float] = Field(default_factory=dict, description="ideal cycle time per machine id")
    timing: MachineTiming = Field(default_factory=MachineTiming, description="the machines' behaviour "
                                                                             "(forge_opcua's MachineTiming)")
    topic: str = Field("opcua/{source}/{tag}", description="bus topic of each opcua.data_change")
    restart_fault_code: int = Field(9000, description="FaultCode of the down state a PLC restart puts every "
                                                      "machine in")


class SimSparkplugParams(Settings):
    """The broker of ``oee_line.sim_edge_node`` / ``oee_line.sim_host`` (their other params: sparkplug's)."""

    broker: str = Field("sim", min_length=1, description="name of the simulated broker (one per name and run)")
    persistence: bool = Field(True, description="retained messages survive a broker outage (Mosquitto's "
                                                "persistence true, as in security/mosquitto.conf)")


FaultKind = Literal["broker_outage", "plc_restart", "edge_network_loss"]


class ChaosParams(Settings):
    """``oee_line.chaos``: seeded broker outages, PLC restarts and edge network losses under virtual time."""

    enabled: bool = Field(False, description="off unless the chaos profile turns it on")
    broker: str = Field("sim", description="the simulated broker to take down")
    plc: str = Field("plc1", description="the oee_line.sim_plc component to restart")
    edge_client: str = Field("forge-spb-line1-edge-1", description="the edge node's MQTT client id whose network "
                                                                   "is cut")
    min_interval: float = Field(600.0, gt=0, description="seconds between two faults, at least")
    max_interval: float = Field(2400.0, gt=0, description="seconds between two faults, at most")
    weights: dict[FaultKind, float] = Field(
        default_factory=lambda: dict.fromkeys(("broker_outage", "plc_restart", "edge_network_loss"), 1.0),
        description="which fault, by weight")
    broker_outage: tuple[float, float] = Field((60.0, 300.0), description="seconds a broker outage lasts (min, max)")
    plc_restart: tuple[float, float] = Field((20.0, 90.0), description="seconds a PLC restart lasts (min, max)")
    network_loss: tuple[float, float] = Field((10.0, 180.0), description="seconds the edge's network is away "
                                                                         "(min, max)")
    quiet_after: float = Field(0.0, ge=0, description="no new fault this many seconds after the start")


class AuditParams(Settings):
    """``oee_line.audit``: the run's invariants against the simulated PLC's ground truth."""

    plc: str = Field("plc1", description="the oee_line.sim_plc whose samples are the ground truth")
    edge: str = Field("edge", description="the edge node component (its outbox holds what is not yet sent)")
    host: str = Field("host", description="the Sparkplug host component")
    topics: list[str] = Field(default_factory=lambda: ["sparkplug/data/#"], description="sparkplug.metrics topics")
    settle: float = Field(180.0, ge=0, description="samples this close to the end, or to the end of a fault still "
                                                   "settling, are not yet due")
    reset_storage: bool = Field(True, description="empty the time-series tables at start: a simulated day starts "
                                                  "at the same virtual instant every run")
