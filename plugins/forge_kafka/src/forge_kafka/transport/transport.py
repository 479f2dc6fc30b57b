"""The Kafka transport: confluent-kafka under Forge's :class:`forge_core.transport.Transport`.

A thin class composing the parts, as FastStream's brokers do: :mod:`.connection` (the clients on
the event loop, the producer's poll thread, the stall watchdog), :mod:`.publisher` (produce,
confirmed sends, re-send after a producer replacement), :mod:`.subscriber` (one consumer per
subscription, offsets after handling, redelivery, dead-letter topics) and :mod:`.admin` (topic
names and creation). :func:`kafka_factory` is what the plugin registers.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_core import Envelope, TransportClosed
from forge_core.transport import (
    BatchCallback,
    DeliveryGuarantee,
    Health,
    MessageCallback,
    Transport,
    TransportContext,
    is_wildcard,
    validate_pattern,
)

from forge_kafka.settings import KafkaSettings, TopicSpec
from forge_kafka.transport.connection import KafkaConnection
from forge_kafka.transport.metrics import kafka_metrics
from forge_kafka.transport.publisher import KafkaPublisher
from forge_kafka.transport.subscriber import KafkaSubscription

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["KafkaTransport", "kafka_factory"]


class KafkaTransport(Transport):
    """Forge transport over Kafka (any broker speaking the Kafka protocol)."""

    type_name = "kafka"
    header_prefix = "ce_"
    guarantee = DeliveryGuarantee.AT_LEAST_ONCE

    def __init__(self, name: str = "kafka", settings: KafkaSettings | Mapping[str, Any] | None = None, *,
                 plant: str = "forge", meter_provider: MeterProvider | None = None, **options: Any) -> None:
        """``meter_provider``: where the transport's OpenTelemetry instruments go (metrics.py); the
        runtime passes the plant's (``TransportContext.meter_provider``); None: no metrics."""
        super().__init__(name)
        if isinstance(settings, KafkaSettings):
            if options:
                raise TypeError("pass either a KafkaSettings or keyword settings, not both")
            self.settings = settings
        else:  # a plain mapping (tests, benchmarks): the same validation and defaults as a manifest
            self.settings = KafkaSettings.load({**(settings or {}), **options}, where=f"transports.{name}.settings")
        self.connection = KafkaConnection(name, self.settings, plant)
        self.publisher = KafkaPublisher(self.connection, self)
        # The bus calls the publisher's plain function instead of awaiting publish(): no coroutine
        # per message while librdkafka takes them (Transport.direct_publish); not if a subclass
        # changed publish.
        if type(self).publish is KafkaTransport.publish:
            self.direct_publish = self.publisher.direct_publish
        self.subscriptions: set[KafkaSubscription] = set()
        self._member_count: Counter[str] = Counter()
        if meter_provider is not None:
            self.connection.metrics = kafka_metrics(meter_provider)
            self.connection.metrics.watch(self)

    @property
    def plant(self) -> str:
        """The plant name: prefix of consumer group ids and of the default client.id."""
        return self.connection.plant

    @plant.setter
    def plant(self, value: str) -> None:
        self.connection.plant = value

    def group_id(self, pattern: str, group: str | None, owner: str | None) -> str:
        """The consumer group of a subscription (``group_template``; the pattern is in the default
        so two handlers of one component on overlapping patterns each see every message)."""
        return self.settings.group_template.format(plant=self.plant, group=group or owner, pattern=pattern)

    # -- life cycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        await self.connection.connect(self.publisher.on_structured_report)

    async def close(self) -> None:
        if self.connection.closed:
            return
        self.connection.closed = True
        for sub in list(self.subscriptions):
            await sub.cancel()
        await self.connection.close()
        if self.connection.metrics is not None:
            self.connection.metrics.forget(self)

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.publisher.publish(topic, envelope)

    async def publish_batch(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        await self.publisher.publish_batch(topic, envelopes)

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait until every queued message is acknowledged; returns how many are still queued."""
        return await self.publisher.flush(timeout)

    # -- subscribing ---------------------------------------------------------------------------
    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> KafkaSubscription:
        return await self._subscribe(pattern, callback, None, group=group, owner=owner)

    async def subscribe_batch(self, pattern: str, callback: BatchCallback, *, group: str | None = None,
                              owner: str | None = None) -> KafkaSubscription:
        """Each run of records of one topic in what one fetch returned (up to ``batch_size``) goes to
        ``callback`` as one list; its offsets are stored once it returned. A callback that raises
        gets the whole run again (``max_redeliveries``), then each record is dead-lettered."""

        async def one(topic: str, message: Any) -> None:  # the subscription's per-record form
            await callback(topic, [message])

        return await self._subscribe(pattern, one, callback, group=group, owner=owner)

    async def _subscribe(self, pattern: str, callback: MessageCallback, batch_callback: BatchCallback | None, *,
                         group: str | None, owner: str | None) -> KafkaSubscription:
        if self.connection.closed or self.connection.loop is None:
            state = "closed" if self.connection.closed else "not connected"
            raise TransportClosed(f"kafka transport {self.name!r} is {state}; cannot subscribe to {pattern!r}")
        validate_pattern(pattern)
        ephemeral = group is None and owner is None
        group_id = f"{self.plant}.anon-{uuid.uuid4().hex[:12]}" if ephemeral else self.group_id(pattern, group, owner)
        instance_id = None
        if self.settings.instance_id and not ephemeral:
            self._member_count[group_id] += 1
            instance_id = f"{self.settings.instance_id}-{self.name}-{self._member_count[group_id]}"
        if not is_wildcard(pattern) and self.settings.create_topics:
            await self.ensure_topic(pattern)
        sub = KafkaSubscription(self, pattern, callback, group=group, owner=owner, group_id=group_id,
                                ephemeral=ephemeral, instance_id=instance_id, batch_callback=batch_callback)
        sub.start()
        self.subscriptions.add(sub)
        return sub

    async def ensure_topic(self, topic: str, spec: TopicSpec | None = None) -> None:
        """Create ``topic`` (a Forge topic) unless it is known to exist."""
        await self.connection.ensure_topic(topic, spec)

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> Health:
        stats: dict[str, Any] = {**self.connection.stats, "subscriptions": len(self.subscriptions)}
        if self.connection.published:  # counted apart from ``stats`` (connection.py); absent at 0 as before
            stats["published"] = self.connection.published
        lag = self._lag()
        if lag is not None:
            stats["lag"] = lag
        connected = self.connection.connected and not self.connection.closed
        return Health(connected=connected, detail=self.connection.detail(), stats=stats)

    def _lag(self) -> int | None:
        """Records not yet consumed on assigned partitions, as last measured by the poll threads."""
        lags = [sub.lag_total for sub in list(self.subscriptions) if sub.lag_total is not None]
        return sum(lags) if lags else None


def kafka_factory(name: str, settings: KafkaSettings, context: TransportContext) -> KafkaTransport:
    """The registered factory: ``settings`` is the validated model; the plant name prefixes
    consumer group ids, so two plants on one cluster never share a group; the metrics go to the
    plant's meter provider."""
    return KafkaTransport(name, settings, plant=context.plant, meter_provider=context.meter_provider)
