"""Records refused with MSG_SIZE_TOO_LARGE: the broker refuses a whole batch over the topic's
``max.message.bytes``, the records that fit with the one that does not. Each record of it is judged
on its own: one over the limit (its size as a batch of one) is given up at once (a dead letter), the
others are produced once more, in publish order; a record refused again is given up then."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from forge_kafka.transport.admin import topic_max_message_bytes
from forge_kafka.transport.connection import KafkaConnection, needs_new_producer
from forge_kafka.transport.undeliverable import GiveUp, Record

#: Bytes a record batch of one record adds to its key, value and headers (the v2 batch header 61,
#: the record's lengths and deltas ~21): a record is judged too large when these and it pass the limit.
BATCH_OF_ONE = 82

#: (seq, topic, value, key, headers, partition)
Refused = tuple[int, str, bytes | None, bytes | None, Any, int]


def size_alone(value: bytes | None, key: bytes | None, headers: Any) -> int:
    """Bytes of a record batch holding only this record (uncompressed), as the broker measures it."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
    extra = sum(len(name) + len(item or b"") + 4 for name, item in pairs)
    return BATCH_OF_ONE + len(value or b"") + len(key or b"") + extra


class TooLarge:
    """Produces refused records once more, or gives them up, on the event loop."""

    def __init__(self, connection: KafkaConnection, give_up: GiveUp,
                 report: Callable[[Any, int], Callable[[KafkaError | None, Any], None]]) -> None:
        self.connection = connection
        self.give_up = give_up
        self.report = report  # (headers, seq) -> the record's delivery callback when produced again
        self.limits: dict[str, int | None] = {}
        self._refused: list[Refused] = []
        self._task: asyncio.Future[None] | None = None

    def refused(self, seq: int, message: Any, headers: Any) -> None:
        """A record whose batch was refused (poll thread)."""
        loop = self.connection.loop
        with self.connection.lock:
            first = not self._refused
            self._refused.append((seq, message.topic() or "", message.value(), message.key(), headers,
                                  message.partition()))
        if first and loop is not None:
            loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._again())

    async def _again(self) -> None:
        loop = asyncio.get_running_loop()
        compressed = str(self.connection.producer_conf.get("compression.type",
                         self.connection.producer_conf.get("compression.codec", "none"))) != "none"
        while True:
            with self.connection.lock:
                refused, self._refused = sorted(self._refused, key=lambda entry: entry[0]), []
            if not refused:
                return
            admin = self.connection.admin
            for topic in {entry[1] for entry in refused} - set(self.limits):
                self.limits[topic] = None if admin is None or compressed else await loop.run_in_executor(
                    None, topic_max_message_bytes, admin, topic)
            for seq, topic, value, key, headers, partition in refused:  # publish order
                limit, size = self.limits[topic], size_alone(value, key, headers)
                if limit is not None and size > limit:
                    error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE,
                                       f"the record alone is ~{size} bytes, over the topic's max.message.bytes {limit}")
                    self.give_up.record(error, Record(topic, value, key, partition), headers)
                    continue
                await self._produce(topic, value, key, headers, self.report(headers, seq))

    async def _produce(self, topic: str, value: bytes | None, key: bytes | None, headers: Any, report: Any) -> None:
        while (producer := self.connection.producer) is not None:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=report)
                return
            except BufferError:  # local queue full: let the poller drain it
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is None or not needs_new_producer(error):
                    self.give_up.record(error or KafkaError(KafkaError._FAIL, str(exc)),
                                        Record(topic, value, key), headers)
                    return
                self.connection.request_replacement(producer, f"fatal: {error.str()}")
                self.connection.replace_producer(producer)
        self.give_up.record(KafkaError(KafkaError._DESTROY, "the transport closed"), Record(topic, value, key),
                            headers)
