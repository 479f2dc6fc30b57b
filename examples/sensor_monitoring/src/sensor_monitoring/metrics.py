"""OpenTelemetry instruments of ``sensor_monitoring.sensors`` (on the plant's meter provider; no-ops when
the manifest's ``telemetry:`` exports no metrics). Every point carries ``component`` (the instance) and
``kind`` (temperature, vibration, energy).

* ``forge.sensors.readings`` (observable counter, forge-mms's ``Tally``: a dict update per reading):
  readings by ``outcome``: ``produced`` (published),
  ``publish_error`` (the transport refused it: kept and sent again), ``skipped`` (a sample not taken: the
  backlog was full);
* ``forge.sensors.anomalies`` (counter): anomalies injected, by ``anomaly`` and ``source`` (random,
  schedule, command).
"""

from __future__ import annotations

from typing import Any

from forge_mms.anomaly.metrics import Tally
from opentelemetry.metrics import Meter, NoOpMeter

__all__ = ["SensorMetrics", "meter_of"]


class SensorMetrics:
    def __init__(self, meter: Meter | None, component: str) -> None:
        self.component = component
        self.readings = Tally(meter, "forge.sensors.readings", unit="{reading}",
                              description="simulated sensor readings, by outcome", attributes={"component": component},
                              fields=("kind", "outcome"))
        meter = meter or NoOpMeter("sensor_monitoring")
        self.anomalies = meter.create_counter("forge.sensors.anomalies", unit="{anomaly}",
                                              description="anomalies injected into the simulated sensors")

    def reading(self, outcome: str, kind: str) -> None:
        self.readings.add(1, kind, outcome)

    def anomaly(self, anomaly: str, source: str, kind: str) -> None:
        self.anomalies.add(1, {"component": self.component, "kind": kind, "anomaly": anomaly, "source": source})


def meter_of(tactics: Any) -> Meter | None:
    """The plant's meter, from the tactics' services (None: telemetry is off)."""
    telemetry = getattr(getattr(tactics, "services", None), "telemetry", None)
    return telemetry.meter_provider.get_meter("sensor_monitoring") if telemetry is not None else None
