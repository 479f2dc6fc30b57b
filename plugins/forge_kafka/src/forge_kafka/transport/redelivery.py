"""A callback that raised: deliver again, then dead-letter — or, for :class:`forge_core.Redeliver`,
rewind and deliver again until it is handled.

Any exception: the record (or run of records) is delivered again in place up to
``max_redeliveries`` times (``retry_backoff`` doubling in between); if it still raises, each record
goes to the dead-letter topic (``dead_letters.py``) and its offset is stored: nothing is lost and
nothing blocks the partition for good.

``Redeliver`` ("not yet": the database is unreachable) is a failure that passes: after the same
redeliveries nothing is dead-lettered or stored; the batch stops there, and the poll thread seeks
each partition back to its first record not handled and waits (``retry_backoff`` doubling up to
``retry_backoff_max``, growing with each rewind in a row) before fetching again. The poll thread
keeps polling between rewinds, so the consumer stays in its group and rebalances go on; a
partition that moves meanwhile starts at its committed offset on its next owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException, Message, TopicPartition
from forge_core import Envelope, RawMessage, Redeliver
from forge_core.tactics import Backoff
from forge_core.transport import BatchCallback

from forge_kafka.transport.admin import to_forge
from forge_kafka.transport.dead_letters import record_position

if TYPE_CHECKING:
    from forge_kafka.transport.subscriber import KafkaSubscription

log = logging.getLogger("forge.transport.kafka")

#: A place holder in a run for a record that is not for this subscription (kept for its offset).
SKIP = RawMessage(b"")


def redelivery_backoff(sub: KafkaSubscription) -> Backoff | None:
    """``retry_backoff`` doubling per redelivery (none when it is 0)."""
    settings = sub.settings
    if not settings.retry_backoff:
        return None
    return Backoff(initial=settings.retry_backoff,
                   maximum=settings.retry_backoff * 2 ** max(settings.max_redeliveries - 1, 0))


def rewind_backoff(sub: KafkaSubscription) -> Backoff:
    """The pause before fetching again after a rewind: ``retry_backoff`` (0.1 s if 0) doubling up
    to ``retry_backoff_max``."""
    first = sub.settings.retry_backoff or 0.1
    return Backoff(initial=first, maximum=max(sub.settings.retry_backoff_max, first))


async def deliver_run(sub: KafkaSubscription, kafka_topic: str, run: list[Envelope | RawMessage],
                      records: list[Message], callback: BatchCallback, done: dict[tuple[str, int], int], *,
                      skips: bool = True) -> bool:
    """Deliver one run of records of one topic, again if the callback raises; then mark it done
    (handled or dead-lettered). False: it raised Redeliver each time, nothing of it is done, and
    the caller rewinds (:func:`rewind_from`). ``skips`` False: no SKIP in ``run`` (every record is
    of ``kafka_topic`` and delivered: ``run`` goes to the callback as it is, no copy)."""
    stats = sub.connection.stats
    wanted = [raw for raw in run if raw is not SKIP] if skips else run
    stats["consumed"] += len(wanted)
    if wanted:
        topic = to_forge(kafka_topic)
        settings = sub.settings
        backoff = redelivery_backoff(sub)
        error: Exception | None = None
        for attempt in range(settings.max_redeliveries + 1):
            if attempt:
                stats["redelivered"] += len(wanted)
                if backoff is not None:
                    await asyncio.sleep(backoff.next())
            try:
                await callback(topic, wanted)
                stats["handled"] += len(wanted)
                error = None
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again, then dead-letter
                error = exc
                if sub.stopped:
                    return True
        if isinstance(error, Redeliver):
            not_yet(sub, kafka_topic, len(wanted), error)
            return False
        if error is not None:
            log.error("kafka %s: giving up on a batch of %d from %s for %s after %d deliveries: %s",
                      sub.transport.name, len(wanted), kafka_topic, sub.owner or sub.pattern,
                      settings.max_redeliveries + 1, error)
            for raw, message in zip(run, records, strict=True):
                if raw is not SKIP:
                    await sub.dead_letter(message, error, settings.max_redeliveries + 1)
    if not skips:  # every record of kafka_topic: its partition and offset only, kept by partition (no tuple each)
        last: dict[int, int] = {}
        for message in records:
            last[message.partition()] = message.offset()  # type: ignore[index,assignment]
        for partition, offset in last.items():
            done[(kafka_topic, partition)] = offset
        return True
    for message in records:  # record_position inlined: its call and tuple per record cost ~0.3 µs
        # a fetched record always has them (SKIP entries may be of another topic: read each one's)
        done[(message.topic(), message.partition())] = message.offset()  # type: ignore[index,assignment]
    return True


async def redeliver(sub: KafkaSubscription, message: Message, raw: RawMessage, error: Exception) -> bool:
    """One record's first delivery raised: call again up to ``max_redeliveries`` times, then
    dead-letter; False if it raised Redeliver each time (not dead-lettered: the caller rewinds)."""
    stats = sub.connection.stats
    settings = sub.settings
    kafka_topic, partition, offset = record_position(message)
    topic = to_forge(kafka_topic)
    backoff = redelivery_backoff(sub)
    for _attempt in range(settings.max_redeliveries):
        stats["redelivered"] += 1
        if backoff is not None:
            await asyncio.sleep(backoff.next())
        try:
            await sub.callback(topic, raw)
            stats["handled"] += 1
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again
            error = exc
    if isinstance(error, Redeliver):
        not_yet(sub, kafka_topic, 1, error)
        return False
    log.error("kafka %s: giving up on %s[%d]@%d for %s after %d deliveries: %s", sub.transport.name,
              kafka_topic, partition, offset, sub.owner or sub.pattern, settings.max_redeliveries + 1, error)
    await sub.dead_letter(message, error, settings.max_redeliveries + 1)
    return True


def not_yet(sub: KafkaSubscription, kafka_topic: str, count: int, error: Redeliver) -> None:
    sub.connection.stats["redeliver_asked"] += count
    sub.connection.logs.emit(
        logging.WARNING, f"redeliver|{sub.group_id}|{kafka_topic}",
        f"kafka {sub.transport.name}: {sub.owner or sub.pattern} raised Redeliver on {count} record(s) of "
        f"{kafka_topic} after {sub.settings.max_redeliveries + 1} deliveries ({error}); rewinding: they are "
        f"delivered again, not dead-lettered")


def rewind_from(sub: KafkaSubscription, records: Sequence[Message]) -> None:
    """Nothing from these records on is handled: the poll thread will seek each partition back to
    its first one among them (the batch's later records are fetched again)."""
    rewind = sub.rewind
    for message in records:
        if message.error() is None:
            kafka_topic, partition, offset = record_position(message)
            key = (kafka_topic, partition)
            rewind[key] = min(offset, rewind.get(key, offset))


def seek_back(sub: KafkaSubscription) -> None:
    """On the poll thread, after a batch that asked for a rewind: seek, measure, pause."""
    rewind, sub.rewind = sub.rewind, {}
    for (topic, partition), offset in rewind.items():
        try:
            sub.consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:  # no longer held: its next owner starts at the committed offset
            log.debug("kafka %s: seek %s[%d]@%d: %s", sub.transport.name, topic, partition, offset, exc)
    sub.connection.stats["rewound"] += 1
    sub.partitions.measure(sub.consumer)
    sub.pause(sub.rewind_wait.next())
