"""The peer side of ``bench_kafka.py``: FastStream 0.7 (``faststream[confluent]``) with a pydantic
model of the same message, per message and batched, for throughput and latency (docstring, (b))."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from bench_kafka_common import WARMUP_ID, cpu, paced, payload, timed  # benchmarks/ is on sys.path when run as a script
from pydantic import BaseModel, ConfigDict, Field


class Heartbeat(BaseModel):
    """The peer's model of the same message (the schema above, as pydantic)."""

    model_config = ConfigDict(extra="forbid")
    title: Literal["heartbeat"]
    machineId: int = Field(ge=0)  # the wire's field names
    bladeType: Literal["A", "B"] | None = None
    sent: float | None = None



@contextlib.asynccontextmanager
async def faststream_broker(bootstrap: str, topic: str, handler: Callable[..., Any], *, batch: int = 0,
                            fetch_wait_ms: int = 500) -> Any:
    """A started FastStream KafkaBroker (confluent) with ``handler`` subscribed to ``topic``."""
    from faststream.confluent import KafkaBroker  # the peer: only this benchmark needs it

    broker = KafkaBroker(bootstrap, logger=None, enable_idempotence=True, acks="all", linger_ms=5)
    options: dict[str, Any] = {"batch": True, "max_records": batch} if batch else {}
    broker.subscriber(topic, group_id=topic, auto_offset_reset="earliest", session_timeout_ms=2000,
                      heartbeat_interval_ms=500, max_poll_interval_ms=10000, fetch_max_wait_ms=fetch_wait_ms,
                      **options)(handler)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def faststream_round(bootstrap: str, messages: int, *, batch: int = 0) -> tuple[float, float]:
    topic = f"fs.{uuid.uuid4().hex[:8]}"
    count = 0
    warm, done = asyncio.Event(), asyncio.Event()

    def seen(model: Heartbeat) -> None:
        nonlocal count
        if model.machineId == WARMUP_ID:
            warm.set()
            return
        count += 1
        if count == messages:
            done.set()

    async def one(model: Heartbeat) -> None:
        seen(model)

    async def many(models: list[Heartbeat]) -> None:
        for model in models:
            seen(model)

    async with faststream_broker(bootstrap, topic, many if batch else one, batch=batch) as broker:
        await broker.publish(Heartbeat(title="heartbeat", machineId=WARMUP_ID), topic, key=b"m0")
        await asyncio.wait_for(warm.wait(), 60)
        start, cpu_start = time.perf_counter(), cpu()
        if batch:
            for first in range(0, messages, batch):
                models = [Heartbeat(**payload(n)) for n in range(first, min(first + batch, messages))]
                await broker.publish_batch(*models, topic=topic, no_confirm=True)
        else:
            for n in range(messages):
                await broker.publish(Heartbeat(**payload(n)), topic, key=f"m{n % 16}", no_confirm=True)
        await asyncio.wait_for(done.wait(), 300)
        elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    return count / elapsed, used / messages * 1e6



async def faststream_latency(bootstrap: str, rate: int, seconds: float, fetch_wait_ms: int) -> list[float]:
    topic = f"fslat.{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    warm = asyncio.Event()

    async def handle(model: Heartbeat) -> None:
        if model.machineId == WARMUP_ID:
            warm.set()
        elif model.sent is not None:
            latencies.append((time.time() - model.sent) * 1000)

    async with faststream_broker(bootstrap, topic, handle, fetch_wait_ms=fetch_wait_ms) as broker:
        await broker.publish(Heartbeat(title="heartbeat", machineId=WARMUP_ID), topic, key=b"m0")
        await asyncio.wait_for(warm.wait(), 60)
        total = int(rate * seconds)
        for n, due in paced(rate, total):
            await asyncio.sleep(due)
            await broker.publish(Heartbeat(**timed(n)), topic, key=f"m{n % 16}", no_confirm=True)
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    return latencies


