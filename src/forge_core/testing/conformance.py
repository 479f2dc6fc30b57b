"""The transport conformance suite: the contract every transport must keep, as test classes.

A transport plugin subclasses :class:`TransportConformance` in its own tests and supplies
``make_transport``; every test below then runs against it (FastStream's tests/brokers/base
does the same)::

    class TestMqttTransport(TransportConformance):
        async def make_transport(self, name):
            return MqttTransport(name, host=..., port=...)

Tests run on real time with a real broker where the transport has one. ``settle`` gives a
broker time to activate a subscription before the first publish; ``delivery_timeout`` bounds
every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from forge_core.clock import RealClock
from forge_core.errors import TransportClosed
from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage
from forge_core.transport.base import DeliveryGuarantee, Transport
from forge_core.transport.codec import Decoder


class Inbox:
    """Collects what a subscription receives, decoding network bytes to envelopes."""

    def __init__(self, transport: Transport, *, fail_first: int = 0) -> None:
        self.items: list[tuple[str, Envelope]] = []
        self.attempts = 0
        self._fail_first = fail_first
        self._decoder = Decoder(prefix=getattr(transport, "header_prefix", "ce_"), ids=IdGenerator(),
                                clock_time=RealClock().time)
        self._event = asyncio.Event()

    async def __call__(self, topic: str, message: Envelope | RawMessage) -> None:
        self.attempts += 1
        if self.attempts <= self._fail_first:
            raise RuntimeError("simulated handler failure (no ack)")
        envelope = message if isinstance(message, Envelope) else self._decoder.decode(
            topic, message.body, message.headers)
        self.items.append((topic, envelope))
        self._event.set()

    @property
    def topics(self) -> list[str]:
        return [t for t, _ in self.items]

    @property
    def payloads(self) -> list[Any]:
        return [e.payload for _, e in self.items]

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} messages within {timeout}s, got {len(self.items)}: "
                                     f"{self.topics[:10]}")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), min(remaining, 0.2))


class TransportConformance:
    """Subclass me and implement :meth:`make_transport`."""

    #: Longest wait for an expected delivery, seconds.
    delivery_timeout: float = 5.0
    #: Pause after subscribing before publishing (broker-side activation), seconds.
    settle: float = 0.0
    #: How long to wait to be sure something is NOT delivered, seconds.
    quiet_period: float = 0.3

    async def make_transport(self, name: str) -> Transport:
        raise NotImplementedError("a conformance subclass must implement make_transport(name)")

    # -- helpers ---------------------------------------------------------------------------
    def run(self, test: Callable[[], Awaitable[None]]) -> None:
        asyncio.run(asyncio.wait_for(test(), self.delivery_timeout * 6))

    def topic(self, *levels: str) -> str:
        """A topic unique to this test run, so a shared broker's leftovers never match."""
        if not hasattr(self, "_prefix"):
            self._prefix = f"conf{uuid.uuid4().hex[:8]}"
        return "/".join((self._prefix, *levels))

    @staticmethod
    def envelope(payload: Any, *, type_: str = "conformance.test", key: str | None = None,
                 headers: dict[str, str] | None = None) -> Envelope:
        return Envelope(type_, payload, "conformance", uuid.uuid4().hex, time.time(), key, 1, dict(headers or {}))

    async def connected(self, name: str = "conformance") -> Transport:
        transport = await self.make_transport(name)
        await transport.connect()
        return transport

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    # -- the contract ----------------------------------------------------------------------
    def test_connect_reports_health_and_close_is_final(self) -> None:
        async def body() -> None:
            transport = await self.make_transport("health")
            assert transport.name == "health"
            assert isinstance(transport.guarantee, DeliveryGuarantee)
            await transport.connect()
            assert transport.health().connected, transport.health().detail
            await transport.close()
            assert not transport.health().connected
            await transport.close()  # idempotent
            with pytest.raises(TransportClosed):
                await transport.publish(self.topic("closed"), self.envelope({"n": 1}))

        self.run(body)

    def test_publish_reaches_subscriber_with_attributes(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                inbox = Inbox(transport)
                topic = self.topic("attrs")
                await transport.subscribe(topic, inbox)
                await self.pause(self.settle)
                sent = self.envelope({"machineId": 7, "ok": True, "reading": 1.5, "tags": ["a"]}, key="m7",
                                     headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
                await transport.publish(topic, sent)
                await inbox.wait_for(1, self.delivery_timeout)
                got_topic, got = inbox.items[0]
                assert got_topic == topic
                assert (got.type, got.payload, got.id, got.source, got.key, got.schema_version) == (
                    sent.type, sent.payload, sent.id, sent.source, sent.key, sent.schema_version)
                assert abs(got.time - sent.time) < 0.001
                assert got.headers.get("traceparent") == sent.headers["traceparent"]
            finally:
                await transport.close()

        self.run(body)

    def test_wildcards_match_like_mqtt(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                plus, hash_, exact = Inbox(transport), Inbox(transport), Inbox(transport)
                await transport.subscribe(self.topic("plant", "+", "temp"), plus)
                await transport.subscribe(self.topic("plant", "#"), hash_)
                await transport.subscribe(self.topic("plant", "m1", "temp"), exact)
                await self.pause(self.settle)
                for topic in ("plant/m1/temp", "plant/m2/temp", "plant/m1/temp/raw", "plant", "other/m1/temp"):
                    await transport.publish(self.topic(*topic.split("/")), self.envelope({"t": topic}))
                await hash_.wait_for(4, self.delivery_timeout)
                await plus.wait_for(2, self.delivery_timeout)
                await exact.wait_for(1, self.delivery_timeout)
                await self.pause(self.quiet_period)
                strip = len(self.topic()) + 1
                assert sorted(t[strip:] for t in plus.topics) == ["plant/m1/temp", "plant/m2/temp"]
                # '#' also matches the parent level itself (MQTT 4.7.1.2)
                assert sorted(t[strip:] for t in hash_.topics) == [
                    "plant", "plant/m1/temp", "plant/m1/temp/raw", "plant/m2/temp"]
                assert [t[strip:] for t in exact.topics] == ["plant/m1/temp"]
            finally:
                await transport.close()

        self.run(body)

    def test_every_subscriber_gets_a_copy(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                first, second = Inbox(transport), Inbox(transport)
                topic = self.topic("fanout")
                await transport.subscribe(topic, first)
                await transport.subscribe(topic, second)
                await self.pause(self.settle)
                await transport.publish(topic, self.envelope({"n": 1}))
                await first.wait_for(1, self.delivery_timeout)
                await second.wait_for(1, self.delivery_timeout)
            finally:
                await transport.close()

        self.run(body)

    def test_order_is_kept_per_key(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                inbox = Inbox(transport)
                topic = self.topic("order")
                await transport.subscribe(topic, inbox)
                await self.pause(self.settle)
                for n in range(200):
                    await transport.publish(topic, self.envelope({"n": n}, key="machine-1"))
                await inbox.wait_for(200, self.delivery_timeout)
                assert [p["n"] for p in inbox.payloads] == list(range(200))
            finally:
                await transport.close()

        self.run(body)

    def test_batches_are_delivered_whole_and_in_order(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                inbox = Inbox(transport)
                batches: list[tuple[str, int]] = []

                async def on_batch(topic: str, messages: list[Envelope | RawMessage]) -> None:
                    batches.append((topic, len(messages)))
                    for message in messages:
                        await inbox(topic, message)

                topic = self.topic("batch")
                await transport.subscribe_batch(topic, on_batch)
                await self.pause(self.settle)
                await transport.publish_batch(topic, [self.envelope({"n": n}, key="machine-1") for n in range(300)])
                await transport.publish_batch(topic, [])
                await inbox.wait_for(300, self.delivery_timeout)
                assert [p["n"] for p in inbox.payloads] == list(range(300))
                assert {t for t, _ in batches} == {topic} and all(size >= 1 for _, size in batches)
                assert sum(size for _, size in batches) == 300
            finally:
                await transport.close()

        self.run(body)

    def test_cancelled_subscription_gets_nothing_more(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                inbox = Inbox(transport)
                topic = self.topic("cancel")
                subscription = await transport.subscribe(topic, inbox)
                await self.pause(self.settle)
                await transport.publish(topic, self.envelope({"n": 1}))
                await inbox.wait_for(1, self.delivery_timeout)
                await subscription.cancel()
                await self.pause(self.settle)
                await transport.publish(topic, self.envelope({"n": 2}))
                await self.pause(self.quiet_period)
                assert inbox.payloads == [{"n": 1}]
            finally:
                await transport.close()

        self.run(body)

    def test_group_members_share_messages(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                a, b = Inbox(transport), Inbox(transport)
                topic = self.topic("group")
                await transport.subscribe(topic, a, group="workers")
                await transport.subscribe(topic, b, group="workers")
                await self.pause(self.settle)
                for n in range(40):
                    await transport.publish(topic, self.envelope({"n": n}, key=f"k{n % 8}"))
                deadline = time.monotonic() + self.delivery_timeout
                while len(a.items) + len(b.items) < 40 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await self.pause(self.quiet_period)
                seen = sorted(p["n"] for p in a.payloads + b.payloads)
                assert seen == list(range(40)), "each message goes to exactly one member of a group"
            finally:
                await transport.close()

        self.run(body)

    def test_unacked_message_is_redelivered_when_at_least_once(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                inbox = Inbox(transport, fail_first=1)
                topic = self.topic("redeliver")
                await transport.subscribe(topic, inbox)
                await self.pause(self.settle)
                await transport.publish(topic, self.envelope({"n": 1}))
                if transport.guarantee is DeliveryGuarantee.AT_LEAST_ONCE:
                    await inbox.wait_for(1, self.delivery_timeout)
                    assert inbox.attempts >= 2 and inbox.payloads == [{"n": 1}]
                else:
                    await self.pause(self.quiet_period)
                    assert inbox.attempts == 1 and inbox.payloads == []
            finally:
                await transport.close()

        self.run(body)

    def test_bad_patterns_and_topics_are_refused(self) -> None:
        async def body() -> None:
            transport = await self.connected()
            try:
                for pattern in ("a/#/b", "a/b+", ""):
                    with pytest.raises(ValueError):
                        await transport.subscribe(pattern, Inbox(transport))
                for topic in ("a/+/b", "a/#", ""):
                    with pytest.raises(ValueError):
                        await transport.publish(topic, self.envelope({"n": 1}))
            finally:
                await transport.close()

        self.run(body)
