"""OpenTelemetry instruments of ``mms.sensor_processor`` (on the plant's meter provider; no-ops when the
manifest's ``telemetry:`` exports no metrics).

* ``forge.mms.readings`` (counter): readings by ``outcome``: ``stored``, ``redelivered`` (seen again,
  stored already), ``malformed`` (dead-lettered);
* ``forge.mms.batch.duration`` (histogram, ms): processing time of a batch, parse to publish (wall time);
* ``forge.mms.alerts`` (counter): alerts by ``state`` (raised, cleared), ``severity`` and ``rule``;
* ``forge.mms.partition_changes`` (counter): partition changes the processor saw, by ``kind``.

Every point carries ``component`` (the instance name).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import Meter, NoOpMeter

__all__ = ["ProcessorMetrics"]


class ProcessorMetrics:
    def __init__(self, meter: Meter | None, component: str) -> None:
        meter = meter or NoOpMeter("forge_mms")
        self.attributes = {"component": component}
        self.readings = meter.create_counter("forge.mms.readings", unit="{reading}",
                                             description="sensor readings handled, by outcome")
        self.duration = meter.create_histogram("forge.mms.batch.duration", unit="ms",
                                               description="processing time of a batch of readings")
        self.alerts = meter.create_counter("forge.mms.alerts", unit="{alert}",
                                           description="alerts raised and cleared")
        self.partition_changes = meter.create_counter("forge.mms.partition_changes", unit="{change}",
                                                      description="partition assignments, revocations, losses")

    def count_readings(self, outcome: str, count: int) -> None:
        if count:
            self.readings.add(count, {**self.attributes, "outcome": outcome})

    def batch_took(self, ms: float) -> None:
        self.duration.record(ms, self.attributes)

    def alert(self, state: str, severity: str, rule: str) -> None:
        self.alerts.add(1, {**self.attributes, "state": state, "severity": severity, "rule": rule})

    def partitions(self, kind: str) -> None:
        self.partition_changes.add(1, {**self.attributes, "kind": kind})


def meter_of(tactics: Any) -> Meter | None:
    """The plant's meter for forge_mms, from the tactics' services (None: telemetry is off)."""
    telemetry = getattr(getattr(tactics, "services", None), "telemetry", None)
    return telemetry.meter_provider.get_meter("forge_mms") if telemetry is not None else None
