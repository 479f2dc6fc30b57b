"""The shape every drill of the sensor plant follows, and the settings its bounds derive from.

1. start the servers and ``forge run PLANT --profile cluster``; wait until every sensor's readings
   are stored; sample the group's lag from then on;
2. ``warmup`` seconds of normal running (the baseline lag), then ``drill_start``;
3. the fault (``drill_fault`` and what it was: ``broker_down``, ``consumer_killed``...), and 1 s
   later a critical anomaly injected by command (a temperature spike) that must be alerted;
4. ``fault`` seconds, then the heal (``drill_heal``);
5. up to ``drain`` seconds for the lag to drain; then the sensors are slowed to nothing (a
   ``scale`` command), every sensors instance is seen to have applied it (its command group committed
   past it), and the group drains what is left until the topic is quiet: lag 0 with no log end moving
   for ``interval + 1`` s (:class:`~sensor_monitoring.drills.observe.QuietGate`), so the end is exact
   (``drill_end``): the last reading each sensor takes after the command is stored before the stop;
6. SIGINT to ``forge run``; scan the topic; read PostgreSQL; compute the report.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core import Envelope
from forge_core.plugin import DrillOptions, DrillReport, DrillScenario
from forge_core.transport import STRUCTURED_CONTENT_TYPE, encode_structured
from sensor_monitoring.drills.harness import DrillFailed, DrillHarness, Timeline
from sensor_monitoring.drills.measure import Injected, Stored, Window, measure
from sensor_monitoring.drills.observe import QUIET, LagSample, LagSampler, QuietGate, scan_topic

#: The slack added to every recovery bound: process scheduling on a loaded 2-core machine, a
#: processor's batch wait and its transaction, the sampling of the measurement itself.
SLACK = 5.0


@dataclass(frozen=True)
class PlantSettings:
    """The settings of the profile a drill's bounds come from (docs/examples/sensor_monitoring_drills.md)."""

    session: float  # consumer session.timeout.ms, seconds
    heartbeat: float  # consumer heartbeat.interval.ms, seconds
    metadata: float  # metadata refresh, seconds
    request_timeout: float  # the producer's request.timeout.ms, seconds (librdkafka's default 30 s)
    broker_session: float  # the cluster's broker.session.timeout.ms, seconds
    interval: float  # seconds between two readings of a sensor
    sensors: int  # sensors in the plant
    topic: str
    partitions: int
    group: str
    control_topic: str
    #: the consumer groups of the sensors instances that read their commands from Kafka (``group_template``
    #: of each instance name): one committed past a command has applied it
    control_groups: tuple[str, ...] = ()

    @classmethod
    def of(cls, manifest: dict[str, Any], kafka: dict[str, Any], broker_session_ms: int) -> PlantSettings:
        sensors, interval, control = 0, 1.0, "sensors/control"
        group = "sensor-processors"
        transports = manifest.get("transports") or {}
        template = str(kafka.get("group_template", "{plant}.{group}:{pattern}"))
        plant = str((manifest.get("plant") or {}).get("name", ""))
        control_groups: list[str] = []
        for name, comp in (manifest.get("components") or {}).items():
            params = comp.get("params") or {}
            if comp.get("type") == "sensor_monitoring.sensors":
                per_kind = params.get("per_kind") or {"temperature": 1, "vibration": 1, "energy": 1}
                replicas = int(comp.get("replicas", 1))
                sensors += replicas * sum(int(n) for n in per_kind.values())
                interval = float(params.get("interval", interval))
                control = params.get("control_topic", control) or control
                via = params.get("control_transport") or comp.get("transport") or manifest.get("default_transport")
                if (transports.get(via) or {}).get("type") == "kafka":
                    control_groups += [template.format(plant=plant, group=instance, pattern=control)
                                       for instance in ([name] if replicas <= 1 else
                                                        [f"{name}-{i}" for i in range(replicas)])]
            if comp.get("type") == "mms.sensor_processor":
                group = params.get("group", group)
        topics = kafka.get("topics") or {}
        spec = topics.get("sensor-data") or topics.get("sensor/data") or {}
        return cls(session=kafka.get("session_timeout_ms", 10000) / 1000,
                   heartbeat=kafka.get("heartbeat_interval_ms", 3000) / 1000,
                   metadata=kafka.get("metadata_refresh_ms", 5000) / 1000,
                   request_timeout=float({**(kafka.get("config") or {}), **(kafka.get("producer") or {})}.get(
                       "request.timeout.ms", 30000)) / 1000, broker_session=broker_session_ms / 1000,
                   interval=interval, sensors=sensors, topic="sensor-data", partitions=int(spec.get("partitions", 3)),
                   group=group, control_topic=control, control_groups=tuple(control_groups))


