"""Params of the sensor_monitoring components (``components.<name>.params`` in plant.yaml), declared once.

The normal ranges are those of a machine hall: bearing housings at about 62 °C (warning 80 °C,
critical 100 °C in the plant's rules), vibration velocity about 2.2 mm/s RMS (ISO 10816 class II:
good below 2.8, alarm above 7.1 mm/s) and a machine drawing about 45 kW.
"""

from __future__ import annotations

import re
from typing import Literal, Self, cast

from pydantic import Field, field_validator, model_validator

from forge_core import Settings

Kind = Literal["temperature", "vibration", "energy"]
AnomalyKind = Literal["spike", "drift", "stuck", "burst"]
KINDS: tuple[Kind, ...] = ("temperature", "vibration", "energy")
ANOMALIES: tuple[AnomalyKind, ...] = ("spike", "drift", "stuck", "burst")
#: What mms.sensor_reading accepts as a sensor id (it is a record key and an MQTT topic level).
SENSOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


class Signal(Settings):
    """How one kind of sensor reads when nothing is wrong, and how far each anomaly takes it."""

    unit: str = Field(min_length=1, description="unit of the readings (the processor's kinds param must agree)")
    mean: float = Field(description="the level readings wander around")
    noise: float = Field(ge=0, description="standard deviation of the noise (Gaussian, Ornstein-Uhlenbeck: correlated "
                                           "over noise_tau, so sampling faster does not make the signal jumpier)")
    noise_tau: float = Field(1.0, gt=0, description="seconds over which the noise decorrelates")
    wander: float = Field(0.0, ge=0, description="amplitude of a slow sine on the mean (load cycles, day/night)")
    period: float = Field(1800.0, gt=0, description="period of that sine, seconds")
    minimum: float | None = Field(None, description="readings are clipped below this (vibration and energy: 0)")
    decimals: int = Field(2, ge=0, le=6, description="readings are rounded to this many decimals (as a real "
                                                      "sensor's resolution; a stuck sensor repeats one value)")
    spike: float = Field(description="spike: added to the reading for the whole anomaly")
    drift: float = Field(description="drift: added in full at the end of the anomaly, linearly from 0")
    burst_noise: float = Field(30.0, ge=1, description="burst: white noise of noise times this on every reading, "
                                                       "readings at burst_rate")


DEFAULT_SIGNALS: dict[Kind, Signal] = {
    "temperature": Signal(unit="C", mean=62.0, noise=0.4, wander=3.0, period=1800.0, minimum=-40.0,
                          spike=50.0, drift=55.0, burst_noise=30.0),
    "vibration": Signal(unit="mm/s", mean=2.2, noise=0.25, wander=0.3, period=900.0, minimum=0.0,
                        spike=10.0, drift=9.0, burst_noise=40.0),
    "energy": Signal(unit="kW", mean=45.0, noise=1.2, wander=3.0, period=3600.0, minimum=0.0,
                     spike=40.0, drift=50.0, burst_noise=20.0),
}


DEFAULT_DURATIONS: dict[AnomalyKind, float] = {"spike": 5.0, "drift": 60.0, "stuck": 30.0, "burst": 10.0}


class Injection(Settings):
    """One anomaly on the schedule (``anomalies.schedule``)."""

    at: float = Field(ge=0, description="seconds after the sensors started")
    sensor: str = Field(description="sensor id (an injection for a sensor of another instance is skipped there)")
    anomaly: AnomalyKind = Field(description="spike, drift, stuck or burst")
    duration: float | None = Field(None, gt=0, description="seconds; null: anomalies.durations of the kind")


class Anomalies(Settings):
    """``params.anomalies``: when the simulators misbehave (seeded: the same seed, the same anomalies)."""

    rate: float = Field(0.0, ge=0, description="random anomalies per sensor per hour (0: only the schedule and "
                                               "commands); one starts only on a quiet sensor")
    weights: dict[AnomalyKind, float] = Field({"spike": 1.0, "drift": 1.0, "stuck": 1.0, "burst": 1.0},
                                              description="relative odds of each kind for random anomalies")
    durations: dict[AnomalyKind, float] = Field(DEFAULT_DURATIONS, description="seconds each kind lasts unless told "
                                                                               "otherwise (kinds not given: default)")
    burst_rate: float = Field(10.0, ge=1, description="burst: readings this many times as often")
    first_after: float = Field(60.0, ge=0, description="no random anomaly before this many seconds (rule "
                                                       "baselines warm up)")
    quiet_after: float = Field(120.0, ge=0, description="seconds after an anomaly ends before a random one may "
                                                        "start on the same sensor (its alert clears first)")
    schedule: list[Injection] = Field([], description="anomalies at fixed times (see the Injection table)")

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in value.values()) or not any(value.values()):
            raise ValueError("weights must be >= 0 and at least one above 0")
        return value

    @field_validator("durations")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v <= 0]
        if bad:
            raise ValueError(f"durations must be above 0 (not {', '.join(bad)})")
        return value

    def duration(self, anomaly: str) -> float:
        key = cast(AnomalyKind, anomaly)
        return self.durations.get(key, DEFAULT_DURATIONS[key])


