"""What a host application knows of each edge node and device (no I/O): online, bdSeq, metrics with
their last value and quality, and the seq order with its reorder window.

Quality codes are the specification's (§6.4.8): 192 GOOD, 500 STALE, 0 BAD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forge_sparkplug.codec.payload import Metric, Payload

__all__ = ["BAD", "GOOD", "STALE", "DeviceState", "MetricState", "NodeState", "Pending"]

GOOD, STALE, BAD = 192, 500, 0
_NONE: dict[str, MetricState] = {}  # the metrics of a device never born (read only)


@dataclass(slots=True)
class MetricState:
    name: str
    alias: int | None
    datatype: int
    value: Any
    timestamp: int | None
    quality: int = GOOD

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "datatype": self.datatype,
            "value": self.value,
            "timestamp": self.timestamp,
            "quality": self.quality,
        }


@dataclass(slots=True)
class DeviceState:
    online: bool = False
    metrics: dict[str, MetricState] = field(default_factory=dict)
    since: int | None = None  # ms, when it went online or offline


@dataclass(slots=True)
class Pending:
    """A message that arrived ahead of its seq, held for the reorder window."""

    verb: str
    device: str | None
    payload: Payload


@dataclass
class NodeState:
    group: str
    node: str
    online: bool = False
    bdseq: int | None = None
    since: int | None = None
    metrics: dict[str, MetricState] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    #: alias -> (device or None, metric name), across the node and its devices (aliases are unique per node).
    aliases: dict[int, tuple[str | None, str]] = field(default_factory=dict)
    last_seq: int | None = None
    pending: dict[int, Pending] = field(default_factory=dict)
    gap_deadline: float | None = None  # the plant clock's monotonic seconds; set while a gap is open
    last_rebirth_request: float = float("-inf")
    #: datatype_of()'s answer, kept until a birth or a learned metric changes it: made afresh for every DATA it
    #: was 2/3 of the host's time per message with 200 metrics (bench_oee_replay.py under py-spy)
    _datatypes: dict[int, int] | None = field(default=None, repr=False, compare=False)

    # -- births and deaths ------------------------------------------------------------------------------
    def birth(self, payload: Payload, now_ms: int) -> int | None:
        """An NBIRTH: a new session; returns its bdSeq."""
        self._datatypes = None
        self.metrics.clear()
        self.aliases.clear()
        self.devices.clear()
        self.pending.clear()
        self.gap_deadline = None
        bdseq = None
        for metric in payload.metrics:
            if metric.name == "bdSeq":
                bdseq = metric.value if isinstance(metric.value, int) else None
                continue
            self._learn(None, self.metrics, metric)
        self.online, self.bdseq, self.since, self.last_seq = True, bdseq, now_ms, payload.seq
        return bdseq

    def death(self, bdseq: int | None, now_ms: int) -> bool:
        """An NDEATH; True if it ends the current session (its bdSeq is the NBIRTH's), False if stale."""
        if not self.online or (bdseq is not None and self.bdseq is not None and bdseq != self.bdseq):
            return False
        self.online, self.since, self.last_seq = False, now_ms, None
        self.pending.clear()
        self.gap_deadline = None
        for metric in self.metrics.values():
            metric.quality = STALE
        for device in self.devices.values():
            device.online, device.since = False, now_ms
            for metric in device.metrics.values():
                metric.quality = STALE
        return True

    def device_birth(self, device: str, payload: Payload, now_ms: int) -> None:
        self._datatypes = None
        state = self.devices[device] = DeviceState(True, {}, now_ms)
        for alias in [a for a, (d, _) in self.aliases.items() if d == device]:
            del self.aliases[alias]
        for metric in payload.metrics:
            self._learn(device, state.metrics, metric)

    def device_death(self, device: str, timestamp: int | None) -> None:
        state = self.devices.setdefault(device, DeviceState())
        state.online, state.since = False, timestamp
        for metric in state.metrics.values():
            metric.quality = STALE

    def _learn(self, device: str | None, into: dict[str, MetricState], metric: Metric) -> None:
        if metric.name is None:
            return
        self._datatypes = None
        quality = BAD if metric.unsupported else GOOD
        into[metric.name] = MetricState(
            metric.name, metric.alias, metric.datatype or 0, metric.value, metric.timestamp, quality
        )
        if metric.alias is not None:
            self.aliases[metric.alias] = (device, metric.name)

    # -- data -------------------------------------------------------------------------------------------
    def datatype_of(self) -> dict[int, int]:
        """alias -> datatype of the metrics the births declared (read only: the same dict until the next birth)."""
        if self._datatypes is not None:
            return self._datatypes
        out = {}
        for alias, (device, name) in self.aliases.items():
            metrics = self.metrics if device is None else self.devices.get(device, DeviceState()).metrics
            if name in metrics:
                out[alias] = metrics[name].datatype
        self._datatypes = out
        return out

    def resolve(self, device: str | None, metric: Metric) -> MetricState | None:
        """The known metric a DATA metric names (by alias or name); None if the birth had no such metric."""
        if device is None:
            metrics = self.metrics
        else:  # not .get(device, DeviceState()): that made a DeviceState for every metric of every DATA
            state = self.devices.get(device)
            metrics = state.metrics if state is not None else _NONE
        if metric.alias is not None:
            owner, name = self.aliases.get(metric.alias, (device, None))
            return metrics.get(name) if name is not None and owner == device else None
        return metrics.get(metric.name) if metric.name is not None else None

    def apply(self, device: str | None, payload: Payload) -> tuple[list[tuple[MetricState, Metric]], int]:
        """DATA: updates the live values (historical ones leave them alone); returns (known metric, received)
        pairs and how many metrics were unknown."""
        known, unknown = [], 0
        for metric in payload.metrics:
            state = self.resolve(device, metric)
            if state is None:
                unknown += 1
                continue
            if not metric.is_historical:
                state.value, state.timestamp = metric.value, metric.timestamp
                state.quality = BAD if metric.unsupported else GOOD
            known.append((state, metric))
        return known, unknown

    def snapshot(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "bdSeq": self.bdseq,
            "since": self.since,
            "seq": self.last_seq,
            "metrics": {n: m.as_dict() for n, m in self.metrics.items()},
            "devices": {
                d: {"online": s.online, "since": s.since, "metrics": {n: m.as_dict() for n, m in s.metrics.items()}}
                for d, s in self.devices.items()
            },
        }
