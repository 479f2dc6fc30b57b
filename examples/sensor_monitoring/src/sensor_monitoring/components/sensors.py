"""``sensor_monitoring.sensors``: one instance simulates a set of sensors (temperature, vibration, energy).

Each sensor reads every ``interval / scale`` seconds (``burst_rate`` times as often during a burst)
and publishes ``mms.sensor_reading`` on ``topic`` (``sensor-data``, or ``sensors/{sensor_id}/reading``
for MQTT sensors) keyed by its id, with its ``seq`` (:mod:`sensor_monitoring.lives`) and the
ground-truth ``anomaly`` label (:mod:`sensor_monitoring.simulation`). Anomalies come from the seeded
random draw (``anomalies.rate``), the schedule (``anomalies.schedule``) and, at run time, from
``sensor_monitoring.sensor_command`` on ``control_topic`` (inject, scale, clear: the drills' handle).

A reading is *produced* once ``ctx.publish`` returned. One that could not be published (the
transport raised) is counted in ``publish_errors``, kept with its seq and sent again first on the
next sample, so what a sensor produced has no gap; with ``backlog`` readings waiting it skips
samples (counted) rather than numbering readings it cannot send.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from forge_core import Component, Envelope, Publishes, Subscribes, TransportError, format_time, parse_time
from sensor_monitoring.lives import SEQ_SPAN, Life, SensorRecord, data_dir, ledger, next_epochs
from sensor_monitoring.metrics import SensorMetrics, meter_of
from sensor_monitoring.settings import SensorsParams
from sensor_monitoring.simulation import SensorModel

if TYPE_CHECKING:
    from forge_core import PeriodicTimer

READING = "mms.sensor_reading"
COMMAND = "sensor_monitoring.sensor_command"
ERROR_LOG_EVERY = 60.0  # seconds between two log lines about one sensor's publish errors


@dataclass
class Sensor:
    """One simulated sensor of this instance, in its current life."""

    model: SensorModel
    record: SensorRecord
    life: Life
    topic: str
    scale: float
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    numbered: int = 0  # readings numbered in this life (published or waiting in the outbox)
    logged_error_at: float | None = None
    last_tick: float | None = None
    timer: PeriodicTimer | None = None  # its samples' (Sensors._sampler)

    @property
    def sensor_id(self) -> str:
        return self.model.sensor_id


class Sensors(Component):
    Params = SensorsParams
    params: SensorsParams
    publishes = (Publishes(READING, param="topic", key="sensor_id"),)
    subscribes = (Subscribes(COMMAND, param="control_topic", transport_param="control_transport", shared=False),)

    async def start(self) -> None:
        p, ctx = self.params, self.ctx
        clock = ctx.clock
        book = ledger(ctx)
        self.born = clock.time()  # this life's start: commands stamped before it are old
        self.commands = {"applied": 0, "stale": 0, "foreign": 0}
        self.metrics = SensorMetrics(meter_of(ctx.tactics), ctx.name)
        specs = p.sensors(ctx.replica)
        epochs = next_epochs(data_dir(ctx), [sid for sid, _, _ in specs])
        self.sensors: dict[str, Sensor] = {}
        for sensor_id, kind, location in specs:
            signal = p.signal(kind)
            rng = random.Random(ctx.random.getrandbits(64))
            model = SensorModel(sensor_id, kind, location, signal, rng, burst_rate=p.anomalies.burst_rate)
            record = book.sensors.setdefault(sensor_id, SensorRecord(kind, location, signal.unit))
            life = Life(epochs[sensor_id], self.born)
            record.lives.append(life)
            topic = p.topic.replace("{sensor_id}", sensor_id)
            self.sensors[sensor_id] = Sensor(model, record, life, topic, p.scale)
        self.run_start = clock.monotonic()  # a command may arrive while the subscription is made: see below
        if p.control_topic:
            await ctx.subscribe(p.control_topic, self.on_command, types=[COMMAND], shared=False,
                                transport=p.control_transport)
        #: when the instance first began sampling in this process: schedule, first_after, start/stop_after count
        #: from it (set after the subscriptions, which may wait for the broker, so they do not eat the sampling)
        self.run_start = book.started.setdefault(ctx.name, clock.monotonic())
        now = self.elapsed()
        for injection in p.anomalies.schedule:
            if injection.sensor in self.sensors and injection.at >= now:
                ctx.spawn(self._scheduled(injection.sensor, injection.anomaly, injection.at, injection.duration),
                          name=f"schedule:{injection.sensor}@{injection.at:g}")
        for sensor in self.sensors.values():
            self._start_sampling(sensor)
        ctx.log.info("%s: %d sensors (%s), epochs %s", ctx.name, len(self.sensors), ", ".join(self.sensors),
                     sorted(set(epochs.values())))

    def elapsed(self) -> float:
        return self.ctx.clock.monotonic() - self.run_start

    # -- sampling ------------------------------------------------------------------------------
    # A sensor samples in a timer callback of the loop (ctx.timer), not in a task of its own: per sample
    # (777,600 a simulated day) no task step, no sleep coroutine and no future. ctx.publish_soon publishes
    # without a task when the transport does not wait (the memory bus); one that waits (a broker's flow
    # control) is finished in a task, as are the outbox's flushes, and the next sample is timed after it,
    # as the task's loop did. A callback that raises crashes the component; the timers end with its life.
    def _start_sampling(self, sensor: Sensor) -> None:
        p = self.params
        phase = sensor.model.rng.uniform(0.0, p.interval / sensor.scale)  # sensors not in lockstep
        sensor.timer = self.ctx.timer(p.interval / sensor.scale, partial(self._first_sample, sensor),
                                      initial_delay=max(0.0, p.start_after - self.elapsed()) + phase,
                                      name=f"sample:{sensor.sensor_id}")

    def _first_sample(self, sensor: Sensor) -> float | Awaitable[float] | None:
        """The callback's locals bound at the first sample, as the task's were after its first sleep."""
        assert sensor.timer is not None
        sample = sensor.timer.fn = self._sampler(sensor, sensor.timer)
        return sample()

    def _sampler(self, sensor: Sensor, timer: PeriodicTimer) -> Callable[[], float | Awaitable[float] | None]:
        """The sensor's timer callback: a sample; its result times the next (the rare ways out: a task)."""
        p, ctx, clock = self.params, self.ctx, self.ctx.clock
        # per sample: locals instead of attribute chains (elapsed() is monotonic() - run_start, set once at
        # start); with no reading waiting, the sample goes straight to ctx.publish_soon, else behind the
        # waiting ones in seq order
        monotonic, run_start, model = clock.monotonic, self.run_start, sensor.model
        outbox, time, topic, sensor_id = sensor.outbox, clock.time, sensor.topic, model.sensor_id
        interval, stop_after, backlog = p.interval, p.stop_after, p.backlog
        counts, produced = self.metrics.readings.counts, (model.kind, "produced")  # _produced's Tally, inline
        take, publish_soon, read, rng = self._take, ctx.publish_soon, model.read, model.rng
        kind, location, unit = model.kind, model.location, model.signal.unit
        anomalies = p.anomalies  # the random anomaly's draw, per sample: its terms bound once
        rate, first_after, quiet_after = anomalies.rate, anomalies.first_after, anomalies.quiet_after

        def published(envelope: Envelope) -> None:  # _produced's body, inline
            life = sensor.life
            life.produced += 1
            counts[produced] = counts.get(produced, 0) + 1
            life.recent.append((envelope.payload["seq"], time()))

        def failed(exc: TransportError, reading: dict[str, Any]) -> None:
            outbox.append(reading)
            self._failed(sensor, reading, exc)

        def sample() -> float | Awaitable[float] | None:
            now = monotonic() - run_start
            if stop_after is not None and now >= stop_after:
                timer.cancel()
                ctx.spawn(self._flush(sensor), name=f"flush:{sensor_id}")
                return None
            last_tick, sensor.last_tick = sensor.last_tick, now
            if rate > 0 and now >= first_after and (model.episode is None or model.active(now) is None) \
                    and now >= model.quiet_since + quiet_after \
                    and rng.random() < rate * (0.0 if last_tick is None else now - last_tick) / 3600.0:
                self._inject_random(sensor)
            if len(outbox) < backlog and sensor.numbered < SEQ_SPAN - 1:  # _take's reading, inline
                value, anomaly = read(now)
                sensor.numbered += 1
                reading: dict[str, Any] | None = {
                    "sensor_id": sensor_id, "kind": kind, "location": location,
                    "seq": sensor.life.epoch * SEQ_SPAN + sensor.numbered, "value": value, "unit": unit,
                    "timestamp": format_time(time()), "anomaly": anomaly}
            else:  # skipped (a full backlog) or a new life first
                reading = take(sensor, now)
            if outbox or reading is None:
                if reading is not None:
                    outbox.append(reading)
                return self._flush_then_next(sensor)
            finishing = publish_soon(topic, READING, reading, key=sensor_id, on_published=published, on_failed=failed)
            if finishing is not None:  # the transport waits: the next sample after it
                return self._next_after(sensor, finishing)
            # interval_factor(now) is 1.0 and asks nothing without an episode: no call and no clock read then
            factor = 1.0 if model.episode is None else model.interval_factor(monotonic() - run_start)
            return interval / sensor.scale / factor

        return sample

    def _next_delay(self, sensor: Sensor) -> float:
        """Seconds to the sensor's next sample: ``interval`` over its scale and an episode's factor."""
        model = sensor.model
        factor = 1.0 if model.episode is None else model.interval_factor(self.elapsed())
        return self.params.interval / sensor.scale / factor

    async def _next_after(self, sensor: Sensor, finishing: Awaitable[None]) -> float:
        await finishing  # a publish that waited: its outcome reported by published / failed
        return self._next_delay(sensor)

    async def _flush_then_next(self, sensor: Sensor) -> float:
        await self._flush(sensor)
        return self._next_delay(sensor)

    def _inject_random(self, sensor: Sensor) -> None:
        """The random draw said an anomaly starts now (``_sampler``: no anomaly running, quiet long enough)."""
        a, model = self.params.anomalies, sensor.model
        kinds = [k for k, w in a.weights.items() if w > 0]
        anomaly = model.rng.choices(kinds, weights=[a.weights[k] for k in kinds])[0]
        self._inject(sensor, anomaly, a.duration(anomaly), "random")

    async def _scheduled(self, sensor_id: str, anomaly: str, at: float, duration: float | None) -> None:
        await self.ctx.clock.sleep(max(0.0, at - self.elapsed()))
        self._inject(self.sensors[sensor_id], anomaly, duration or self.params.anomalies.duration(anomaly), "schedule")

    def _inject(self, sensor: Sensor, anomaly: str, duration: float, source: str) -> None:
        sensor.model.inject(anomaly, self.elapsed(), duration, source)
        counts = sensor.record.anomalies
        counts[anomaly] = counts.get(anomaly, 0) + 1
        self.metrics.anomaly(anomaly, source, sensor.model.kind)
        self.ctx.log.info("%s: %s for %gs (%s)", sensor.sensor_id, anomaly, duration, source)

    def _take(self, sensor: Sensor, now: float) -> dict[str, Any] | None:
        """The reading of ``now``, numbered; None (skipped, counted) when ``backlog`` readings wait."""
        if len(sensor.outbox) >= self.params.backlog:
            sensor.life.skipped += 1
            self.metrics.reading("skipped", sensor.model.kind)
            return None
        if sensor.numbered >= SEQ_SPAN - 1:  # a life of 10^9 readings: the next epoch
            self._new_life(sensor)
        model = sensor.model
        value, anomaly = model.read(now)
        sensor.numbered += 1
        return {"sensor_id": model.sensor_id, "kind": model.kind, "location": model.location,
                "seq": sensor.life.epoch * SEQ_SPAN + sensor.numbered, "value": value, "unit": model.signal.unit,
                "timestamp": format_time(self.ctx.clock.time()), "anomaly": anomaly}

    def _new_life(self, sensor: Sensor) -> None:
        epoch = next_epochs(data_dir(self.ctx), [sensor.sensor_id])[sensor.sensor_id]
        sensor.life = Life(epoch, self.ctx.clock.time())
        sensor.record.lives.append(sensor.life)
        sensor.numbered = 0

    async def _flush(self, sensor: Sensor) -> None:
        """Publish the waiting readings in seq order; stop at the first failure (counted, kept)."""
        outbox = sensor.outbox
        while outbox:
            reading = outbox[0]
            try:
                await self.ctx.publish(sensor.topic, READING, reading, key=sensor.sensor_id)
            except TransportError as exc:
                self._failed(sensor, reading, exc)
                return
            outbox.popleft()
            self._produced(sensor, reading)

    def _produced(self, sensor: Sensor, reading: dict[str, Any]) -> None:
        life = sensor.life
        life.produced += 1
        self.metrics.readings.add(1, sensor.model.kind, "produced")  # a Tally: SensorMetrics.reading without its frame
        life.recent.append((reading["seq"], self.ctx.clock.time()))

    def _failed(self, sensor: Sensor, reading: dict[str, Any], exc: TransportError) -> None:
        """``reading`` (kept in the outbox) was not published: counted, logged once a minute per sensor."""
        sensor.life.publish_errors += 1
        self.metrics.reading("publish_error", sensor.model.kind)
        now = self.ctx.clock.monotonic()
        if sensor.logged_error_at is None or now - sensor.logged_error_at >= ERROR_LOG_EVERY:
            sensor.logged_error_at = now
            self.ctx.log.warning("%s: reading %d not published (%d waiting, %d errors in this life): %s",
                                 sensor.sensor_id, reading["seq"], len(sensor.outbox), sensor.life.publish_errors,
                                 exc)

    # -- commands ------------------------------------------------------------------------------
    async def on_command(self, envelope: Envelope) -> None:
        body = envelope.payload
        targets = [s for sid, s in self.sensors.items()
                   if body.get("sensor_id") in (None, sid) and body.get("instance") in (None, self.ctx.name)]
        if not targets:
            self.commands["foreign"] += 1
            return
        stamp = body.get("timestamp")
        if stamp is not None and parse_time(stamp) < self.born:
            self.commands["stale"] += 1
            self.ctx.log.info("ignored %s command of %s (before this life started)", body["command"], stamp)
            return
        self.commands["applied"] += 1
        now = self.elapsed()
        for sensor in targets:
            if body["command"] == "inject":
                anomaly = body["anomaly"]
                self._inject(sensor, anomaly, body.get("duration") or self.params.anomalies.duration(anomaly),
                             "command")
            elif body["command"] == "scale":
                sensor.scale = float(body["scale"])
            else:
                sensor.model.clear(now)
        if body["command"] != "inject":
            self.ctx.log.info("%s %s on %d sensors (%s)", body["command"], body.get("scale", ""), len(targets),
                              body.get("reason", "no reason given"))

    # -- what it says --------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        now, in_flight = self.ctx.clock.time(), self.params.checks.in_flight
        sensors = {sid: {"kind": s.record.kind, "location": s.record.location, "unit": s.record.unit,
                         "lives": [life.view(now, in_flight) for life in s.record.lives],
                         "anomalies": dict(s.record.anomalies), "waiting": len(s.outbox), "scale": s.scale}
                   for sid, s in self.sensors.items()}
        lives = [life for s in self.sensors.values() for life in s.record.lives]
        runtime = self.ctx.services.get("runtime")
        plant_dir = getattr(getattr(runtime, "manifest", None), "plant_dir", None)
        return {"produced": sum(life.produced for life in lives),
                "publish_errors": sum(life.publish_errors for life in lives),
                "skipped": sum(life.skipped for life in lives),
                "anomalies": sum(sum(s.record.anomalies.values()) for s in self.sensors.values()),
                "commands": dict(self.commands), "sensors": sensors,
                "checks": self.params.checks.as_dict(), "plant_dir": str(plant_dir) if plant_dir else None}

    def health(self) -> dict[str, Any]:
        return {"produced": sum(s.life.produced for s in self.sensors.values()),
                "waiting": sum(len(s.outbox) for s in self.sensors.values()),
                "publish_errors": sum(s.life.publish_errors for s in self.sensors.values())}
