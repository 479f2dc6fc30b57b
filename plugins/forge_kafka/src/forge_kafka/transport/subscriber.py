"""Delivery: one consumer per subscription, batches, offsets after handling, redelivery, dead letters.

Each subscription owns one consumer and one thread: the thread takes a batch (``poll`` then
``consume``), hands it to the event loop and waits; the loop awaits the callback per message, in
order, and when the batch is done (or stopped) stores per partition the offset after the last
record handled, which librdkafka's auto-commit sends to the broker (``enable.auto.offset.store=
false``): an offset is committed only after its handler returned — at least once. A callback that
raises is called again (``max_redeliveries``); then the message goes to ``<topic>.dlq`` with the
reason in headers (``dead_letters.py``) and is committed, so nothing is lost and nothing blocks the
partition forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from forge_core import Envelope, RawMessage
from forge_core.tactics import Backoff
from forge_core.transport import BatchCallback, MessageCallback, Subscription, is_wildcard, matches

from forge_kafka.transport.admin import pattern_to_kafka, to_forge
from forge_kafka.transport.dead_letters import dead_letter, record_position
from forge_kafka.transport.logs import kind_of

if TYPE_CHECKING:
    from forge_kafka.transport.transport import KafkaTransport

log = logging.getLogger("forge.transport.kafka")

#: A place holder in a run for a record that is not for this subscription (kept for its offset).
_SKIP = RawMessage(b"")

#: Errors a consumer reports that are not worth a warning (a topic not there yet, end of partition).
_QUIET = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF)

_RawHeaders = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


def _decode_headers(pairs: _RawHeaders) -> dict[str, str]:
    if not pairs:
        return {}
    items = cast("list[tuple[str, bytes]]", pairs)  # a fetched record's headers: (str, bytes) pairs
    try:
        return {k: v.decode() for k, v in items}
    except (AttributeError, UnicodeDecodeError):  # a null or non-UTF-8 value from a foreign client
        return {k: v.decode("utf-8", "replace") if v is not None else "" for k, v in items}


class KafkaSubscription(Subscription):
    """One consumer in one group, polled by its own thread."""

    def __init__(self, transport: KafkaTransport, pattern: str, callback: MessageCallback, *,
                 group: str | None, owner: str | None, group_id: str, ephemeral: bool,
                 instance_id: str | None, batch_callback: BatchCallback | None = None) -> None:
        self.transport = transport
        self.connection = transport.connection
        self.settings = settings = transport.settings
        self.pattern = pattern
        self.group = group
        self.owner = owner
        self.group_id = group_id
        self.callback = callback
        #: Set for subscribe_batch: runs of records of one topic go to it as one list.
        self.batch_callback = batch_callback
        self.wildcard = is_wildcard(pattern)
        self.kafka_subscription = pattern_to_kafka(pattern)
        #: Anonymous subscriptions get a fresh group that starts at the earliest offset (so a
        #: topic created after subscribing is read from its start) but skip records older than
        #: the subscription: they see what is published after subscribe(), as MQTT does.
        self.ephemeral = ephemeral
        self.start_ms = int(time.time() * 1000)
        self.assigned: set[tuple[str, int]] = set()
        self.assigned_event = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._batch_task: asyncio.Future[None] | None = None
        self.lag_total: int | None = None
        conf: dict[str, Any] = {
            **self.connection.common_config(),
            "group.id": group_id,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": 1000,
            "auto.offset.reset": "earliest" if ephemeral else settings.auto_offset_reset,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": min(settings.heartbeat_interval_ms, settings.session_timeout_ms // 3),
            "max.poll.interval.ms": max(settings.max_poll_interval_ms, settings.session_timeout_ms),
            "topic.metadata.refresh.interval.ms": settings.metadata_refresh_ms,
            "enable.partition.eof": False,
            **settings.consumer,
        }
        if instance_id:
            conf["group.instance.id"] = instance_id
        self.consumer = Consumer(conf)  # librdkafka's log lines: the connection's rate-limited logger
        self.thread = threading.Thread(target=self._poll_loop, name=f"forge-kafka-{transport.name}-{pattern}",
                                       daemon=True)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- rebalance callbacks (poll thread) ---------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update((p.topic, p.partition) for p in partitions)
        self.assigned_event.set()
        log.debug("%s: assigned %s", self.group_id, [(p.topic, p.partition) for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every handled offset is already stored; commit it now so the next owner of these
        # partitions starts right after it (no duplicate for a clean hand-over).
        with contextlib.suppress(KafkaException):
            consumer.commit(asynchronous=False)
        self.assigned.difference_update((p.topic, p.partition) for p in partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.difference_update((p.topic, p.partition) for p in partitions)

    # -- the poll thread ---------------------------------------------------------------------
    def start(self) -> None:
        self.consumer.subscribe([self.kafka_subscription], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.thread.start()

    def _poll_loop(self) -> None:
        loop = self.connection.loop
        assert loop is not None
        batch_size = self.settings.batch_size
        batch_wait = self.settings.batch_wait_ms / 1000.0
        next_lag = 0.0
        try:
            while not self._stop.is_set():
                try:
                    # poll() returns as soon as one record is there; consume(n, timeout) alone would wait
                    # the whole timeout for n records (up to 100 ms per hop at a low rate). Behind the
                    # first record the batch fills for at most batch_wait_ms: one hand-over to the event
                    # loop per batch, not per record, when records stream in.
                    first = self.consumer.poll(0.1)
                    messages = [] if first is None else [first]
                    if first is not None and batch_size > 1:
                        messages += self.consumer.consume(num_messages=batch_size - 1, timeout=batch_wait)
                except KafkaException as exc:
                    self.connection.logs.emit(logging.WARNING, f"consume|{kind_of(str(exc))}",
                                              f"kafka {self.transport.name}: consume failed on {self.group_id}: {exc}")
                    time.sleep(0.5)
                    continue
                if time.monotonic() >= next_lag:
                    self.lag_total = self._measure_lag()
                    next_lag = time.monotonic() + 1.0
                if not messages or self._stop.is_set():
                    continue
                future = asyncio.run_coroutine_threadsafe(self._handle_batch(messages), loop)
                try:
                    future.result()
                except Exception:  # cancelled at close, or a bug: stop without storing more
                    if not self._stop.is_set():
                        log.exception("kafka %s: batch handling failed on %s", self.transport.name, self.group_id)
                    break
        finally:
            try:
                self.consumer.close()  # commits stored offsets, leaves the group
            except Exception as exc:  # noqa: BLE001 - a broken broker must not hang close()
                log.debug("kafka %s: consumer close: %s", self.transport.name, exc)
            self._done.set()

    def _measure_lag(self) -> int | None:
        # On the poll thread: the consumer is not thread-safe enough to ask from the event loop
        # while consume() runs. Cached watermarks come with fetch responses (no request).
        if not self.assigned:
            return None
        total = 0
        try:
            for tp in self.consumer.position([TopicPartition(t, p) for t, p in self.assigned]):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    total += max(high - tp.offset, 0)
        except KafkaException:
            return None
        return total

    # -- the event loop ----------------------------------------------------------------------
    def _fetch_error(self, message: Message) -> bool:
        """True (and logged unless quiet) if ``message`` is an error report, not a record."""
        error = message.error()
        if error is None:
            return False
        if error.code() not in _QUIET:
            self.connection.logs.emit(logging.WARNING, f"fetch|{message.topic()}|{kind_of(str(error))}",
                                      f"kafka {self.transport.name}: {self.group_id} on {message.topic()}: {error}")
        return True

    async def _handle_batch(self, messages: list[Message]) -> None:
        """Deliver a batch in order; then store, per partition, the offset after the last record
        whose callback returned (or that was dead-lettered, or was not for this subscription)."""
        self._batch_task = asyncio.current_task()
        if self.batch_callback is not None:
            await self._handle_runs(messages, self.batch_callback)
            return
        stats = self.connection.stats
        callback = self.callback
        stop = self._stop
        filtered = self.ephemeral or self.wildcard
        done: dict[tuple[str, int], int] = {}
        last_pairs: _RawHeaders = None
        last_headers: dict[str, str] = {}
        try:
            for message in messages:
                if stop.is_set():
                    return
                if self._fetch_error(message):
                    continue
                kafka_topic, partition, offset = record_position(message)
                if not filtered or self._wanted(message):
                    stats["consumed"] += 1
                    pairs = message.headers()
                    if pairs != last_pairs:  # the same headers record after record (structured mode): decode once
                        last_pairs, last_headers = pairs, _decode_headers(pairs)
                    raw = RawMessage(message.value() or b"", last_headers)
                    try:
                        await callback(to_forge(kafka_topic), raw)
                        stats["handled"] += 1
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again, then dead-letter
                        await self._redeliver(message, raw, exc)
                done[(kafka_topic, partition)] = offset
        finally:
            if done:
                self._store(done)

    async def _handle_runs(self, messages: list[Message], callback: BatchCallback) -> None:
        """subscribe_batch: deliver each run of records of one topic as one list; store offsets as
        each run is done (handled, or dead-lettered after its redeliveries)."""
        stop = self._stop
        filtered = self.ephemeral or self.wildcard
        done: dict[tuple[str, int], int] = {}
        run: list[Envelope | RawMessage] = []
        records: list[Message] = []
        run_topic = ""
        last_pairs: _RawHeaders = None
        last_headers: dict[str, str] = {}
        try:
            for message in messages:
                if self._fetch_error(message):
                    continue
                kafka_topic, partition, offset = record_position(message)
                if filtered and not self._wanted(message):
                    if not run:
                        done[(kafka_topic, partition)] = offset
                    else:  # behind a pending run: the run's records keep their place
                        records.append(message)
                        run.append(_SKIP)
                    continue
                if kafka_topic != run_topic and run:
                    await self._deliver_run(run_topic, run, records, callback, done)
                    if stop.is_set():
                        return
                    run, records = [], []
                run_topic = kafka_topic
                pairs = message.headers()
                if pairs != last_pairs:  # the same headers record after record (structured mode): decode once
                    last_pairs, last_headers = pairs, _decode_headers(pairs)
                run.append(RawMessage(message.value() or b"", last_headers))
                records.append(message)
            if run and not stop.is_set():
                await self._deliver_run(run_topic, run, records, callback, done)
        finally:
            if done:
                self._store(done)

    def _redelivery_backoff(self) -> Backoff | None:
        """``retry_backoff`` doubling per redelivery (none when it is 0)."""
        settings = self.settings
        if not settings.retry_backoff:
            return None
        return Backoff(initial=settings.retry_backoff,
                       maximum=settings.retry_backoff * 2 ** max(settings.max_redeliveries - 1, 0))

    async def _deliver_run(self, kafka_topic: str, run: list[Envelope | RawMessage], records: list[Message],
                           callback: BatchCallback, done: dict[tuple[str, int], int]) -> None:
        stats = self.connection.stats
        wanted = [raw for raw in run if raw is not _SKIP]
        stats["consumed"] += len(wanted)
        if wanted:
            topic = to_forge(kafka_topic)
            settings = self.settings
            backoff = self._redelivery_backoff()
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
                    if self._stop.is_set():
                        return
            if error is not None:
                log.error("kafka %s: giving up on a batch of %d from %s for %s after %d deliveries: %s",
                          self.transport.name, len(wanted), kafka_topic, self.owner or self.pattern,
                          settings.max_redeliveries + 1, error)
                for raw, message in zip(run, records, strict=True):
                    if raw is not _SKIP:
                        await self.dead_letter(message, error, settings.max_redeliveries + 1)
        for message in records:
            kafka_topic_, partition, offset = record_position(message)
            done[(kafka_topic_, partition)] = offset

    def _store(self, done: dict[tuple[str, int], int]) -> None:
        try:
            self.consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset + 1)
                                                 for (topic, partition), offset in done.items()])
        except KafkaException as exc:  # partition revoked meanwhile: the next owner gets it again
            log.debug("kafka %s: store_offsets: %s", self.transport.name, exc)

    def _wanted(self, message: Message) -> bool:
        topic = message.topic() or ""
        if self.ephemeral and message.timestamp()[1] < self.start_ms:
            return False
        if not self.wildcard:
            return True
        if topic.startswith("__") or topic.endswith(self.settings.dead_letter_suffix):
            return False  # internal and dead-letter topics only to who names them
        return matches(self.pattern, to_forge(topic))

    async def _redeliver(self, message: Message, raw: RawMessage, error: Exception) -> None:
        """The first delivery raised: call again up to ``max_redeliveries`` times, then dead-letter."""
        stats = self.connection.stats
        settings = self.settings
        kafka_topic, partition, offset = record_position(message)
        topic = to_forge(kafka_topic)
        backoff = self._redelivery_backoff()
        for _attempt in range(settings.max_redeliveries):
            stats["redelivered"] += 1
            if backoff is not None:
                await asyncio.sleep(backoff.next())
            try:
                await self.callback(topic, raw)
                stats["handled"] += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again
                error = exc
        log.error("kafka %s: giving up on %s[%d]@%d for %s after %d deliveries: %s", self.transport.name,
                  kafka_topic, partition, offset, self.owner or self.pattern, settings.max_redeliveries + 1, error)
        await self.dead_letter(message, error, settings.max_redeliveries + 1)

    async def dead_letter(self, message: Message, error: Exception, attempts: int) -> None:
        """Dead-letter one record; returns once it is safe (see :func:`dead_letters.dead_letter`)."""
        await dead_letter(self, message, error, attempts)

    async def cancel(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.transport.subscriptions.discard(self)
        inside = self._batch_task is not None and self._batch_task is asyncio.current_task()
        if not inside and self.thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._done.wait, 30.0)
