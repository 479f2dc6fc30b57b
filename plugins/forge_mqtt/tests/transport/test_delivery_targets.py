"""Which local subscriptions a received message goes to (``_handle`` and ``_targets``), without a
broker: by its one subscription identifier, in turn within a shared group, every local subscriber of
each of several identifiers, none for a stale one, and by topic when it carries none."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from forge_core import RawMessage

from forge_mqtt import MqttTransport
from forge_mqtt.transport.decoder import decode_publish
from forge_mqtt.transport.packed_properties import utf8
from forge_mqtt.transport.subscriber import BrokerSub, LocalSub


class _Client:
    def __init__(self) -> None:
        self.acks: list[int] = []

    def ack(self, mid: int, qos: int) -> int:
        self.acks.append(mid)
        return 0


def _publish(topic: str, mid: int, idents: list[int]) -> mqtt.MQTTMessage:
    props = b"".join(b"\x0b" + bytes((ident,)) for ident in idents)
    packet = utf8(topic) + mid.to_bytes(2, "big") + bytes((len(props),)) + props + b"{}"
    return decode_publish(0x32, packet)


def test_a_message_goes_to_the_subscriptions_it_names(tmp_path: Path) -> None:
    async def main() -> tuple[list[tuple[str, str]], list[int], int]:
        transport = MqttTransport("t", host="127.0.0.1", port=1, data_dir=tmp_path, death_certificates=False)
        conn, sub = transport.connection, transport.subscriber
        conn.loop = asyncio.get_running_loop()
        conn._loop_thread = threading.get_ident()
        conn.client = client = _Client()  # type: ignore[assignment]
        conn.connected = True
        got: list[tuple[str, str]] = []

        def local(name: str, pattern: str, group: str | None) -> LocalSub:
            async def callback(topic: str, raw: RawMessage) -> None:
                raise AssertionError("the direct form is called")

            def direct(topic: str, raw: Any) -> None:
                got.append((name, topic))

            callback.direct = direct  # type: ignore[attr-defined]
            return LocalSub(sub, pattern, callback, group, None, pattern)

        plain = BrokerSub("a/#", "a/#", None, 1, 1)
        plain.locals += [local("p1", "a/#", None), local("p2", "a/#", None)]
        shared = BrokerSub("$share/g/b/#", "b/#", "g", 2, 1)
        shared.locals += [local("g1", "b/#", "g"), local("g2", "b/#", "g")]
        for bs in (plain, shared):
            sub.by_id[bs.ident] = bs
            sub.by_filter[bs.filter] = bs
        for mid, (topic, idents) in enumerate([("a/x", [1]), ("b/x", [2]), ("b/y", [2]), ("a/z", [1, 2]),
                                               ("a/s", [9]), ("a/n", [])], start=1):
            assert sub._handle(conn.generation, _publish(topic, mid, idents)) is None
        return got, client.acks, sub.stats["stale_subscription"]

    got, acks, stale = asyncio.run(main())
    assert got == [("p1", "a/x"), ("p2", "a/x"), ("g2", "b/x"), ("g1", "b/y"), ("p1", "a/z"), ("p2", "a/z"),
                   ("g2", "a/z"), ("p1", "a/n"), ("p2", "a/n")]
    assert acks == [1, 2, 3, 4, 5, 6] and stale == 1
