"""What every side of ``bench_kafka.py`` shares: the message and its schema, the consumer group's
timeouts, client CPU, the fixed-rate schedule, percentiles and the broker started for a run."""

from __future__ import annotations

import contextlib
import gc
import resource
import statistics
import time
from collections.abc import Iterator
from typing import Any

from forge_kafka.testing import KafkaCluster, KafkaServer

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                   "bladeType": {"enum": ["A", "B"]}, "sent": {"type": "number"}},
    "additionalProperties": False,
}
GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000}
SETTINGS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500}
POLL_EVERY = 1000  # raw producer: serve delivery reports every N produce() calls, not every one
WARMUP_ID = 1_000_000  # machineId of the warm-up message (the peer has no envelope source to mark it)


def payload(n: int) -> dict[str, Any]:
    """The n-th message: 16 machines in turn."""
    return {"title": "heartbeat", "machineId": n % 16, "bladeType": "A"}


def cpu() -> float:
    """CPU seconds of this process so far, every thread (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime



class GcTally:
    """The garbage collector's work while it is on: collections per generation, the objects it
    found unreachable (cyclic garbage) and the CPU seconds of the thread that ran them."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.unreachable = 0
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        self.seconds += time.thread_time() - self._started
        self.collections[info["generation"]] += 1
        self.unreachable += info["collected"]

    @contextlib.contextmanager
    def on(self) -> Iterator[GcTally]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


def timed(n: int) -> dict[str, Any]:
    return {**payload(n), "sent": time.time()}


def paced(rate: int, total: int) -> Iterator[tuple[int, float]]:
    """(n, seconds to wait before sending it) on a fixed schedule of ``rate`` a second."""
    start = time.perf_counter()
    for n in range(total):
        yield n, max(0.0, start + n / rate - time.perf_counter())


def percentiles(latencies: list[float]) -> tuple[float, float, int]:
    """(p50, p99, samples) in ms; the first 1 % (the consumer's first fetches) left out."""
    kept = latencies[len(latencies) // 100:]
    if len(kept) < 100:
        return float("nan"), float("nan"), len(kept)
    cuts = statistics.quantiles(kept, n=100)
    return cuts[49], cuts[98], len(kept)



@contextlib.contextmanager
def broker(kind: str) -> Iterator[tuple[str, str]]:
    """(bootstrap, description) of a broker started for this run."""
    if kind == "tansu":
        with KafkaServer() as server:
            yield server.bootstrap, "Tansu (memory storage)"
    else:
        with KafkaCluster(1) as cluster:
            yield cluster.bootstrap, "Apache Kafka (1 KRaft node, the tests' broker)"