class CheckParams(Settings):
    """``params.checks``: the tolerances of the plant checks (docs/examples/sensor_monitoring.md#checks)."""

    settle: float = Field(60.0, ge=0, description="seconds after an anomaly's last reading in which alerts and "
                                                  "clears still belong to it (longest rule window + hysteresis)")
    in_flight: float = Field(5.0, ge=0, description="readings published this many seconds before the sensor "
                                                    "reported may be unstored at stop (in flight, not lost)")


class SensorsParams(Settings):
    """``sensor_monitoring.sensors``: a set of simulated sensors per replica."""

    per_kind: dict[Kind, int] = Field({"temperature": 1, "vibration": 1, "energy": 1},
                                      description="sensors of each kind in one instance")
    prefixes: dict[Kind, str] = Field({"temperature": "temp", "vibration": "vib", "energy": "energy"},
                                      description="sensor id = <prefix>-<n>; n counts per kind over the replicas "
                                                  "from first_number (replica 0: temp-1, replica 1: temp-2, ...)")
    first_number: int = Field(1, ge=0, description="n of replica 0's first sensor of a kind")
    location: str = Field("line-{line}", description="location of the instance's sensors; {line} is the replica "
                                                     "number + 1")
    topic: str = Field("sensor-data", min_length=1,
                       description="where readings go; {sensor_id} is replaced (MQTT: sensors/{sensor_id}/reading)")
    interval: float = Field(1.0, gt=0, description="seconds between two readings of a sensor (at scale 1)")
    scale: float = Field(1.0, gt=0, le=1000, description="load multiplier: readings scale times as often (10: the "
                                                         "high-load drill); a scale command changes it at run time")
    signals: dict[Kind, Signal] = Field(DEFAULT_SIGNALS, description="normal range, noise and anomaly sizes per kind "
                                                                     "(a kind given replaces its default whole)")
    anomalies: Anomalies = Field(Anomalies(), description="random and scheduled anomalies (see the Anomalies table)")
    control_topic: str | None = Field("sensors/control", description="sensor_monitoring.sensor_command in (inject, "
                                                                     "scale, clear); null: no commands")
    control_transport: str | None = Field(None, description="transport of the commands; null: the component's own")
    backlog: int = Field(1000, ge=1, description="readings of a sensor kept while they cannot be published (sent "
                                                 "again, in order, same seq); beyond it the sensor skips samples "
                                                 "(counted), so what it produced has no gap")
    start_after: float = Field(0.0, ge=0, description="seconds before the first reading (MQTT-only sensors on a fresh "
                                                      "broker: an MQTT broker drops what no session subscribes to, so "
                                                      "they give the bridge time to subscribe)")
    stop_after: float | None = Field(None, gt=0, description="stop sampling after this many seconds (tests drain "
                                                             "the pipeline before the plant stops)")
    checks: CheckParams = Field(CheckParams(), description="tolerances of the plant checks")

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, prefix in value.items():
            if not SENSOR_ID.match(f"{prefix}-1"):
                raise ValueError(f"{kind}: {prefix!r} does not make a sensor id (letters, digits and _.:-)")
        return value

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not any(self.per_kind.values()):
            raise ValueError("per_kind: at least one sensor")
        if any(n < 0 for n in self.per_kind.values()):
            raise ValueError("per_kind: counts must be >= 0")
        return self

    def sensors(self, replica: int) -> list[tuple[str, Kind, str]]:
        """(sensor id, kind, location) of replica ``replica``'s sensors."""
        location = self.location.replace("{line}", str(replica + 1))
        found: list[tuple[str, Kind, str]] = []
        for kind in KINDS:
            count = self.per_kind.get(kind, 0)
            prefix = self.prefixes.get(kind, kind)
            for i in range(count):
                found.append((f"{prefix}-{self.first_number + replica * count + i}", kind, location))
        return found

    def signal(self, kind: str) -> Signal:
        key = cast(Kind, kind)
        return self.signals.get(key) or DEFAULT_SIGNALS[key]


class MonitorParams(Settings):
    """``sensor_monitoring.monitor``: the live view (docs/examples/sensor_monitoring.md#live-view)."""

    render: Literal["auto", "always", "never"] = Field("auto", description="auto: a rich live table only when "
                                                                           "stdout is a terminal and the clock is "
                                                                           "real; always; never (state and report "
                                                                           "only)")
    refresh: float = Field(1.0, gt=0, description="seconds between two reads of the database and redraws (under "
                                                  "virtual time with no table: the least age of a read before a "
                                                  "snapshot reads again)")
    rate_window: float = Field(10.0, gt=0, description="readings per second and processing time over the last "
                                                       "this many seconds")
    topic: str = Field("sensor-data", min_length=1, description="where the monitor counts produced readings "
                                                                "with a subscription of its own")
    count_produced: bool = Field(True, description="false: no subscription, produced not shown (a principal that "
                                                   "may not read topic outside its group)")
    keep_events: int = Field(5, ge=1, description="latest rebalances and active alerts shown")
