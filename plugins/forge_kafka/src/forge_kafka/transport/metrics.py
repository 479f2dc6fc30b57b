"""OpenTelemetry instruments of the Kafka transport, on the plant's meter provider
(``TransportContext.meter_provider``; none when the plant's telemetry is off).

Instrument names are public (dashboards depend on them):

- ``forge.kafka.consumer.lag`` (observable gauge, ``{message}``): per subscription and held
  partition, what :meth:`KafkaSubscription.lag` says, read at each collection.
- ``forge.kafka.rebalances`` (counter, ``{rebalance}``): partition changes a consumer went
  through, by ``forge.kafka.rebalance.kind`` (``assigned``, ``revoked``, ``lost``).
- ``forge.kafka.produce.errors`` (counter, ``{error}``): records the producer could not deliver,
  by ``error.type`` (librdkafka's error name) and ``forge.kafka.outcome``: ``failed`` (given up:
  logged, ``publish_failed``) or ``resent`` (held and sent again by a new producer).

Attributes follow OpenTelemetry's messaging conventions: ``messaging.destination.name`` (the Kafka
topic name), ``messaging.destination.partition.id``, ``messaging.consumer.group.name`` (the group
id), plus ``forge.transport`` (the transport's name in the manifest).

Every transport on one meter provider shares one set of instruments (an SDK meter returns the
existing instrument for a name already created, and would drop a second gauge's callback).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

if TYPE_CHECKING:
    from forge_kafka.transport.transport import KafkaTransport

__all__ = ["LAG", "PRODUCE_ERRORS", "REBALANCES", "KafkaMetrics", "kafka_metrics"]

LAG = "forge.kafka.consumer.lag"
REBALANCES = "forge.kafka.rebalances"
PRODUCE_ERRORS = "forge.kafka.produce.errors"

_shared: weakref.WeakKeyDictionary[MeterProvider, KafkaMetrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def kafka_metrics(provider: MeterProvider) -> KafkaMetrics:
    """The instruments on ``provider``, made on first use."""
    with _lock:
        metrics = _shared.get(provider)
        if metrics is None:
            metrics = _shared[provider] = KafkaMetrics(provider)
        return metrics


class KafkaMetrics:
    """The three instruments, and the transports whose consumers the lag gauge reads."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("forge_kafka")
        self._transports: weakref.WeakSet[KafkaTransport] = weakref.WeakSet()
        self.rebalances = meter.create_counter(
            REBALANCES, unit="{rebalance}",
            description="Partition changes of a Kafka consumer: assigned, revoked or lost partitions")
        self.produce_errors = meter.create_counter(
            PRODUCE_ERRORS, unit="{error}",
            description="Records the Kafka producer could not deliver (failed) or handed to a new producer (resent)")
        meter.create_observable_gauge(
            LAG, callbacks=[self._observe_lag], unit="{message}",
            description="Records of a held partition the consumer has not handed to its handler yet")

    def watch(self, transport: KafkaTransport) -> None:
        """Report ``transport``'s consumers' lag (until it is closed or collected)."""
        self._transports.add(transport)

    def forget(self, transport: KafkaTransport) -> None:
        self._transports.discard(transport)

    def rebalance(self, kind: str, group_id: str, transport: str) -> None:
        self.rebalances.add(1, {"forge.kafka.rebalance.kind": kind, "messaging.consumer.group.name": group_id,
                                "forge.transport": transport})

    def produce_error(self, topic: str, error: str, outcome: str, transport: str) -> None:
        self.produce_errors.add(1, {"messaging.destination.name": topic, "error.type": error,
                                    "forge.kafka.outcome": outcome, "forge.transport": transport})

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        for transport in list(self._transports):
            for sub in list(transport.subscriptions):
                for (topic, partition), lag in sub.partitions.lags.items():
                    observations.append(Observation(lag, {
                        "messaging.destination.name": topic, "messaging.destination.partition.id": str(partition),
                        "messaging.consumer.group.name": sub.group_id, "forge.transport": transport.name}))
        return observations
