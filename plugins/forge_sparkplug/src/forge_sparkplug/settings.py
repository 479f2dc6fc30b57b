"""Params of ``sparkplug.edge_node`` and ``sparkplug.host``, declared once (docs/plugins/sparkplug.md's
tables are ``settings_table`` of these models).

Both components open their own MQTT connection (its Will is Sparkplug's: an NDEATH with the session's
bdSeq, or the host's offline STATE), configured by ``mqtt``: the name of a declared transport of type
``mqtt`` whose broker settings they reuse (host, port, protocol, credentials, TLS, keepalive, connect
timeout, reconnect backoff, in-flight window), or those settings written inline (``MqttSettings``).
"""

from __future__ import annotations

from typing import Any

from forge_core import Settings
from forge_mqtt import MqttSettings
from pydantic import Field, field_validator, model_validator

from forge_sparkplug.codec.datatypes import BY_NUMBER, NUMERIC, SUPPORTED, DatatypeError, number_of, to_wire
from forge_sparkplug.codec.topics import TopicError, check_id

__all__ = ["DEFAULT_LOOKBACK", "RESERVED_METRICS", "DeviceSpec", "EdgeNodeParams", "HostParams", "MetricSpec"]

#: Metric names the edge node writes itself (bdSeq, the rebirth control) and a Forge host's fencing metadata of a
#: command (the lease epoch and the lease naming the host group).
RESERVED_METRICS = frozenset({"bdSeq", "Node Control/Rebirth", "Forge/Epoch", "Forge/Lease"})

#: host_lookback when neither it nor host_keepalive is given: 3 x a host keepalive of 60 s (paho's default; Forge's mqtt
#: default is 30 s)
DEFAULT_LOOKBACK = 180.0

_MQTT_DOC = ("the name of a declared transport of type mqtt whose broker settings are used (host, port, protocol, "
             "credentials, TLS, keepalive, connect_timeout, reconnect delays, max_inflight), or those settings "
             "inline (the keys of transports.<name>.settings of an mqtt transport). The component opens a "
             "connection of its own: its Will is Sparkplug's")


def _id(kind: str, value: str) -> str:
    try:
        return check_id(kind, value)
    except TopicError as exc:
        raise ValueError(str(exc)) from None


