"""Publishing: backpressure under max_inflight, the CloudEvents user properties, the outbox before
the first connect and through a broker outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from forge_core.transport import STRUCTURED_CONTENT_TYPE

from forge_mqtt.testing import MosquittoServer

READING = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["machineId", "value"],
    "properties": {"machineId": {"type": "integer"}, "value": {"type": "number"}, "title": {"type": "string"}},
}







def test_inflight_never_exceeds_max_inflight(tmp_path: Path, kit: Any) -> None:
    """5,000 QoS 1 publishes with max_inflight 20: publish waits for PUBACKs; nothing is lost.

    The broker's own queue per subscriber is unbounded here: Mosquitto's default
    (max_queued_messages 1000) drops QoS 1 messages for a subscriber that falls behind.
    """
    with MosquittoServer(base_dir=tmp_path / "broker", extra_config="max_queued_messages 0") as broker:
        asyncio.run(_burst(broker, tmp_path, kit))


async def _burst(broker: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    pub = kit.make_transport(broker, tmp_path / "p", "pub", max_inflight=20)
    sub = kit.make_transport(broker, tmp_path / "s", "sub")
    await pub.connect()
    await sub.connect()
    inbox = kit.Collector()
    await sub.subscribe("burst/#", inbox)
    await asyncio.sleep(0.05)
    highest = 0
    for n in range(5000):
        await pub.publish("burst/a", kit.envelope({"n": n}))
        highest = max(highest, pub.health().stats["inflight"])
    assert highest <= 20
    assert pub.client is not None and pub.client.max_inflight_messages == 20
    await inbox.wait_for(5000, 30)
    assert [p["n"] for p in inbox.payloads] == list(range(5000))
    await kit.until(lambda: pub.health().stats["inflight"] == 0, 5)
    await pub.close()
    await sub.close()


def _seen_by_plain_client(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any,
                          **settings: Any) -> mqtt.MQTTMessage:
    """What a plain paho MQTT 5 client receives of one publish of a transport with ``settings``."""
    seen: list[mqtt.MQTTMessage] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: seen.append(m)
    client.connect(mosquitto_server.host, mosquitto_server.port)
    topic = f"ce/{uuid.uuid4().hex[:8]}"
    client.subscribe(f"{topic}/#", qos=1)
    client.loop_start()
    try:
        async def body() -> None:
            transport = kit.make_transport(mosquitto_server, tmp_path, "ce", **settings)
            await transport.connect()
            await asyncio.sleep(0.1)
            await transport.publish(f"{topic}/1", kit.envelope({"a": 1}, key="k1", source="oven-1"))
            await kit.until(lambda: seen, 5)
            await transport.close()

        asyncio.run(body())
    finally:
        client.loop_stop()
        client.disconnect()
    return seen[0]


def test_binary_mode_user_properties_follow_the_cloudevents_mqtt_binding(mosquitto_server: MosquittoServer,
                                                                         tmp_path: Path, kit: Any) -> None:
    """content_mode binary: a plain paho client sees bare attribute names as user properties, the JSON
    content type and the bare payload."""
    message = _seen_by_plain_client(mosquitto_server, tmp_path, kit, content_mode="binary")
    props = dict(message.properties.UserProperty)
    assert {"specversion", "id", "source", "type", "time", "partitionkey"} <= set(props)
    assert props["source"] == "oven-1" and props["partitionkey"] == "k1"
    assert message.properties.ContentType == "application/json" and message.payload == b'{"a":1}'
    assert message.qos == 1


def test_default_on_mqtt_5_is_one_structured_event_and_one_property(mosquitto_server: MosquittoServer,
                                                                    tmp_path: Path, kit: Any) -> None:
    """By default (MQTT 5) the attributes travel in the JSON body and the only property is the content
    type: no user properties."""
    message = _seen_by_plain_client(mosquitto_server, tmp_path, kit)
    assert not hasattr(message.properties, "UserProperty") or not message.properties.UserProperty
    assert message.properties.ContentType == STRUCTURED_CONTENT_TYPE
    event = orjson.loads(message.payload)
    assert event["data"] == {"a": 1} and event["source"] == "oven-1" and event["partitionkey"] == "k1"
    assert event["specversion"] == "1.0" and event["type"] == "test.message" and event["id"]
    assert message.qos == 1


def test_publishes_before_the_first_connect_wait_in_the_outbox(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                               kit: Any) -> None:
    async def body() -> None:
        early = kit.make_transport(mosquitto_server, tmp_path / "e", "early")
        for n in range(10):
            await early.publish("early/x", kit.envelope({"n": n}))
        assert early.health().stats["outbox_depth"] == 10
        assert (tmp_path / "e" / "outbox-early.db").exists()
        sub = kit.make_transport(mosquitto_server, tmp_path / "s", "sub")
        await sub.connect()
        inbox = kit.Collector()
        await sub.subscribe("early/#", inbox)
        await asyncio.sleep(0.05)
        await early.connect()
        await inbox.wait_for(10, 5)
        assert [p["n"] for p in inbox.payloads] == list(range(10))
        await kit.until(lambda: early.health().stats["outbox_depth"] == 0, 5)
        await early.close()
        await sub.close()

    asyncio.run(body())


@pytest.mark.servers
@pytest.mark.slow
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


def test_slots_bound_the_window_first_come_first_served_and_survive_cancels() -> None:
    from forge_mqtt.transport.publisher import Slots

    async def scenario() -> list[str]:
        slots = Slots(2)
        order: list[str] = []

        async def take(name: str) -> None:
            await slots.acquire()
            order.append(name)

        await take("a")
        await take("b")  # the window is full now
        waiting = [asyncio.create_task(take(n)) for n in ("c", "d", "e")]
        await asyncio.sleep(0)
        assert order == ["a", "b"] and slots.free == 0
        waiting[1].cancel()  # d gives up while queued: it neither takes a slot nor blocks e
        await asyncio.sleep(0)
        slots.release()
        slots.release()
        await asyncio.sleep(0)
        assert order == ["a", "b", "c", "e"] and slots.free == 0
        slots.release()  # nobody waits: the slot is free again
        assert slots.free == 1
        late = asyncio.create_task(take("f"))
        await asyncio.sleep(0)
        assert order[-1] == "f" and slots.free == 0
        # handed a slot and cancelled before running: the slot goes on to the next waiter
        g = asyncio.create_task(take("g"))
        h = asyncio.create_task(take("h"))
        await asyncio.sleep(0)
        slots.release()
        g.cancel()
        await asyncio.gather(g, return_exceptions=True)
        await asyncio.sleep(0)
        assert order[-1] == "h" and slots.free == 0
        await asyncio.gather(late, h, *waiting, return_exceptions=True)
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c", "e", "f", "h"]
