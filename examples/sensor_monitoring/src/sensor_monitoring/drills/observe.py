"""Watching the pipeline from outside: the consumer group's lag, and what the topic holds.

Both read Kafka with their own clients (an AdminClient, a group-less consumer) and never touch the
processors, so a drill measures the plant as an operator's tools would see it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

#: The drill's own clients log only critical lines: a broker the drill killed is expected to refuse them.
QUIET = {"log_level": 2}


@dataclass(frozen=True)
class LagSample:
    at: float  # epoch seconds
    lag: dict[int, int]  # partition -> high watermark minus the group's committed offset
    ends: dict[int, int] = field(default_factory=dict)  # partition -> high watermark (the log's end)

    @property
    def total(self) -> int:
        return sum(self.lag.values())


class LagSampler:
    """Samples the group's lag on ``topic`` every ``every`` seconds in a thread, until :meth:`stop`.

    Lag of a partition = its high watermark minus the group's committed offset (the whole partition
    when nothing is committed yet). A sample whose request fails (a broker just died) is skipped.

    The committed offsets are read by a consumer carrying the group's id that never subscribes (so it
    never joins the group), not by ``AdminClient.list_consumer_group_offsets``: librdkafka 2.16's admin
    OffsetFetch dereferences a NULL consumer group when the coordinator answers NOT_COORDINATOR (the
    coordinator broker just died) and crashed the drill's process (segfault in rdk:main).
    """

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int, every: float = 0.5) -> None:
        self.bootstrap = bootstrap
        self.group, self.topic, self.partitions, self.every = group, topic, partitions, every
        self._lock = threading.Lock()  # one request at a time: the thread's samples and the drill's own
        self.reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                                "topic.metadata.refresh.interval.ms": 1000, "socket.timeout.ms": 3000, **QUIET})
        self.admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
        self.samples: list[LagSample] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-lag", daemon=True)

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=15)
        with self._lock:
            self.reader.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.samples.append(self.sample())
            except Exception:
                self.failed += 1
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def sample(self) -> LagSample:
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        with self._lock:
            high = {tp.partition: self.reader.get_watermark_offsets(tp, timeout=3, cached=False)[1] for tp in tps}
            committed = {tp.partition: tp.offset for tp in self.reader.committed(tps, timeout=3)
                         if tp.offset >= 0 and tp.error is None}
        return LagSample(time.time(), {p: max(0, high[p] - committed.get(p, 0)) for p in high}, high)

    def committed_by(self, groups: list[str], topic: str, partition: int) -> dict[str, int]:
        """group -> its committed offset on ``topic``[``partition``] (-1: none), read as :meth:`sample` reads
        the processors' (a consumer per group carrying its id that never joins it)."""
        found: dict[str, int] = {}
        for group in groups:
            reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False,
                               "socket.timeout.ms": 3000, **QUIET})
            try:
                tp = reader.committed([TopicPartition(topic, partition)], timeout=3)[0]
                found[group] = tp.offset if tp.error is None and tp.offset >= 0 else -1
            finally:
                reader.close()
        return found

    def coordinator(self) -> int | None:
        """The broker coordinating the group now (None: not known)."""
        with self._lock:
            try:
                found = self.admin.describe_consumer_groups([self.group], request_timeout=3)[self.group].result(
                    timeout=4)
                return int(found.coordinator.id)
            except Exception:  # the group or its coordinator moving: not known
                return None

    # -- figures -------------------------------------------------------------------------------
    def between(self, start: float, end: float | None = None) -> list[LagSample]:
        return [s for s in self.samples if s.at >= start and (end is None or s.at <= end)]

    def peak(self, start: float, end: float | None = None) -> LagSample | None:
        window = self.between(start, end)
        return max(window, key=lambda s: s.total) if window else None


class QuietGate:
    """The end of a drill: open once the group's lag is 0 and no partition's log end moved for ``hold``
    seconds (a reading still being published would move it), judged over :class:`LagSample` s in order.
    Lag 0 alone is a moment: a reading produced just after it is neither consumed nor stored before the
    plant stops."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.ends: dict[int, int] | None = None
        self.since = 0.0  # when the log ends last moved (the first sample: when watching began)

    def __call__(self, sample: LagSample) -> bool:
        if sample.ends != self.ends:
            self.ends, self.since = dict(sample.ends), sample.at
        return sample.total == 0 and sample.at - self.since >= self.hold


@dataclass(frozen=True)
class Record:
    """One reading as the topic holds it."""

    partition: int
    offset: int
    timestamp: float  # the record's CreateTime, epoch seconds
    sensor_id: str
    seq: int
    anomaly: str | None
    ts: float | None  # the reading's own time, epoch seconds


def decode_reading(value: bytes | None) -> dict[str, Any] | None:
    """The reading in a record: a CloudEvents structured document's ``data``, or the plain JSON body."""
    if not value:
        return None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        doc = json.loads(value)
        if isinstance(doc, dict) and "specversion" in doc and isinstance(doc.get("data"), dict):
            doc = doc["data"]
        if isinstance(doc, dict) and "sensor_id" in doc and "seq" in doc:
            return doc
    return None


def scan_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every reading on ``topic`` from the start to the high watermark of each partition (read after the
    plant stopped; a consumer without a group, assigned by hand)."""
    from forge_core import parse_time

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "forge-drill-scan", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True, **QUIET})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        partitions = sorted(meta.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        done = {p for p in partitions if ends[p] == 0}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                error, partition, offset = msg.error(), msg.partition() or 0, msg.offset() or 0
                if error is not None:
                    if error.code() == -191:  # _PARTITION_EOF
                        done.add(partition)
                    continue
                if offset >= ends[partition] - 1:
                    done.add(partition)
                reading = decode_reading(msg.value())
                if reading is None:
                    continue
                ts = None
                with contextlib.suppress(Exception):
                    ts = parse_time(reading["timestamp"]) if isinstance(reading.get("timestamp"), str) else None
                records.append(Record(partition, offset, msg.timestamp()[1] / 1000.0,
                                      str(reading["sensor_id"]), int(reading["seq"]), reading.get("anomaly"), ts))
        if len(done) < len(partitions):
            raise KafkaException(f"scan of {topic} did not reach the end of partitions "
                                 f"{sorted(set(partitions) - done)} within {timeout:.0f}s")
        return records
    finally:
        consumer.close()