class SensorDrill(DrillScenario):
    """A drill on the sensor plant's ``cluster`` profile; subclasses inject and heal one fault."""

    profile = "cluster"
    phases = {"warmup": 10.0, "fault": 15.0, "drain": 60.0}
    #: the Kafka cluster's broker.session.timeout.ms: how soon a dead broker is fenced
    broker_session_ms = 3000

    # -- what a scenario says --------------------------------------------------------------------
    def fault(self, run: DrillRun) -> dict[str, Any]:
        """Inject the fault; returns its description (the ``drill_fault`` marker's detail)."""
        raise NotImplementedError

    def heal(self, run: DrillRun) -> None:
        """End the fault."""

    def bound(self, s: PlantSettings, fault: float) -> tuple[float, str]:
        """The recovery bound in seconds, and how it is derived (``fault``: the fault phase's seconds)."""
        raise NotImplementedError

    def more_figures(self, run: DrillRun, report: DrillReport) -> None:
        """Figures of this scenario only (measured after the plant stopped, servers still up)."""

    def inject_anomaly(self) -> bool:
        return True

    # -- the common run ----------------------------------------------------------------------------
    def run(self, plant_dir: Path, options: DrillOptions) -> DrillReport:
        timeline = Timeline(options.log)
        report = DrillReport(self.name, plant_dir.name)
        harness = DrillHarness(plant_dir, options.work_dir, options.profile or self.profile or "cluster", timeline,
                               database_url=options.extra.get("database_url"),
                               broker_session_ms=self.broker_session_ms)
        try:
            DrillRun(self, harness, options, report).go()
        except DrillFailed as exc:
            report.error = str(exc)
        finally:
            report.timeline = timeline.events
            report.details["work_dir"] = str(harness.work) if options.work_dir else "(removed)"
            harness.close()
        return report


