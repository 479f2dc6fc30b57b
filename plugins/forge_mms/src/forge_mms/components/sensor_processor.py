"""``mms.sensor_processor``: sensor readings → anomaly rules → alerts, every reading stored once.

The processors of a plant share the readings in one consumer group (``group``; on Kafka the readings
are keyed by sensor, so each sensor's readings reach one processor, in order). Per batch the transport
hands over:

1. each ``mms.sensor_reading`` is parsed; one the rules cannot judge (a non-finite value, a kind or unit
   the processor does not know, a bad timestamp) is dead-lettered (``invalid``, naming the field);
2. a sensor seen for the first time since the processor started or since its partitions changed is
   warmed from storage (:mod:`forge_mms.anomaly.engine`: last readings replayed, active alerts restored,
   alerts stored but never published owed to the bus);
3. per sensor, in seq order, each reading newer than the last one judged goes through the rules
   (:mod:`forge_mms.anomaly`); older ones were judged already (a redelivery) and are only offered to
   storage again;
4. readings, sensors, alerts and rollups are written in ONE transaction, idempotently
   (:mod:`forge_mms.storage.sensor_store`; under a virtual clock several batches share a transaction,
   ``virtual_commit_readings``, committed before anyone else could look: ``forge_core.storage.CommitGroup``);
5. the alerts are published (``mms.sensor_alert`` on ``alert_topic``, keyed by sensor) and marked
   published; then the handler returns and the transport commits the offsets.

At-least-once delivery plus idempotent writes: every reading stored once (effectively once). A database
that fails is retried (``tactics.retry`` backoff) for ``db_retry_deadline`` seconds (default: until it
answers); then the batch is handed back to the transport with :class:`forge_core.Redeliver` (not
acknowledged, delivered again), and the sensors it touched are warmed from storage again, so nothing
the failed transaction did not store is remembered. Partition changes (``Subscription.
on_partitions_changed``) are written to ``system_events`` and make every sensor warm again.

Every ``status_every`` seconds (null: never) the processor writes a ``consumer_status`` row to
``system_events`` (source: its instance name; detail ``{group, lag: {"<topic>:<partition>": n}, held,
batch_ms: {p50, max} | null, readings}``, the batches and readings of that interval), so a view in another
process sees the group's lag per partition. Same store path as the partition events (a thread under a real
clock, inline under virtual time); a write that fails is logged and counted (``events_unrecorded``), never
raised. Nothing is written for an interval in which the transport has no lag figure (``lag()`` is None:
no partitions, e.g. the memory bus or MQTT) and no batch came: there is nothing to tell.

Every batch's duration goes to ``forge.mms.batch.duration``, kept locally and handed over at each status
interval (every ``METRICS_EVERY`` seconds without status rows) and at stop (:mod:`forge_mms.anomaly.metrics`).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from forge_core import Component, DeadLetter, Envelope, Publishes, Redeliver, Subscribes, TransportError, dead_letters
from forge_core.tactics import RetryPolicy
from forge_core.transport import PartitionChange, Subscription

from forge_mms.anomaly.alerts import AlertEvent
from forge_mms.anomaly.engine import RuleBook, SensorState
from forge_mms.anomaly.metrics import ProcessorMetrics, meter_of
from forge_mms.anomaly.readings import SENSOR_ALERT, SENSOR_READING, MalformedReading, Reading, parse_reading
from forge_mms.settings import SensorProcessorParams
from forge_mms.storage.sensor_store import SensorStore

__all__ = ["TRANSIENT_DB_ERRORS", "SensorProcessor"]

T = TypeVar("T")
_seq = attrgetter("seq")

#: Seconds between hand-overs of the batch durations to the histogram when no status row is written.
METRICS_EVERY = 5.0

#: Most batch durations kept per consumer_status interval for its p50 (the max is over every batch).
STATUS_SAMPLE = 10_000

#: Database errors that pass (a connection refused or dropped, a lock or pool timeout): retried, then the
#: batch is redelivered. Others (a bug, a constraint) go to the bus as a handler error (dead-lettered).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError,
                                                        sa.exc.DisconnectionError, sa.exc.TimeoutError)


class SensorProcessor(Component):
    """Sensor readings → anomaly rules → alerts; readings, alerts, sensors and rollups stored once."""

    Params = SensorProcessorParams
    params: SensorProcessorParams
    publishes = (Publishes(SENSOR_ALERT, param="alert_topic", key="sensor_id"),)
    subscribes = (Subscribes(SENSOR_READING, param="topic", group_param="group"),)

    async def start(self) -> None:
        p = self.params
        self.book = RuleBook(p.rules)  # type: ignore[arg-type]  # AnyRule items are RuleSettings
        self.states: dict[str, SensorState] = {}
        self.owed: list[dict[str, Any]] = []  # alert messages stored by a predecessor and not yet published
        self.store: SensorStore | None = None
        if p.store:
            try:
                self.ctx.storage  # noqa: B018 - the engine, created (and migrated) on first use
            except RuntimeError:
                self.ctx.log.warning("%s: the runtime has no storage; readings and alerts are not stored", self.name)
            else:
                virtual = getattr(self.ctx.clock, "is_virtual", False)
                self.store = SensorStore(lambda: self.ctx.storage, processor=self.name, offload=not virtual,
                                         group=p.virtual_commit_readings)
                if self.store.commits is not None and p.virtual_commit_readings > 1:
                    self.ctx.at_end(self.store.commits.end, name="commit_group")  # a kill commits the group too
        self.retry = self._retry_policy()
        try:
            meter = meter_of(self.ctx.tactics)
        except RuntimeError:  # a runtime without tactics has no telemetry either
            meter = None
        self.metrics = ProcessorMetrics(meter, self.name)  # every batch's duration, handed over per status interval
        self.stats = {"readings": 0, "stored": 0, "redelivered": 0, "redelivered_not_stored": 0, "malformed": 0,
                      "alerts_raised": 0, "alerts_cleared": 0, "alerts_republished": 0, "batches": 0,
                      "batches_redelivered": 0, "db_retries": 0, "warmed": 0, "rebalances": 0, "events_unrecorded": 0,
                      "status_rows": 0}
        self._interval_ms: list[float] = []  # batch durations since the last consumer_status row (a sample)
        self._interval_max = 0.0
        self._interval_readings = 0
        self.sub: Subscription = await self.ctx.subscribe(p.topic, self.on_readings, types=[SENSOR_READING],
                                                          batch=True, group=p.group)
        self.sub.on_partitions_changed(self._partitions_changed)
        if p.status_every is not None and self.store is not None:
            self.ctx.every(p.status_every, self._write_status, name="consumer_status")
        else:  # no status rows: the batch durations still reach the histogram every METRICS_EVERY seconds
            self.ctx.every(p.status_every or METRICS_EVERY, self._flush_metrics, name="batch_metrics")

    async def stop(self) -> None:
        metrics: ProcessorMetrics | None = getattr(self, "metrics", None)
        if metrics is not None:
            metrics.flush()  # the last interval's batch durations
        store: SensorStore | None = getattr(self, "store", None)
        if store is not None:
            try:
                store.close()  # commits the open group and gives the kept connection back (virtual clock)
            except Exception:  # the plant's stored-once check says what is missing
                self.ctx.log.exception("%s: the last readings could not be committed at stop", self.name)

    def _retry_policy(self) -> RetryPolicy:
        deadline = self.params.db_retry_deadline
        attempts = 1_000_000_000 if deadline is None else 1_000_000  # the deadline (or the database) ends it
        try:
            policy = self.ctx.tactics.retry(name="mms.sensor_processor.db", max_attempts=attempts, deadline=deadline)
        except RuntimeError:  # a runtime without tactics: the defaults of tactics.retry
            policy = RetryPolicy(attempts, 0.1, 5.0, deadline=deadline, clock=self.ctx.clock)
        policy.retry_on = TRANSIENT_DB_ERRORS
        return policy

    # -- a batch ------------------------------------------------------------------------------
    async def on_readings(self, envelopes: list[Envelope]) -> None:
        started = time.perf_counter()
        self.stats["batches"] += 1
        readings = self._parse(envelopes)
        size = self.params.batch_max
        if len(readings) <= size:  # the common case (every batch of the memory bus): no slice copy
            if readings:
                await self._process(readings)
        else:
            for at in range(0, len(readings), size):
                await self._process(readings[at:at + size])
        took = (time.perf_counter() - started) * 1000.0
        self.metrics.duration.record(took)  # ProcessorMetrics.batch_took without its frame
        if len(self._interval_ms) < STATUS_SAMPLE:  # p50 from the first STATUS_SAMPLE batches; max from all
            self._interval_ms.append(took)
        self._interval_max = max(self._interval_max, took)
        self._interval_readings += len(readings)

    def _parse(self, envelopes: Sequence[Envelope]) -> list[Reading]:
        readings: list[Reading] = []
        kinds = self.params.kinds
        for envelope in envelopes:
            try:
                readings.append(parse_reading(envelope.payload, kinds))
            except MalformedReading as exc:
                self.stats["malformed"] += 1
                self.metrics.count_readings("malformed", 1)
                self.ctx.bus.dead_letters.put(DeadLetter(
                    dead_letters.INVALID, f"{self.name}: reading not judged: {exc}", envelope.topic or "",
                    self.ctx.transport or "", self.ctx.clock.time(), [{"pointer": exc.pointer, "message": exc.message}],
                    self.name, envelope))
        self.stats["readings"] += len(readings)
        return readings

    async def _process(self, batch: list[Reading]) -> None:
        by_sensor: dict[str, list[Reading]] = defaultdict(list)
        for reading in batch:
            by_sensor[reading.sensor_id].append(reading)
        try:
            states = self.states
            firsts = [group[0] for sid, group in by_sensor.items() if sid not in states]
            if firsts:
                await self._warm(firsts)
            events = self._judge(by_sensor)
            if self.store is not None:
                stored_at = self.ctx.clock.time()
                inserted = await self._db(self.store.write_batch, batch, events, stored_at)
            else:
                inserted = {(r.sensor_id, r.seq) for r in batch}
        except TRANSIENT_DB_ERRORS as exc:
            self._forget(by_sensor)
            self.stats["batches_redelivered"] += 1
            raise Redeliver(f"{self.name}: {len(batch)} readings not stored, the database failed: "
                            f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._forget(by_sensor)  # judged but not stored: judge them again when they come back
            raise
        stored = len(inserted)
        self.stats["stored"] += stored
        self.metrics.count_readings("stored", stored)
        if stored < len(batch):  # a redelivery's readings stored before (rare): else nothing to count
            self.stats["redelivered_not_stored"] += len(batch) - stored
            self.metrics.count_readings("redelivered", len(batch) - stored)
        if events or self.owed:
            await self._publish(events, by_sensor)

    async def _warm(self, firsts: list[Reading]) -> None:
        """States for sensors not in memory: from storage (fresh without), with the alerts they still owe."""
        if not firsts:
            return
        warm = {}
        if self.store is not None:
            wanted = {r.sensor_id: min(self.book.history(r.sensor_id, r.kind), self.params.warm_readings)
                      for r in firsts}
            warm = await self._db(self.store.load_warm, wanted)
        for reading in firsts:
            known = warm.get(reading.sensor_id)
            if known is None:
                self.states[reading.sensor_id] = self.book.fresh(reading.sensor_id, reading.kind)
                continue
            self.states[reading.sensor_id] = self.book.warm(reading.sensor_id, reading.kind, known.history,
                                                            known.active, known.last_seq)
            self.owed.extend(known.unpublished)
        self.stats["warmed"] += len(firsts)

    def _judge(self, by_sensor: dict[str, list[Reading]]) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        states = self.states
        for sid, group in by_sensor.items():
            state = states[sid]
            if state.kind != group[0].kind:  # the sensor changed kind: its old rules do not apply
                state = states[sid] = self.book.fresh(sid, group[0].kind)
            for reading in sorted(group, key=_seq) if len(group) > 1 else group:
                if reading.seq <= state.last_seq:
                    self.stats["redelivered"] += 1  # judged already; storage decides whether it is new
                    continue
                moved = state.observe(reading)
                if moved:  # nearly always empty: no extend call
                    events.extend(moved)
        return events

    async def _publish(self, events: list[AlertEvent], by_sensor: dict[str, list[Reading]]) -> None:
        owed, self.owed = self.owed, []
        messages = [*owed, *(event.payload() for event in events)]
        if not messages:
            return
        marks: list[tuple[str, str]] = []
        try:
            for payload in messages:
                await self.ctx.publish(self.params.alert_topic, SENSOR_ALERT, payload, key=payload["sensor_id"])
                marks.append((payload["alert_id"], payload["state"]))
        except TransportError as exc:
            # stored, not (all) published: the sensors warm again at their next reading and owe them then
            self._forget(by_sensor)
            raise Redeliver(f"{self.name}: publishing alerts failed: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._forget(by_sensor)  # e.g. a rule that measured NaN (MessageRejected): dead-lettered, not retried
            raise
        self.stats["alerts_republished"] += len(owed)
        for event in events:
            self.stats[f"alerts_{event.state}"] += 1
            self.metrics.alert(event.state, event.severity, event.rule)
        if self.store is not None:
            try:
                await self._db(self.store.mark_published, marks)
            except TRANSIENT_DB_ERRORS as exc:  # published: at worst a successor publishes them again (same ids)
                self.ctx.log.warning("%s: %d alerts published but not marked so: %s", self.name, len(marks), exc)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store; a transient database error is retried by the retry policy. The first
        attempt goes straight to the store (the policy's machinery cost more than a SQLite write of one
        reading); once it failed, counted as a retry, the policy's attempts follow with its backoff."""
        store = self.store
        assert store is not None
        try:
            return await store.call(fn, *args)
        except TRANSIENT_DB_ERRORS:
            self.stats["db_retries"] += 1
        retries = self.retry.stats.retries
        try:
            return await self.retry.acall(self._once, store, fn, *args)
        finally:
            self.stats["db_retries"] += self.retry.stats.retries - retries

    @staticmethod
    async def _once(store: SensorStore, fn: Callable[..., T], *args: Any) -> T:
        return await store.call(fn, *args)

    def _forget(self, sensors: dict[str, Any]) -> None:
        for sid in sensors:
            self.states.pop(sid, None)

    # -- partitions ---------------------------------------------------------------------------
    def _partitions_changed(self, change: PartitionChange) -> None:
        """On the loop, before a newly assigned partition's first record: every sensor warms again (one that
        comes back may have been judged elsewhere meanwhile), and the change is recorded."""
        self.stats["rebalances"] += 1
        self.metrics.partitions(change.kind)
        self.states.clear()
        detail = {"group": change.group, "partitions": [[t, p] for t, p in change.partitions],
                  "held": [[t, p] for t, p in self.sub.assignment()]}
        self.ctx.log.info("%s: partitions %s: %s", self.name, change.kind, detail["partitions"])
        if self.store is not None:
            self.ctx.spawn(self._record_event(f"partitions_{change.kind}", detail), name="system_event")

    async def _record_event(self, kind: str, detail: dict[str, Any]) -> bool:
        store = self.store
        assert store is not None
        try:
            await store.call(store.record_event, self.ctx.clock.time(), kind, self.name, detail)
        except Exception as exc:  # noqa: BLE001 - an event row is a record, not a reason to crash the processor
            self.stats["events_unrecorded"] += 1
            self.ctx.log.warning("%s: system event %s not recorded: %s: %s", self.name, kind,
                                 type(exc).__name__, exc)
            return False
        return True

    def status(self) -> dict[str, Any] | None:
        """The ``consumer_status`` detail of the interval since the last call (and a new interval begins);
        None when the transport has no lag figure and no batch came."""
        durations, self._interval_ms = self._interval_ms, []
        top, self._interval_max = self._interval_max, 0.0
        readings, self._interval_readings = self._interval_readings, 0
        lag = self.sub.lag()
        if lag is None and not durations:
            return None
        return {"group": self.params.group,
                "lag": None if lag is None else {f"{t}:{p}": n for (t, p), n in sorted(lag.items())},
                "held": [[t, p] for t, p in self.sub.assignment()],
                "batch_ms": {"p50": round(statistics.median(durations), 2), "max": round(top, 2)} if durations else None,
                "readings": readings}

    def _flush_metrics(self) -> None:
        self.metrics.flush()

    async def _write_status(self) -> None:
        self.metrics.flush()  # the interval's batch durations to forge.mms.batch.duration
        detail = self.status()
        if detail is not None and await self._record_event("consumer_status", detail):
            self.stats["status_rows"] += 1

    # -- what the run reports -----------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        lag = self.sub.lag() if hasattr(self, "sub") else None
        return {**getattr(self, "stats", {}), "sensors": len(getattr(self, "states", {})),
                "partitions": [list(tp) for tp in self.sub.assignment()] if hasattr(self, "sub") else [],
                "lag": {f"{t}[{p}]": n for (t, p), n in lag.items()} if lag else None}