class MetricSpec(Settings):
    """One metric an edge node or device reports; all of them are in its birth certificate."""

    name: str = Field(description="metric name (unique within the node or device; '/' makes folders)")
    datatype: str = Field(description="Sparkplug datatype: Int8..Int64, UInt8..UInt64, Float, Double, Boolean, "
                                      "String, Text, UUID, DateTime (ms since the epoch), Bytes, File (base64)")
    deadband: float = Field(0.0, ge=0, description="report by exception: a numeric update is published only when it "
                                                   "differs from the last published value by more than this "
                                                   "(0: any change). Other datatypes: any change")
    initial: Any = Field(None, description="value in the birth certificate until the first update (null: is_null)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or value in RESERVED_METRICS:
            raise ValueError(f"metric name {value!r} is empty or reserved ({', '.join(sorted(RESERVED_METRICS))})")
        return value

    @field_validator("datatype")
    @classmethod
    def _datatype(cls, value: str) -> str:
        number = number_of(value)
        if number not in SUPPORTED:
            raise ValueError(f"datatype {value!r} is not supported for values; supported: "
                             f"{', '.join(BY_NUMBER[n] for n in sorted(SUPPORTED))}")
        return BY_NUMBER[number]

    @model_validator(mode="after")
    def _initial_fits(self) -> MetricSpec:
        if self.initial is not None:
            try:
                to_wire(self.number, self.initial, self.name)
            except DatatypeError as exc:
                raise ValueError(f"initial: {exc}") from None
        if self.deadband and self.number not in NUMERIC:
            raise ValueError(f"metric {self.name!r}: a deadband needs a numeric datatype, not {self.datatype}")
        return self

    @property
    def number(self) -> int:
        return number_of(self.datatype)


class DeviceSpec(Settings):
    metrics: list[MetricSpec] = Field(default_factory=list, description="the device's metrics (its DBIRTH)")


def _unique(metrics: list[MetricSpec], where: str) -> None:
    seen: dict[str, str] = {}
    for metric in metrics:
        lower = metric.name.lower()
        if lower in seen:
            raise ValueError(f"{where}: metric names {seen[lower]!r} and {metric.name!r} are the same ignoring case "
                             "[tck-id-case-sensitivity-metric-names]")
        seen[lower] = metric.name


class EdgeNodeParams(Settings):
    """Params of ``sparkplug.edge_node``: one Sparkplug Edge Node and its devices."""

    mqtt: str | MqttSettings = Field("mqtt", description=_MQTT_DOC)
    group: str = Field(description="Sparkplug Group ID")
    node: str = Field(description="Sparkplug Edge Node ID (group/node is unique in the infrastructure)")
    client_id: str | None = Field(None, description="MQTT client id; default forge-spb-<group>-<node>")
    primary_host: str | None = Field(
        None, description="Host ID of the primary host application: births wait for its STATE online; its "
                          "STATE offline ends the session (NDEATH, reconnect, wait again) and data is stored "
                          "and forwarded meanwhile")
    metrics: list[MetricSpec] = Field(default_factory=list, description="the node's own metrics (its NBIRTH)")
    devices: dict[str, DeviceSpec] = Field(default_factory=dict, description="device id -> its metrics")
    updates_topic: str = Field(
        "sparkplug/update/{group}/{node}",
        description="bus topic of the sparkplug.metric_update messages this node reports ({group}, {node} filled)")
    writes_topic: str = Field(
        "sparkplug/write/{group}/{node}",
        description="bus topic prefix of the sparkplug.write messages NCMD/DCMD writes become (/<device> "
                    "appended for a DCMD)")
    store_and_forward: bool = Field(
        True, description="keep updates made while the broker or the primary host is away in the outbox tactic "
                          "(<data_dir>/outbox-sparkplug-<group>-<node>.db) and replay them in order after the "
                          "births, as NDATA/DDATA with is_historical. Off: such updates only change the values "
                          "the next birth carries")
    outbox_max_bytes: int = Field(500 * 1024 * 1024, ge=1, description="size limit of the store-and-forward "
                                                                       "outbox, bytes (full: the update is refused "
                                                                       "and dead-lettered)")
    link_proof: float = Field(
        1.0, ge=0, description="with store_and_forward: seconds between proofs of the MQTT connection while DATA "
                               "waits for one. DATA is QoS 0 (the specification's rule), so what is written into a "
                               "connection that died before the node noticed (up to 1.5 x keepalive) is gone; each "
                               "DATA (live or replayed) is kept until the broker answers an UNSUBSCRIBE of a filter "
                               "never subscribed, written after it (the UNSUBACK comes only after the broker read "
                               "the DATA before it). Unproven when the connection or the host's session ends: stored "
                               "and replayed as historical (at least once: a copy may arrive twice). 0: off, DATA "
                               "leaves the outbox once written to the socket")
    host_lookback: float | None = Field(
        None, ge=0, description="with store_and_forward and a primary_host: seconds of DATA the node keeps after the "
                                "broker read it. A host whose link dies silently (hung, stopped, network cut) keeps "
                                "its socket open, so its STATE offline (its Will) comes only 1.5 x its keepalive "
                                "later: DATA sent meanwhile reached no host. When the host's STATE offline (or a newer "
                                "STATE online while in session) comes, the DATA sent in the last host_lookback "
                                "seconds goes to the outbox ahead of newer data and is replayed as historical after "
                                "the next births (at least once: what the host did get comes again, historical). "
                                "null: 3 x host_keepalive, or 180 when that is not given; 0: off")
    host_keepalive: float | None = Field(
        None, gt=0, description="the primary host's MQTT keepalive, seconds, if known: host_lookback defaults to three "
                                "times it (its Will comes 1.5 x keepalive after its last packet, later when the broker "
                                "is loaded: 7.8-14 s with keepalive 6 s in the tests)")
    host_lookback_max_messages: int = Field(
        100_000, ge=1, description="bound of the host_lookback buffer (in memory), DATA messages: beyond it the oldest "
                                   "are dropped, counted in lookback_dropped and logged when a window they belonged to "
                                   "is replayed")
    host_lookback_max_bytes: int = Field(
        32 * 1024 * 1024, ge=1, description="bound of the host_lookback buffer, bytes of its copies (as "
                                            "host_lookback_max_messages)")
    unconfirmed_hold: float = Field(
        45.0, ge=0, description="seconds a session born on an unconfirmed STATE online keeps the updates in the "
                                "outbox: after a lost broker connection, a retained STATE online with the timestamp "
                                "the node already believed may be stale (a broker that crashed with persistence keeps "
                                "the host's old STATE, and the host may not be back). The node births, but replays "
                                "and sends DATA only when the host's newer STATE online comes (it births again first) "
                                "or after this time. Above the host's reconnect_max_delay + 2 x connect_timeout; "
                                "0: trust it at once")
    require_epoch: bool = Field(
        False, description="refuse NCMD/DCMD without Forge fencing metadata (the metrics Forge/Epoch and Forge/Lease, "
                           "which only Forge hosts send; a third-party SCADA host's commands have none). false: accept "
                           "them, counted in unfenced_commands. A command with metadata is fenced per host group (its "
                           "Forge/Lease): refused when its epoch is older than the newest seen from that group, "
                           "either way")
    aliases: bool = Field(True, description="give every metric an alias in the births and name metrics by alias "
                                            "in DATA messages")

    @property
    def lookback_window(self) -> float:
        """Seconds of ``host_lookback`` in force (0 without a primary host or store-and-forward)."""
        if self.primary_host is None or not self.store_and_forward:
            return 0.0
        if self.host_lookback is not None:
            return self.host_lookback
        return 3 * self.host_keepalive if self.host_keepalive is not None else DEFAULT_LOOKBACK

    @field_validator("group", "node", "primary_host")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return None if value is None else _id("Sparkplug ID", value)

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: dict[str, DeviceSpec]) -> dict[str, DeviceSpec]:
        lowered: dict[str, str] = {}
        for device, spec in value.items():
            _id("device id", device)
            if device.lower() in lowered:
                raise ValueError(f"device ids {lowered[device.lower()]!r} and {device!r} are the same ignoring case")
            lowered[device.lower()] = device
            _unique(spec.metrics, f"devices.{device}")
        return value

    @model_validator(mode="after")
    def _node_metrics(self) -> EdgeNodeParams:
        _unique(self.metrics, "metrics")
        return self


