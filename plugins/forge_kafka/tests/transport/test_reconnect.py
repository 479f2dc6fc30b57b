"""The broker goes away under load and comes back: producer and consumer recover, nothing is lost.

The broker is an Apache Kafka broker of this test's own (stopping the shared one would disturb other
tests). It is stopped at a moment when everything it acknowledged has been handled (publishing paused
for that instant only), so the test also passes on a broker that forgets on restart (Tansu, memory
storage). Publishing goes on during the outage: those messages wait in librdkafka and must all arrive
once the broker is back (at least once: distinct ids are counted, duplicates are allowed).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from forge_core import Envelope, RawMessage

from forge_kafka import KafkaTransport
from forge_kafka.testing import KafkaCluster

from ..conftest import FAST, payload_of

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(180)]


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_broker_restart_under_load_loses_nothing() -> None:
    server = KafkaCluster(1).start()
    total, outage = 3000, 3.0
    try:
        async def body() -> dict[str, Any]:
            topic = f"rc{uuid.uuid4().hex[:6]}/readings"
            settings = {"bootstrap": server.bootstrap, **FAST, "stall_timeout": 2.0}
            out = KafkaTransport("out", settings, plant="rc")
            into = KafkaTransport("in", settings, plant="rc")
            await out.connect()
            await into.connect()
            got: list[int] = []

            async def handle(topic_: str, message: Envelope | RawMessage) -> None:
                assert isinstance(message, RawMessage)
                got.append(payload_of(topic_, message)["id"])

            await into.subscribe(topic, handle, owner="reader")
            gate = asyncio.Event()
            gate.set()
            sent = 0

            async def load() -> None:
                nonlocal sent
                for n in range(total):
                    await gate.wait()
                    await out.publish(topic, Envelope("rc.reading", {"id": n}, f"m{n % 8}", uuid.uuid4().hex,
                                                      time.time(), None, 1, {}))
                    sent = n + 1
                    if n % 10 == 9:
                        await asyncio.sleep(0.01)  # ~1,000 msg/s

            task = asyncio.create_task(load())
            await wait_until(lambda: len(got) >= 500, 60, "the consumer to handle the first messages")
            gate.clear()
            assert await out.flush(10) == 0
            await wait_until(lambda: set(got) >= set(range(sent)), 30, "the consumer to catch up")
            before = sent
            server.stop(0)
            gate.set()  # publishing goes on while the broker is away
            await asyncio.sleep(outage)
            during = sent - before
            server.start()
            await asyncio.wait_for(task, 120)
            await wait_until(lambda: set(got) >= set(range(total)), 90, "every message after the restart")
            stats = {**out.health().stats, **{f"in_{k}": v for k, v in into.health().stats.items()}}
            await into.close()
            await out.close()
            return {"before": before, "during": during, "handled": len(got), "distinct": len(set(got)), **stats}

        result = asyncio.run(body())
    finally:
        server.close()
    print(result)
    assert result["during"] > 0, "publishing went on during the outage"
    assert result["distinct"] == total
    assert result.get("publish_failed", 0) == 0
