"""KafkaTransport: health, group ids."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from forge_core import Envelope, RawMessage

from forge_kafka import KafkaTransport

from ..conftest import envelope, wait_until

pytestmark = pytest.mark.timeout(120)



def test_health_reports_connection_counts_and_lag(make_transport: Any) -> None:
    topic = f"health{uuid.uuid4().hex[:6]}/x"

    async def body() -> None:
        transport = make_transport()
        assert not transport.health().connected
        await transport.connect()
        got: list[str] = []

        async def handler(t: str, m: Envelope | RawMessage) -> None:
            got.append(t)

        await transport.subscribe(topic, handler, owner="h")
        for n in range(5):
            await transport.publish(topic, envelope({"n": n}))
        await wait_until(lambda: len(got) == 5)
        health = transport.health()
        assert health.connected and "connected to 127.0.0.1" in health.detail
        assert health.stats["published"] == 5 and health.stats["handled"] == 5
        assert health.stats["subscriptions"] == 1 and health.stats.get("lag", 0) == 0
        await transport.close()
        assert transport.health().detail == "closed"

    asyncio.run(body())


def test_group_id_follows_the_template() -> None:
    transport = KafkaTransport("k", bootstrap="x:1", plant="acme")
    assert transport.group_id("productionPlan/+", None, "scheduler-1") == "acme.scheduler-1:productionPlan/+"
    assert transport.group_id("orders", "scheduler", "scheduler-2") == "acme.scheduler:orders"
    custom = KafkaTransport("k", bootstrap="x:1", plant="acme", group_template="{group}")
    assert custom.group_id("orders", "billing", None) == "billing"
