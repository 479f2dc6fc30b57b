"""OpenTelemetry instruments of ``mms.sensor_processor`` (on the plant's meter provider; no-ops when the
manifest's ``telemetry:`` exports no metrics).

* ``forge.mms.readings`` (observable counter, a :class:`Tally`): readings by ``outcome``: ``stored``, ``redelivered`` (seen again,
  stored already), ``malformed`` (dead-lettered);
* ``forge.mms.batch.duration`` (histogram, ms): processing time of a batch, parse to publish (wall time).
  Every batch is in it, under a real and a virtual clock: the durations are kept locally
  (:class:`forge_core.telemetry_buffer.BufferedHistogram`, an append a batch instead of the SDK's ~5-20
  µs ``record``) and handed over by :meth:`ProcessorMetrics.flush`, which the processor calls every
  status interval and at stop (and the buffer itself at 4,096 waiting batches): the histogram's count,
  sum and buckets are those of every batch handed over, a reader collecting sees the latest interval's
  batches at its next collection;
* ``forge.mms.alerts`` (counter): alerts by ``state`` (raised, cleared), ``severity`` and ``rule``;
* ``forge.mms.partition_changes`` (counter): partition changes the processor saw, by ``kind``.

Every point carries ``component`` (the instance name).
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any

from forge_core.telemetry_buffer import BufferedHistogram
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation

__all__ = ["ProcessorMetrics", "Tally"]

#: per meter and instrument name: the tallies reported by its one observable counter
_TALLIES: weakref.WeakKeyDictionary[Meter, dict[str, list[weakref.ref[Tally]]]] = weakref.WeakKeyDictionary()


class Tally:
    """A monotonic counter kept as a dict and reported when the metrics are collected (an observable
    counter): a count is one dict update, not the SDK's attribute cleaning, hashing and aggregation per
    ``add`` (a reading at a time under a simulation, where those were ~10 % of the run). The figures
    are the same at every collection. The SDK keeps the first callback registered under a name, so the
    tallies of one meter and name share one instrument; points with equal attributes add up.

    ``attributes``: on every point; ``fields``: the names of the values passed to :meth:`add`."""

    def __init__(self, meter: Meter | None, name: str, *, unit: str, description: str, attributes: dict[str, str],
                 fields: tuple[str, ...]) -> None:
        self.attributes, self.fields = attributes, fields
        self.counts: dict[tuple[str, ...], int] = {}
        if meter is None or isinstance(meter, NoOpMeter):  # telemetry off: counted, never collected
            return
        by_name = _TALLIES.setdefault(meter, {})
        members = by_name.get(name)
        if members is None:
            members = by_name[name] = []
            meter.create_observable_counter(name, callbacks=[partial(_observe, members)], unit=unit,
                                            description=description)
        members.append(weakref.ref(self))

    def add(self, count: int, *values: str) -> None:
        counts = self.counts
        counts[values] = counts.get(values, 0) + count


def _observe(members: list[weakref.ref[Tally]], _options: CallbackOptions) -> list[Observation]:
    totals: dict[tuple[tuple[str, str], ...], int] = {}
    for ref in list(members):
        tally = ref()
        if tally is None:
            members.remove(ref)
            continue
        for values, count in tally.counts.items():
            key = (*tally.attributes.items(), *zip(tally.fields, values, strict=True))
            totals[key] = totals.get(key, 0) + count
    return [Observation(count, dict(key)) for key, count in totals.items()]


class ProcessorMetrics:
    def __init__(self, meter: Meter | None, component: str) -> None:
        meter = meter or NoOpMeter("forge_mms")
        self.attributes = {"component": component}
        self.readings = Tally(meter, "forge.mms.readings", unit="{reading}", description="sensor readings handled, by outcome",
                              attributes=self.attributes, fields=("outcome",))
        self.duration = BufferedHistogram(meter.create_histogram("forge.mms.batch.duration", unit="ms",
                                                                 description="processing time of a batch of readings"),
                                          self.attributes)
        self.alerts = meter.create_counter("forge.mms.alerts", unit="{alert}",
                                           description="alerts raised and cleared")
        self.partition_changes = meter.create_counter("forge.mms.partition_changes", unit="{change}",
                                                      description="partition assignments, revocations, losses")

    def count_readings(self, outcome: str, count: int) -> None:
        if count:
            self.readings.add(count, outcome)

    def batch_took(self, ms: float) -> None:
        """One batch's duration, kept until the next :meth:`flush`."""
        self.duration.record(ms)

    def flush(self) -> int:
        """Hand the batch durations kept since the last flush to ``forge.mms.batch.duration``; how many."""
        return self.duration.flush()

    def alert(self, state: str, severity: str, rule: str) -> None:
        self.alerts.add(1, {**self.attributes, "state": state, "severity": severity, "rule": rule})

    def partitions(self, kind: str) -> None:
        self.partition_changes.add(1, {**self.attributes, "kind": kind})


def meter_of(tactics: Any) -> Meter | None:
    """The plant's meter for forge_mms, from the tactics' services (None: telemetry is off)."""
    telemetry = getattr(getattr(tactics, "services", None), "telemetry", None)
    return telemetry.meter_provider.get_meter("forge_mms") if telemetry is not None else None
