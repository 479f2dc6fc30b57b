"""Records the publisher gives up on: which delivery errors are final, and a dead letter for each.

librdkafka retries what it can itself (a lost connection, a leader change, NOT_ENOUGH_REPLICAS, ...)
until ``message.timeout.ms``; a delivery report with an error is its last word on a record. What the
publisher does then depends on the error (:func:`classify`, the table in docs/transports/kafka.md):

- ``resend``: a new producer can deliver it (purged by a replacement, the producer went fatal, the
  broker forgot the producer id): held and re-sent on the successor in publish order (connection.py);
- ``retry``: MSG_SIZE_TOO_LARGE the first time: the broker refuses a whole batch over the topic's
  ``max.message.bytes``, the records that fit with it; a record over the limit on its own is given
  up, the others are produced once more, and a record refused again is given up (too_large.py);
- ``give_up``: anything else (timed out in librdkafka's queue, not authorized, unknown topic,
  invalid record, too large again, a ``resend`` one while the transport closes): the record goes to
  the transport's ``on_undeliverable`` (the runtime's ``undeliverable`` dead letter) with its bytes,
  its key (header ``forge_kafka_key``) and a :class:`KafkaUndeliverable` naming the error, topic,
  partition and broker. Never for a ``confirm_publish`` caller: it gets the exception instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from confluent_kafka import KafkaError
from forge_core import RawMessage, TransportError
from forge_core.transport import UndeliverableCallback

from forge_kafka.transport.admin import to_forge
from forge_kafka.transport.connection import KafkaConnection, needs_new_producer

log = logging.getLogger("forge.transport.kafka")

Action = Literal["resend", "retry", "give_up"]

#: Refused for the batch it came in: produced once more (alone, or with records that fit), then given up.
RETRY_ONCE_CODES = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})

#: Header of a dead letter's RawMessage carrying the record's key (RawMessage has no key of its own).
KEY_HEADER = "forge_kafka_key"


def classify(error: KafkaError, *, retried: bool = False, giving_up: bool = False) -> Action:
    """What the publisher does with a record whose delivery report carries ``error``; ``retried``:
    the record was already produced once more after MSG_SIZE_TOO_LARGE; ``giving_up``: the
    transport is closing (or the report came after ``replace_timeout``), so no successor will
    re-send it."""
    if needs_new_producer(error):
        return "give_up" if giving_up else "resend"
    if error.code() in RETRY_ONCE_CODES and not retried and not giving_up:
        return "retry"
    return "give_up"


class KafkaUndeliverable(TransportError):
    """The publisher gave up on a record: the error named (code, topic, partition, size, broker)."""

    def __init__(self, transport: str, error: KafkaError, topic: str, partition: int | None, size: int,
                 broker: str) -> None:
        where = f"partition {partition}" if partition is not None and partition >= 0 else "no partition"
        super().__init__(f"kafka transport {transport!r}: gave up on a record of {size} bytes to {topic!r} "
                         f"({where}) on {broker}: {error.name()} ({error.str()})")
        self.code = error.code()
        self.code_name = error.name()
        self.topic = topic
        self.partition = partition
        self.size = size
        self.broker = broker


class Record:
    """What a delivery report's message offers the publisher, for a record that has no report (held
    by the connection when the transport closes)."""

    __slots__ = ("_key", "_partition", "_topic", "_value")

    def __init__(self, topic: str, value: bytes | None, key: bytes | None, partition: int = -1) -> None:
        self._topic, self._value, self._key, self._partition = topic, value, key, partition

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def partition(self) -> int:
        return self._partition


class GiveUp:
    """Turns a record the publisher gives up on into a call of the transport's ``on_undeliverable``,
    on the event loop's thread (reports come on the producer's poll thread)."""

    def __init__(self, connection: KafkaConnection, undeliverable: Callable[[], UndeliverableCallback | None]) -> None:
        self.connection = connection
        self.undeliverable = undeliverable

    def record(self, error: KafkaError, message: Any, headers: Any) -> None:
        """Give up on the record of ``message`` (a confluent-kafka Message or a :class:`Record`); any thread."""
        connection = self.connection
        topic = message.topic() or ""
        value: bytes = message.value() or b""
        key: bytes | None = message.key()
        connection.stats["publish_failed"] += 1
        connection.last_error = str(error)
        exc = KafkaUndeliverable(connection.name, error, topic, message.partition(), len(value),
                                 connection.settings.bootstrap)
        connection.logs.emit(logging.ERROR, f"undeliverable|{error.code()}|{topic}",
                             f"{exc}: dead-lettered (undeliverable)")
        record_headers = {name: item.decode("utf-8", "replace") if isinstance(item, bytes) else item
                          for name, item in _pairs(headers) if item is not None}
        if key is not None:
            record_headers[KEY_HEADER] = key.decode("utf-8", "replace")
        raw = RawMessage(value, record_headers)
        loop = connection.loop
        try:
            if loop is None:
                raise RuntimeError("no event loop")
            loop.call_soon_threadsafe(self._report, to_forge(topic), raw, exc)
        except RuntimeError:  # the loop is gone: the log is all that is left
            log.error("kafka %s: %s; LOST: the event loop is closed, no dead letter (%d bytes: %r)",
                      connection.name, exc, len(value), value[:200])

    def _report(self, topic: str, raw: RawMessage, exc: KafkaUndeliverable) -> None:
        self.connection.stats["publish_undeliverable"] += 1
        callback = self.undeliverable()
        if callback is None:  # not run by the runtime (a bare transport): say it loudly
            log.error("kafka %s: %s; no dead-letter channel is set (on_undeliverable): the record is only "
                      "logged (%d bytes: %r)", self.connection.name, exc, len(raw.body), raw.body[:200])
            return
        callback(topic, raw, exc)


async def settle() -> None:
    """Let the reports hopped to the event loop (call_soon_threadsafe) run."""
    for _ in range(3):
        await asyncio.sleep(0)


def _pairs(headers: Any) -> list[tuple[str, Any]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)
