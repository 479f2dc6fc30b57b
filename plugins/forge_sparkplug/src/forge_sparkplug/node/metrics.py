"""An edge node's metrics: aliases, current values, report by exception, and the birth certificates.

Pure state, no I/O: the component feeds it updates and publishes what it returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from forge_sparkplug.codec.datatypes import NUMERIC, DatatypeError, to_wire
from forge_sparkplug.codec.payload import Metric
from forge_sparkplug.settings import DeviceSpec, MetricSpec

__all__ = ["Entry", "MetricTable", "UnknownMetric"]


class UnknownMetric(ValueError):
    """An update names a device or metric that is not in the node's births."""


@dataclass(slots=True)
class Entry:
    device: str | None
    name: str
    alias: int | None
    datatype: int
    deadband: float
    value: Any
    timestamp: int
    #: The last value reported (sent or stored for forwarding): the reference of report by exception.
    reported: Any
    has_reported: bool = False


class MetricTable:
    """Every metric of one edge node and its devices; aliases 1..N unique across the node."""

    def __init__(
        self, node_metrics: Iterable[MetricSpec], devices: Mapping[str, DeviceSpec], *, aliases: bool, now_ms: int
    ) -> None:
        self.entries: dict[tuple[str | None, str], Entry] = {}
        self.by_alias: dict[int, Entry] = {}
        self._datatypes: dict[int, int] | None = None
        self.devices = list(devices)
        self.device_online: dict[str, bool] = dict.fromkeys(devices, True)
        alias = 0
        for device, specs in [(None, list(node_metrics)), *[(d, s.metrics) for d, s in devices.items()]]:
            for spec in specs:
                alias += 1
                entry = Entry(
                    device,
                    spec.name,
                    alias if aliases else None,
                    spec.number,
                    spec.deadband,
                    spec.initial,
                    now_ms,
                    spec.initial,
                    True,
                )  # the birth reports it
                self.entries[(device, spec.name)] = entry
                if entry.alias is not None:
                    self.by_alias[entry.alias] = entry

    def of(self, device: str | None) -> list[Entry]:
        return [e for e in self.entries.values() if e.device == device]

    def birth(self, device: str | None) -> list[Metric]:
        """Every metric of the node (None) or a device with name, alias, datatype and current value
        [tck-id-topics-nbirth-metrics, tck-id-operational-behavior-data-publish-nbirth-values]."""
        return [
            Metric(
                name=e.name,
                alias=e.alias,
                datatype=e.datatype,
                value=e.value,
                timestamp=e.timestamp,
                is_null=e.value is None,
            )
            for e in self.of(device)
        ]

    def apply(self, device: str | None, updates: Iterable[Mapping[str, Any]], now_ms: int) -> list[Entry]:
        """Take updates ``{"name", "value", "timestamp"?}`` of one device (None: the node); return the
        entries whose change is to be reported (beyond the deadband), in update order. A metric may come more than once
        (several instants of it, oldest first): each value beyond the deadband of the one reported before it is
        reported, the earlier ones as copies of the entry, so the DATA carries every one. Raises
        :class:`UnknownMetric` or ``DatatypeError`` before changing anything."""
        if device is not None and device not in self.device_online:
            raise UnknownMetric(f"device {device!r} is not configured (devices: {', '.join(self.devices) or 'none'})")
        checked: list[tuple[Entry, Any, int]] = []
        entries = self.entries
        for update in updates:
            name = update.get("name")
            entry = entries.get((device, name)) if isinstance(name, str) else None
            if entry is None:
                where = f"device {device!r}" if device else "the node"
                raise UnknownMetric(
                    f"metric {name!r} is not one of {where}'s: {', '.join(e.name for e in self.of(device)) or 'none'}"
                )
            value = update.get("value")
            if value is not None:
                to_wire(entry.datatype, value, entry.name)  # DatatypeError names the metric
            stamp = update.get("timestamp")
            if type(stamp) is not int:  # an int (a gateway's ms) is kept as it is, with no isinstance and int()
                # a tuple of types, not ``int | float``: that expression builds a union object at every update
                stamp = int(stamp) if isinstance(stamp, (int, float)) else now_ms
            checked.append((entry, value, stamp))
        changed: list[Entry] = []
        places: dict[int, int] = {}  # id(entry) -> its place in changed
        for entry, value, stamp in checked:
            key = id(entry)
            place = places.pop(key, None)
            if place is not None:  # a metric more than once in the update: its earlier value keeps its place
                changed[place] = Entry(entry.device, entry.name, entry.alias, entry.datatype, entry.deadband,
                                       entry.value, entry.timestamp, entry.reported, entry.has_reported)  # a copy
            entry.value, entry.timestamp = value, stamp
            if entry.has_reported:
                old = entry.reported
                # no deadband and two values: any difference (_exceeds' first case inline: every update comes here)
                if not (value != old if entry.deadband == 0 and value is not None and old is not None
                        else _exceeds(entry, value)):
                    continue
            entry.reported, entry.has_reported = value, True
            places[key] = len(changed)
            changed.append(entry)
        return changed

    def data(self, entries: Iterable[Entry], *, historical: bool = False) -> list[Metric]:
        """DATA metrics: by alias (name omitted) when aliases are on [tck-id-payloads-alias-data-cmd-requirement]."""
        return [
            Metric(
                name=None if e.alias is not None else e.name,
                alias=e.alias,
                datatype=None if e.alias is not None else e.datatype,
                value=e.value,
                timestamp=e.timestamp,
                is_null=e.value is None,
                is_historical=historical,
            )
            for e in entries
        ]

    def datatype_of(self) -> dict[int, int]:
        """alias -> datatype (read only). Made once: the metrics are fixed at construction, and a dict made for
        every DATA was a tenth of the replay's time with 200 metrics."""
        if self._datatypes is None:
            self._datatypes = {alias: entry.datatype for alias, entry in self.by_alias.items()}
        return self._datatypes


def _exceeds(entry: Entry, value: Any) -> bool:
    """Whether ``value`` is a change worth reporting against the last reported one."""
    old = entry.reported
    if value is None or old is None:
        return value is not old
    if entry.deadband == 0:  # any difference, a number's too (2**63 + 1 is not 2**63, NaN is not NaN): what
        return bool(value != old)  # |a - b| > 0 or a != b gave for the numbers apply() lets in, without two float()
    if entry.datatype in NUMERIC and not isinstance(value, bool) and not isinstance(old, bool):
        try:
            return math.fabs(float(value) - float(old)) > entry.deadband
        except (TypeError, ValueError):
            raise DatatypeError(f"metric {entry.name!r}: {value!r} is not a number") from None
    return bool(value != old)