class HostParams(Settings):
    """Params of ``sparkplug.host``: a Sparkplug 3.0 host application; with replicas, one primary at a time."""

    mqtt: str | MqttSettings = Field("mqtt", description=_MQTT_DOC)
    host_id: str = Field(description="Sparkplug Host ID: its STATE is spBv1.0/STATE/<host_id>; every replica "
                                     "speaks for it while it holds the lease")
    client_id: str | None = Field(None, description="MQTT client id prefix; default forge-spb-host-<host_id>; "
                                                    "the instance name is appended")
    groups: list[str] = Field(default_factory=list, description="Sparkplug groups to follow (spBv1.0/<group>/#); "
                                                                "empty: all (spBv1.0/#)")
    reorder_timeout: float = Field(2.0, gt=0, description="seconds a seq gap may stay open before the host asks "
                                                          "the node for a rebirth [tck-id-operational-behavior-"
                                                          "host-reordering-param]")
    rebirth_requests: bool = Field(True, description="ask for a rebirth on a seq gap, on DATA before a birth and on "
                                                     "an unknown alias (only the primary asks)")
    lease: str | None = Field(None, description="lease the replicas hold to be primary; default sparkplug-host-"
                                                "<host_id> (tactics.leader chooses the backend)")
    data_topic: str = Field("sparkplug/data", description="bus topic prefix of sparkplug.metrics (/<group>/<node>"
                                                          "[/<device>] appended)")
    state_topic: str = Field("sparkplug/state", description="bus topic prefix of sparkplug.node_state")
    commands_topic: str = Field("sparkplug/command", description="bus topic prefix the host takes sparkplug.command "
                                                                 "messages from (<prefix>/#)")

    @field_validator("host_id")
    @classmethod
    def _host_id(cls, value: str) -> str:
        return _id("host_id", value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return [_id("group", group) for group in value]
