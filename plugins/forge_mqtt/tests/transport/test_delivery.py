"""Delivery without a coroutine (sync bus handlers' ``callback.direct``) and publishing without one
(``Transport.direct_publish``): the same order, PUBACK after the handler, redelivery and dead letters
as the coroutine paths, on real Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from forge_core import Envelope, MessageBus, RawMessage, RealClock
from forge_core.plugin import SchemaRegistry

from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer
from forge_mqtt.transport.delivery import SYNC_BATCH

COUNT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["n"],
    "properties": {"n": {"type": "integer"}},
}


class Spied:
    """A transport callback with a ``direct`` form, as the bus gives sync handlers: records which
    path delivered each message and when the PUBACK went out relative to it."""

    def __init__(self, events: list[tuple[str, Any]], fail: set[int] | None = None,
                 later: set[int] | None = None) -> None:
        self.events = events
        self.fail = fail or set()  # bodies whose direct call raises
        self.later = later or set()  # bodies whose direct call returns an awaitable that raises once
        self.direct_calls = 0
        self.coroutine_calls = 0
        self._failed_later: set[int] = set()

    def _n(self, message: Envelope | RawMessage) -> int:
        assert isinstance(message, RawMessage)
        return int(message.body)  # the senders here are in binary mode: the bare payload

    def direct(self, topic: str, message: Envelope | RawMessage) -> Awaitable[None] | None:
        self.direct_calls += 1
        n = self._n(message)
        if n in self.fail:
            self.events.append(("raise", n))
            raise ValueError(f"cannot handle {n}")
        if n in self.later and n not in self._failed_later:
            self._failed_later.add(n)
            return self._fail_later(n)
        self.events.append(("handle", n))
        return None

    async def _fail_later(self, n: int) -> None:
        await asyncio.sleep(0.01)
        self.events.append(("raise later", n))
        raise ValueError(f"{n} failed after a wait")

    async def __call__(self, topic: str, message: Envelope | RawMessage) -> None:
        self.coroutine_calls += 1
        self.events.append(("handle", self._n(message)))


def _spy_acks(transport: MqttTransport, events: list[tuple[str, Any]]) -> None:
    client = transport.client
    assert client is not None
    ack = client.ack

    def recording(mid: int, qos: int) -> Any:
        events.append(("ack", mid))
        return ack(mid, qos)

    client.ack = recording  # type: ignore[method-assign]


def test_direct_callbacks_keep_order_and_puback_after_each_handler(mosquitto_server: MosquittoServer,
                                                                   tmp_path: Path, kit: Any) -> None:
    """More than one read's worth (SYNC_BATCH) at once: what is not delivered in the read's turn
    waits in the drain task, behind, in order; every PUBACK follows its message's handler."""
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", content_mode="binary")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in")
        await sender.connect()
        await receiver.connect()
        events: list[tuple[str, Any]] = []
        spied = Spied(events)
        _spy_acks(receiver, events)
        await receiver.subscribe("count/#", spied)
        await asyncio.sleep(0.05)
        total = SYNC_BATCH * 3
        for n in range(total):
            await sender.publish("count/a", kit.envelope(n))
        await kit.until(lambda: len([e for e in events if e[0] == "ack"]) == total, 10,
                        lambda: f"{len(events)} events")
        assert [n for kind, n in events if kind == "handle"] == list(range(total))
        assert [kind for kind, _ in events] == ["handle", "ack"] * total  # each PUBACK after its handler
        assert spied.direct_calls == total and spied.coroutine_calls == 0
        assert receiver.health().stats["delivered"] == total and receiver.health().stats["inbox"] == 0
        await sender.close()
        await receiver.close()

    asyncio.run(body())


