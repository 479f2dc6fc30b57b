"""MQTT 5 Message Expiry Interval (``message_expiry_by_topic``) on real Mosquitto: a message queued
for a persistent session that is away is dropped by the broker once it expires, and delivered
while it has not; the interval counts from the envelope's time, and the outbox keeps its deadline.

Issue 11 §5: commands the bridge published at the end of one run stayed queued in the machines'
persistent sessions and were obeyed by the fresh machines of the next run.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from forge_mqtt.testing import MosquittoServer

EXPIRY = 3  # seconds: long enough for a reconnect on a loaded machine, short enough to wait out

pytestmark = pytest.mark.servers


class Bodies:
    """The JSON bodies received (a 3.1.1 message has no type header to decode it by)."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    async def __call__(self, topic: str, message: Any) -> None:
        self.payloads.append(json.loads(message.body))


async def _offline_session(server: MosquittoServer, tmp_path: Path, kit: Any, protocol: str) -> dict[str, Any]:
    """A persistent session subscribes and goes away; messages are published for it; it comes back."""
    settings: dict[str, Any] = {"client_id": f"test-away-{uuid.uuid4().hex[:8]}", "session_expiry": 600,
                                "protocol": protocol}
    away = kit.make_transport(server, tmp_path / "sub", "sub", **settings)
    await away.connect()
    await away.subscribe("cmd/#", Bodies())
    await away.close()  # the process ends; the broker keeps its session and queues for it
    # binary: commands to plain devices, as the pasta bridge sends them (Bodies reads the bare JSON)
    pub = kit.make_transport(server, tmp_path / "pub", "pub", message_expiry_by_topic={"cmd/short": EXPIRY},
                             content_mode="binary")
    await pub.connect()
    await pub.publish("cmd/short", kit.envelope({"n": "expired"}))
    await pub.publish("cmd/plain", kit.envelope({"n": "never expires"}))
    await asyncio.sleep(EXPIRY + 1.5)  # the first one's expiry passes while the session is away
    await pub.publish("cmd/short", kit.envelope({"n": "fresh"}))
    await kit.until(lambda: pub.health().stats["inflight"] == 0, 5)  # the broker has it
    back = kit.make_transport(server, tmp_path / "sub", "sub", **settings)  # the process restarted
    inbox = Bodies()
    await back.connect()
    await back.subscribe("cmd/#", inbox)
    await asyncio.sleep(1.0)  # whatever the broker kept has arrived by now
    await back.close()
    await pub.close()
    return {"got": sorted(p["n"] for p in inbox.payloads), "pub": dict(pub.health().stats)}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_an_expired_message_is_not_delivered_to_a_session_that_was_away(mosquitto_server: MosquittoServer,
                                                                        tmp_path: Path, kit: Any,
                                                                        protocol: str) -> None:
    """The broker drops the expired message from the session's queue (also for a 3.1.1 subscriber,
    as the plant's machines are); the one still within its expiry and the one without arrive."""
    result = asyncio.run(_offline_session(mosquitto_server, tmp_path, kit, protocol))
    assert result["got"] == ["fresh", "never expires"], result
    assert result["pub"]["expired"] == 0, result  # each was sent in time; the broker dropped the old one


class _RawV5:
    """A plain paho MQTT 5 subscriber: the Message Expiry Interval each message arrives with."""

    def __init__(self, server: MosquittoServer, topic: str) -> None:
        self.got: list[tuple[str, int | None]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect(server.host, server.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.got.append((msg.topic, getattr(msg.properties, "MessageExpiryInterval", None)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _aged(server: MosquittoServer, tmp_path: Path, kit: Any, raw: _RawV5) -> dict[str, int]:
    pub = kit.make_transport(server, tmp_path / "pub", "pub", message_expiry_by_topic={"cmd/+": 60})
    await pub.connect()
    fresh = kit.envelope({"n": 1})
    old = kit.envelope({"n": 2})
    old.time = time.time() - 50  # waited 50 s elsewhere (Kafka, a bridge): 10 s left
    too_old = kit.envelope({"n": 3})
    too_old.time = time.time() - 61
    await pub.publish("cmd/fresh", fresh)
    await pub.publish("cmd/old", old)
    await pub.publish("cmd/too_old", too_old)
    await pub.publish("other/topic", kit.envelope({"n": 4}))
    await kit.until(lambda: len([t for t, _ in raw.got if not t.startswith("forge/")]) >= 3, 5, lambda: str(raw.got))
    await asyncio.sleep(0.3)
    await pub.close()
    return dict(pub.health().stats)


def test_the_expiry_counts_from_the_envelope_s_time(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                    kit: Any) -> None:
    """A message that already waited has only what is left; one older than its expiry is not sent."""
    raw = _RawV5(mosquitto_server, "#")
    try:
        stats = asyncio.run(_aged(mosquitto_server, tmp_path, kit, raw))
    finally:
        raw.close()
    got = {topic: expiry for topic, expiry in raw.got if not topic.startswith("forge/")}  # not birth/death
    assert set(got) == {"cmd/fresh", "cmd/old", "other/topic"}, raw.got
    assert 58 <= got["cmd/fresh"] <= 60, raw.got
    assert 8 <= got["cmd/old"] <= 10, raw.got
    assert got["other/topic"] is None, raw.got  # no pattern: no expiry
    assert stats["expired"] == 1, stats


async def _outboxed(server: MosquittoServer, tmp_path: Path, kit: Any) -> dict[str, Any]:
    pub = kit.make_transport(server, tmp_path / "pub", "pub", message_expiry_by_topic={"cmd/short": 1})
    await pub.publish("cmd/short", kit.envelope({"n": "expired in the outbox"}))  # not connected yet
    await pub.publish("cmd/plain", kit.envelope({"n": "kept"}))
    assert pub.health().stats["outbox_depth"] == 2
    await asyncio.sleep(1.5)
    sub = kit.make_transport(server, tmp_path / "sub", "sub")
    inbox = kit.Collector()
    await sub.connect()
    await sub.subscribe("cmd/#", inbox)
    await pub.connect()
    await kit.until(lambda: pub.health().stats["outbox_depth"] == 0, 10, lambda: str(pub.health().stats))
    await asyncio.sleep(0.5)
    await sub.close()
    await pub.close()
    return {"got": [p["n"] for p in inbox.payloads], "pub": dict(pub.health().stats)}


def test_a_message_that_expired_in_the_outbox_is_not_replayed(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                              kit: Any) -> None:
    result = asyncio.run(_outboxed(mosquitto_server, tmp_path, kit))
    assert result["got"] == ["kept"], result
    assert result["pub"]["expired"] == 1, result
