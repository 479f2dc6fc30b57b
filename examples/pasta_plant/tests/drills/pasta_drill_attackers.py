"""The drill's observer and attackers on the plant's broker: a ``monitor``-role wiretap on ``#`` with a
persistent session, forged commands (three ways) and a malformed flood as the ``machine`` role."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

paho = pytest.importorskip("paho.mqtt.client")

FORGED_EPOCH = 10**12
FLOOD_RATE, FLOOD_SECONDS = 300, 10.0
#: malformed bodies, cycled: not JSON, not an object, wrong types, an int no int64 holds, no id
FLOOD_BODIES = (
    b"{not json",
    b"[1, 2, 3]",
    b'{"title": "heartbeat", "machineId": "0"}',
    b'{"title": "heartbeat", "machineId": 123456789012345678901234567890}',
    b'{"title": "heartbeat", "machineId": 1.5}',
    b'{"title": "heartbeat"}',
)



class Wiretap:
    """A plain MQTT 3.1.1 client on ``#`` as the read-only ``monitor`` role, with a persistent session
    (re-subscribed on every connect), so it hears what the broker delivers across its restarts."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connects = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="drill-wiretap", clean_session=False,
                                  protocol=paho.MQTTv311)
        self.client.username_pw_set("monitor", password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(0.2, 2)
        self.client.connect(host, port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connects += 1
        client.subscribe("#", qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((time.time(), msg.topic, bytes(msg.payload), bool(msg.dup)))

    def on(self, topic: str) -> list[tuple[float, Any]]:
        with self.lock:
            items = [(t, body) for t, top, body, _ in self.messages if top == topic]
        out = []
        for t, body in items:
            with contextlib.suppress(ValueError):
                out.append((t, json.loads(body)))
        return out

    def beats(self) -> list[tuple[float, int, str]]:
        """Valid bladed heartbeats: (time, machineId, blade) - the flood's bodies are never valid."""
        return [(t, b["machineId"], b["bladeType"]) for t, b in self.on("heartbeats")
                if isinstance(b, dict) and b.get("title") == "heartbeat" and type(b.get("machineId")) is int
                and b["machineId"] in (0, 1, 2) and b.get("bladeType") in ("A", "B")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def mqtt5(host: str, port: int, client_id: str, user: str | None, password: str | None,
          inflight: int = 20) -> tuple[Any, Any]:
    """A connected MQTT 5 client (or the CONNACK reason that refused it) and its PUBACK reasons by mid."""
    acks: dict[int, Any] = {}
    connack: list[Any] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect = lambda c, u, f, reason, p: connack.append(reason)
    client.on_publish = lambda c, u, mid, reason, p: acks.__setitem__(mid, reason)
    client.max_inflight_messages_set(inflight)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not connack and time.monotonic() < deadline:
        time.sleep(0.02)
    client.acks = acks  # type: ignore[attr-defined]
    return client, (connack[0] if connack else "no CONNACK")


def forge_commands(host: str, port: int, passwords: dict[str, str], blades: dict[int, str]) -> dict[str, Any]:
    """Forged AssignBlade and SwapBlade (epoch 10**12) for every machine, three ways. Returns, per
    attacker, whether the broker let it in and each publish's PUBACK reason."""
    out: dict[str, Any] = {}
    for who, user in (("anonymous", None), ("machine role", "machine"), ("bridge role, no key", "bridge")):
        client, connack = mqtt5(host, port, f"forger-{who.split()[0]}", user, passwords.get(user or ""))
        entry: dict[str, Any] = {"connack": str(connack), "published": 0, "refused": 0, "accepted": 0}
        if getattr(connack, "is_failure", True):
            with contextlib.suppress(Exception):
                client.loop_stop()
            out[who] = entry
            continue
        mids = []
        for machine_id in (0, 1, 2):
            other = "B" if blades.get(machine_id) == "A" else "A"
            for title, topic in (("SwapBlade", "productionPlan/swapBlade"),
                                 ("AssignBlade", "productionPlan/assignBlade")):
                body = {"title": title, "machineId": machine_id, "bladeType": other, "epoch": FORGED_EPOCH}
                mids.append(client.publish(topic, json.dumps(body), qos=1).mid)
        deadline = time.monotonic() + 10
        while len(client.acks) < len(mids) and time.monotonic() < deadline:
            time.sleep(0.02)
        entry["published"] = len(mids)
        entry["refused"] = sum(1 for m in mids if m in client.acks and client.acks[m].is_failure)
        entry["accepted"] = sum(1 for m in mids if m in client.acks and not client.acks[m].is_failure)
        client.disconnect()
        client.loop_stop()
        out[who] = entry
    return out


def flood(host: str, port: int, password: str) -> dict[str, int]:
    """Malformed bodies on ``heartbeats`` as the ``machine`` role, QoS 1, FLOOD_RATE per second."""
    client, connack = mqtt5(host, port, "drill-flood", "machine", password, inflight=1000)
    assert not connack.is_failure, f"the flood's machine credentials were refused: {connack}"
    sent = 0
    began = time.monotonic()
    kinds: Counter[int] = Counter()
    mids = []
    while (elapsed := time.monotonic() - began) < FLOOD_SECONDS:
        due = int(elapsed * FLOOD_RATE)
        while sent < due:
            kind = sent % len(FLOOD_BODIES)
            mids.append(client.publish("heartbeats", FLOOD_BODIES[kind], qos=1).mid)
            kinds[kind] += 1
            sent += 1
        time.sleep(0.005)
    deadline = time.monotonic() + 15
    while len(client.acks) < len(mids) and time.monotonic() < deadline:
        time.sleep(0.05)
    acked = sum(1 for m in mids if m in client.acks and not client.acks[m].is_failure)
    client.disconnect()
    client.loop_stop()
    return {"sent": sent, "acked": acked, "seconds": round(time.monotonic() - began, 1)}