def test_direct_callback_errors_are_redelivered_then_undeliverable(mosquitto_server: MosquittoServer,
                                                                   tmp_path: Path, kit: Any) -> None:
    """A direct call that raises is redelivered at once (max_redeliveries), then reported; an awaitable
    it returned that raises is redelivered through the coroutine callback; a coroutine-only
    subscription on the same topic gets every message in order; each PUBACK comes after both."""
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", content_mode="binary")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in", max_redeliveries=2)
        await sender.connect()
        await receiver.connect()
        given_up: list[tuple[str, BaseException]] = []
        receiver.on_undeliverable = lambda topic, raw, exc: given_up.append((topic, exc))
        events: list[tuple[str, Any]] = []
        spied = Spied(events, fail={3}, later={5})
        plain: list[tuple[str, Any]] = []
        also = Spied(plain)
        _spy_acks(receiver, events)
        await receiver.subscribe("jobs/#", spied)
        await receiver.subscribe("jobs/#", also.__call__)  # no direct form: the coroutine path
        await asyncio.sleep(0.05)
        for n in range(8):
            await sender.publish("jobs/x", kit.envelope(n))
        await kit.until(lambda: len([e for e in events if e[0] == "ack"]) == 8, 10, lambda: f"{events}")
        handled = [n for kind, n in events if kind == "handle"]
        assert handled == [0, 1, 2, 4, 5, 6, 7]  # 3 never handled; 5 handled on its redelivery
        assert events.count(("raise", 3)) == 3  # 1 + max_redeliveries
        assert events.count(("raise later", 5)) == 1
        acks = [i for i, (kind, _) in enumerate(events) if kind == "ack"]
        assert all(events[i - 1][0] in ("handle", "raise") for i in acks)  # PUBACK after the handler's last try
        assert [str(exc) for _, exc in given_up] == ["cannot handle 3"]
        assert [n for _, n in plain] == list(range(8))
        assert also.direct_calls == 0
        stats = receiver.health().stats
        assert (stats["redelivered"], stats["undeliverable"]) == (3, 1)
        await sender.close()
        await receiver.close()

    asyncio.run(body())


def test_bus_sync_and_async_handlers_over_direct_publish(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                         kit: Any) -> None:
    """Through the bus: publishes go through direct_publish (a window of 2 makes most of them wait for
    a slot), a sync handler is delivered directly and an async one through its coroutine, both in
    order; a sync handler's error is dead-lettered by the bus and the message acknowledged."""
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", max_inflight=2)
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in")
        assert sender.direct_publish is not None
        await sender.connect()
        await receiver.connect()
        schemas = SchemaRegistry()
        schemas.add("test.count", COUNT)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": sender, "in": receiver})
        sync_got: list[int] = []
        async_got: list[int] = []

        def sync_handler(envelope: Envelope) -> None:
            if envelope.payload["n"] == 7:
                raise RuntimeError("seven")
            sync_got.append(envelope.payload["n"])

        async def async_handler(envelope: Envelope) -> None:
            await asyncio.sleep(0)
            async_got.append(envelope.payload["n"])

        await bus.subscribe("counts/#", sync_handler, owner="sync", transport="in")
        await bus.subscribe("counts/+", async_handler, owner="async", transport="in")
        await asyncio.sleep(0.05)
        for n in range(300):
            await bus.publish("counts/a", "test.count", {"n": n}, source="test", transport="out")
        await kit.until(lambda: len(async_got) == 300 and len(sync_got) == 299, 10,
                        lambda: f"{len(sync_got)}, {len(async_got)}")
        assert sync_got == [n for n in range(300) if n != 7] and async_got == list(range(300))
        letters = list(bus.dead_letters.recent)
        assert [(d.reason, d.envelope.payload if d.envelope else None) for d in letters] == [
            ("handler_error", {"n": 7})]
        stats = receiver.health().stats
        assert stats["undeliverable"] == 0 and stats["delivered"] == 600
        await kit.until(lambda: sender.health().stats["inflight"] == 0, 5)
        assert sender.health().stats["published"] == 300
        await sender.close()
        await receiver.close()

    asyncio.run(body())


def test_direct_publish_waits_for_a_slot_when_the_window_is_full(mosquitto_server: MosquittoServer,
                                                                 tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", max_inflight=2, content_mode="binary")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in")
        await sender.connect()
        await receiver.connect()
        got = kit.Collector()
        await receiver.subscribe("slots/#", got)
        await asyncio.sleep(0.05)
        assert sender.direct_publish is not None
        done_at_once: list[bool] = []
        for n in range(6):
            pending = sender.direct_publish("slots/a", kit.envelope(n))
            done_at_once.append(pending is None)
            if pending is not None:
                await pending  # the caller's part of the contract: before the next publish
        assert done_at_once[:3] == [True, True, False]  # the third found both slots taken
        await got.wait_for(6)
        assert got.payloads == list(range(6))
        await sender.close()
        await receiver.close()

    asyncio.run(body())


def test_a_subclass_that_changes_publish_is_awaited(tmp_path: Path) -> None:
    class Counting(MqttTransport):
        async def publish(self, topic: str, envelope: Envelope) -> None:
            await super().publish(topic, envelope)

    assert MqttTransport("a", data_dir=tmp_path).direct_publish is not None
    assert Counting("b", data_dir=tmp_path).direct_publish is None
