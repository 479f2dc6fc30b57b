"""Outages: reconnect with backoff, subscriptions restored, store-and-forward through the outbox."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from forge_mqtt.testing import MosquittoServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def test_subscriptions_are_restored_after_the_broker_restarts(broker: MosquittoServer, tmp_path: Path,
                                                              kit: Any) -> None:
    make_transport, envelope, until, Collector = kit.make_transport, kit.envelope, kit.until, kit.Collector

    async def body() -> None:
        sub = make_transport(broker, tmp_path / "sub", "sub")
        pub = make_transport(broker, tmp_path / "pub", "pub")
        await sub.connect()
        await pub.connect()
        inbox = Collector()
        await sub.subscribe("plant/+/temp", inbox)
        await pub.publish("plant/m1/temp", envelope({"n": 0}))
        await inbox.wait_for(1)

        broker.stop()
        await until(lambda: not sub.health().connected and not pub.health().connected, 5, lambda: "still connected")
        assert "reconnecting" in sub.health().detail
        broker.start()
        await until(lambda: sub.health().connected and pub.health().connected, 10,
                    lambda: f"sub: {sub.health().detail}; pub: {pub.health().detail}")
        await asyncio.sleep(0.2)  # the resubscription's SUBACK
        await pub.publish("plant/m2/temp", envelope({"n": 1}))
        await inbox.wait_for(2)
        assert inbox.payloads == [{"n": 0}, {"n": 1}]
        assert sub.health().stats["reconnects"] >= 1
        await sub.close()
        await pub.close()

    asyncio.run(body())


def test_connect_to_an_absent_broker_is_not_ready(tmp_path: Path) -> None:
    from forge_core import TransportNotReady
    from forge_core.testing import find_free_port

    from forge_mqtt import MqttTransport

    async def body() -> None:
        transport = MqttTransport("edge", host="127.0.0.1", port=find_free_port(), data_dir=tmp_path)
        with pytest.raises(TransportNotReady, match=r"transport 'edge': cannot reach MQTT broker 127\.0\.0\.1:"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def test_store_and_forward_through_a_ten_second_outage(tmp_path: Path, kit: Any) -> None:
    """50 msg/s of QoS 1 on five keys; the broker is down for 10 s; every message arrives, in order per key."""
    make_transport, envelope, until, Collector = kit.make_transport, kit.envelope, kit.until, kit.Collector
    with MosquittoServer(base_dir=tmp_path / "broker", persistence=True) as server:
        async def body() -> None:
            # The subscriber keeps its session at the broker (persistent session, resumed without clean start,
            # saved by Mosquitto across its restart), so what the publisher replays before the subscriber is
            # back is queued for it, whichever of the two reconnects first.
            # Its reconnect is slower, so the publisher usually replays first (the case that used to lose messages).
            sub = make_transport(server, tmp_path / "sub", "sub", session_expiry=600, reconnect_min_delay=1.5,
                                 reconnect_max_delay=1.5)
            pub = make_transport(server, tmp_path / "pub", "pub")
            await sub.connect()
            await pub.connect()
            inbox = Collector()
            await sub.subscribe("line/#", inbox)
            await asyncio.sleep(0.1)

            rate, keys = 50, 5
            sent: dict[str, int] = dict.fromkeys((f"m{k}" for k in range(keys)), 0)
            outage = {"stopped": False}

            async def load(seconds: float) -> None:
                start = time.monotonic()
                n = 0
                while time.monotonic() - start < seconds:
                    key = f"m{n % keys}"
                    await pub.publish(f"line/{key}", envelope({"key": key, "n": sent[key]}, key=key))
                    sent[key] += 1
                    n += 1
                    await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))

            async def chaos() -> None:
                await asyncio.sleep(3)
                await asyncio.to_thread(server.stop)
                outage["stopped"] = True
                await asyncio.sleep(10)
                await asyncio.to_thread(server.start)

            await asyncio.gather(load(16), chaos())
            assert outage["stopped"]
            total = sum(sent.values())

            def missing() -> list[tuple[str, int]]:
                seen = {(e.key, e.payload["n"]) for _, e in inbox.items}
                return sorted((k, n) for k, c in sent.items() for n in range(c) if (k, n) not in seen)

            assert pub.health().stats["outboxed"] > 300, pub.health().stats
            await until(lambda: len({(e.key, e.payload["n"]) for _, e in inbox.items}) >= total, 30,
                        lambda: f"{len({(e.key, e.payload['n']) for _, e in inbox.items})} of {total}; "
                                f"missing {missing()[:20]}; pub {pub.health().stats}; sub {sub.health().stats}")
            for key, count in sent.items():
                seen = [e.payload["n"] for _, e in inbox.items if e.key == key]
                first = list(dict.fromkeys(seen))  # at least once: drop duplicates, keep first arrival
                assert first == list(range(count)), f"key {key}: order or loss {first[:20]}..."
            assert pub.health().stats["outbox_depth"] == 0
            assert sub.health().stats["sessions_resumed"] >= 1, sub.health().stats
            await sub.close()
            await pub.close()

        asyncio.run(body())