class DrillRun:
    """One run of a :class:`SensorDrill`: the harness, the moments, the lag sampler, the injections."""

    def __init__(self, drill: SensorDrill, harness: DrillHarness, options: DrillOptions, report: DrillReport) -> None:
        self.drill, self.h, self.options, self.report = drill, harness, options, report
        self.settings = PlantSettings.of(harness.manifest, harness.kafka_settings, drill.broker_session_ms)
        self.lag: LagSampler | None = None
        self.injected: list[Injected] = []
        self.partition_of: dict[str, int] = {}
        self.fault_at = self.heal_at = 0.0
        self.producer: Any = None
        self.state: dict[str, Any] = {}

    def phase(self, name: str) -> float:
        return self.options.phase(self.drill, name)

    def note(self, what: str) -> float:
        return self.h.timeline.note(what)

    def go(self) -> None:
        h, s = self.h, self.settings
        h.start_servers()
        h.copy_plant()
        h.start_plant()
        took = h.wait_for(lambda: int(h.scalar("SELECT count(DISTINCT sensor_id) FROM readings") or 0) >= s.sensors,
                          240, f"readings of all {s.sensors} sensors stored")
        self.note(f"readings of all {s.sensors} sensors stored ({took:.0f}s)")
        self.lag = LagSampler(h.kafka.bootstrap, s.group, s.topic, s.partitions).start()
        since = time.time()
        time.sleep(self.phase("warmup"))
        self.partition_of = {r.sensor_id: r.partition for r in scan_topic(h.kafka.bootstrap, s.topic)}
        baseline = self.lag.peak(0.0)
        threshold = max(baseline.total if baseline else 0, s.sensors)
        h.marker("drill_start", scenario=self.drill.name, baseline_lag=threshold)
        self.note(f"drill_start (the group's lag before the fault <= {threshold} records)")

        detail = self.drill.fault(self)
        self.fault_at = time.time()
        h.marker("drill_fault", scenario=self.drill.name, **detail)
        if self.drill.inject_anomaly():
            time.sleep(1.0)
            self.inject_spike(detail.get("partitions"))
        time.sleep(max(0.0, self.phase("fault") - (time.time() - self.fault_at)))
        self.drill.heal(self)
        self.heal_at = time.time()
        h.marker("drill_heal", scenario=self.drill.name)

        drain = self.phase("drain")
        try:
            h.wait_for(lambda: self._lag_meets(lambda sample: sample.total <= threshold), drain, "the lag to drain")
            self.note(f"lag drained to <= {threshold} records")
        except DrillFailed as exc:
            if not h.alive():
                raise
            self.note(f"lag not drained within {drain:.0f}s ({exc})")
        self.quiet_down()
        end = h.marker("drill_end", scenario=self.drill.name)
        summary = h.stop_plant()
        self.lag.stop()
        records = scan_topic(h.kafka.bootstrap, s.topic)
        bound, how = self.drill.bound(s, self.phase("fault"))
        window = Window(since, self.fault_at, self.heal_at, end, bound, drain, s.sensors, how)
        measure(self.report, summary=summary, lives=h.child_summaries(), records=records,
                stored=Stored.load(h.db()), lag=self.lag, window=window, injected=self.injected)
        self.drill.more_figures(self, self.report)
        self.report.details["settings"] = s.__dict__

    def quiet_down(self) -> None:
        """Slow the sensors to nothing and wait until what they produced is stored: each sensors instance
        applied the ``scale`` command (its command group committed past it), then lag 0 with no log end
        moving for ``interval + 1`` s (the one reading a sensor may still take, within an interval of
        applying it, stored too). A fixed sleep here ended the drill with a reading still on its way under
        load (stop 32: "readings lost: 1", the plant's own check counting it in flight at the stop)."""
        h, s, lag = self.h, self.settings, self.lag
        assert lag is not None
        at = self.command({"command": "scale", "scale": 0.001})  # a reading per 1000 s: production stops
        if at is not None and s.control_groups:
            kafka_topic = s.control_topic.replace("/", ".")
            behind: list[str] = list(s.control_groups)

            def applied() -> bool:
                nonlocal behind
                with contextlib.suppress(Exception):  # a coordinator moving: ask again
                    found = lag.committed_by(behind, kafka_topic, at[0])
                    behind = [g for g in behind if found.get(g, -1) <= at[1]]
                return not behind
            try:
                took = h.wait_for(applied, 60, "every sensors instance to apply the scale command")
                self.note(f"scale applied by every sensors instance ({took:.1f}s after the command)")
            except DrillFailed as exc:
                if not h.alive():
                    raise
                self.note(f"scale not seen applied by {', '.join(behind)}: {exc}")
        gate = QuietGate(s.interval + 1.0)
        try:
            h.wait_for(lambda: self._lag_meets(gate), 60, "the last readings to be stored", every=0.25)
            self.note("sensors quiet, every record consumed and committed")
        except DrillFailed as exc:
            if not h.alive():
                raise
            self.note(f"not fully drained at the end: {exc}")

    def _lag_meets(self, test: Callable[[LagSample], bool]) -> bool:
        """Whether the consumer group's lag now passes ``test`` (False while it cannot be read)."""
        assert self.lag is not None
        try:
            sample = self.lag.sample()
        except Exception:  # metadata moving after a broker came back: ask again
            return False
        return test(sample)

    # -- commands to the simulators ----------------------------------------------------------------
    def command(self, body: dict[str, Any]) -> tuple[int, int] | None:
        """A ``sensor_monitoring.sensor_command`` on the control topic, as the plant's tools would send it;
        the (partition, offset) Kafka stored it at (None: not reported)."""
        from confluent_kafka import Producer

        if self.producer is None:
            self.producer = Producer({"bootstrap.servers": self.h.kafka.bootstrap, "enable.idempotence": True,
                                      "acks": "all", **QUIET})
        from forge_core import format_time

        now = time.time()
        envelope = Envelope(type="sensor_monitoring.sensor_command", payload={**body, "timestamp": format_time(now),
                                                                             "reason": f"drill {self.drill.name}"},
                            source="drill", id=str(uuid.uuid4()), time=now, topic=self.settings.control_topic)
        stored: list[tuple[int, int]] = []

        def delivered(error: Any, message: Any) -> None:
            if error is None:
                stored.append((int(message.partition()), int(message.offset())))

        self.producer.produce(self.settings.control_topic.replace("/", "."), encode_structured(envelope),
                              key=b"drill", headers=[("content-type", STRUCTURED_CONTENT_TYPE)], on_delivery=delivered)
        left = self.producer.flush(15)
        if left:
            raise DrillFailed(f"the command {body} was not acknowledged by Kafka within 15s")
        self.note(f"command {body}")
        return stored[0] if stored else None

    def inject_spike(self, partitions: Any = None) -> None:
        """A temperature spike (critical: the plant's sensors read ~62 °C, a spike adds 50) on a sensor,
        one of the faulted partitions' when the fault names them."""
        temps = sorted(sid for sid in self.partition_of if sid.startswith("temp"))
        if not temps:
            raise DrillFailed("no temperature sensor's readings on the topic: nothing to inject a spike into")
        wanted = set(partitions or [])
        chosen = next((sid for sid in temps if self.partition_of[sid] in wanted), temps[0])
        at = time.time()
        self.command({"command": "inject", "sensor_id": chosen, "anomaly": "spike", "duration": 6.0})
        self.injected.append(Injected(chosen, "spike", at))
