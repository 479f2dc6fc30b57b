"""The partitions of one subscription: what it holds, its lag per partition, its partition events.

librdkafka calls the rebalance callbacks on the subscription's poll thread (inside ``poll`` or
``consume``); listeners run on the event loop. Each change hops there with
``call_soon_threadsafe``, as batches do (``run_coroutine_threadsafe``), and the loop runs
callbacks in the order they were scheduled: a listener hears of an assignment before any record
of it is delivered, and of a revocation after the last batch of it was handled.

Lag is Kafka's ``records-lag``: the high watermark the consumer last saw for a partition minus its
position (the offset after the last record handed to the handler); before any record was handed
over, the group's committed offset stands for the position. librdkafka learns the high watermark
from fetch responses, and stops fetching a partition while it holds ``queued.min.messages``
(100,000) records of it that were not consumed yet: beyond that backlog the figure is a lower bound.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Literal

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, TopicPartition
from forge_core.transport import PartitionChange, PartitionListeners

from forge_kafka.transport.admin import to_forge

if TYPE_CHECKING:
    from forge_kafka.transport.subscriber import KafkaSubscription

log = logging.getLogger("forge.transport.kafka")

Kind = Literal["assigned", "revoked", "lost"]

#: Seconds the poll thread waits for the committed offsets of a newly held partition (once).
_COMMITTED_TIMEOUT = 1.0


class Partitions:
    """Held partitions (Kafka names), lags and listeners of one :class:`KafkaSubscription`."""

    def __init__(self, subscription: KafkaSubscription) -> None:
        self.subscription = subscription
        self.listeners = PartitionListeners(subscription)
        #: (kafka topic, partition) -> records not yet handed over; replaced whole (read by other threads).
        self.lags: dict[tuple[str, int], int] = {}
        #: Where the group starts on a partition held but not consumed from yet (committed offset).
        self._start: dict[tuple[str, int], int] = {}

    # -- rebalance callbacks (poll thread) ---------------------------------------------------
    def changed(self, kind: Kind, partitions: list[TopicPartition]) -> None:
        sub = self.subscription
        pairs = tuple(sorted({(p.topic, p.partition) for p in partitions}))
        if not pairs:  # a cooperative rebalance that changed nothing for this member
            return
        if kind == "assigned":
            sub.assigned.update(pairs)
            sub.assigned_event.set()
        else:
            sub.assigned.difference_update(pairs)
            gone = set(pairs)
            self.lags = {tp: lag for tp, lag in self.lags.items() if tp not in gone}
            for tp in gone:
                self._start.pop(tp, None)
        connection = sub.connection
        connection.stats[f"partitions_{kind}"] += len(pairs)
        if connection.metrics is not None:
            connection.metrics.rebalance(kind, sub.group_id, connection.name)
        log.info("kafka %s: %s %s partition(s) %s", connection.name, sub.group_id, kind,
                 ", ".join(f"{topic}[{partition}]" for topic, partition in pairs))
        # Scheduled even with no listener yet: it is looked up when the loop runs it, so a listener
        # added right after subscribe() (no await in between) hears of the first assignment.
        loop = connection.loop
        if loop is None or loop.is_closed():
            return
        change = PartitionChange(kind, sub.group_id, tuple((to_forge(topic), p) for topic, p in pairs))
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody left to tell
            loop.call_soon_threadsafe(self.listeners.notify, change)

    # -- lag (poll thread) ---------------------------------------------------------------------
    def measure(self, consumer: Consumer) -> None:
        """Lag per held partition, from cached watermarks (no request) and positions; the
        committed offset (one request, once per newly held partition) before any record came."""
        sub = self.subscription
        held = [TopicPartition(topic, partition) for topic, partition in list(sub.assigned)]
        if not held:
            self.lags, sub.lag_total = {}, None
            return
        try:
            positions = consumer.position(held)
            unknown = [tp for tp in positions if tp.offset < 0 and (tp.topic, tp.partition) not in self._start]
            if unknown:
                for tp in consumer.committed(unknown, timeout=_COMMITTED_TIMEOUT):
                    if tp.error is None:
                        self._start[(tp.topic, tp.partition)] = tp.offset
            lags: dict[tuple[str, int], int] = {}
            for tp in positions:
                key = (tp.topic, tp.partition)
                low, high = consumer.get_watermark_offsets(tp, cached=True) or (OFFSET_INVALID, OFFSET_INVALID)
                position = tp.offset
                if position < 0:  # nothing handed over since it was assigned: where the group starts
                    position = self._start.get(key, OFFSET_INVALID - 1)
                    if position == OFFSET_INVALID:  # no committed offset: auto.offset.reset decides
                        position = low if sub.starts_at_earliest else high
                if high >= 0 and position >= 0:
                    lags[key] = max(high - position, 0)
        except (KafkaException, RuntimeError):  # broker unreachable, or the consumer closed meanwhile
            return
        self.lags = lags
        sub.lag_total = sum(lags.values()) if lags else None

