"""The Kafka transport: confluent-kafka under Forge's :class:`~forge_core.transport.base.Transport`.

confluent-kafka is blocking and callback-based, asyncio is not. Each subscription owns one
consumer and one thread: the thread takes a batch (``consume``), hands it to the event loop
and waits; the loop awaits the callback per message, in order, and when the batch is done (or
stopped) stores per partition the offset after the last record handled, which librdkafka's
auto-commit sends to the broker (``enable.auto.offset.store=false``): an offset is committed only
after its handler returned — at least once. A callback that raises is
called again (``max_redeliveries``); then the message goes to ``<topic>.dlq`` with the reason in
headers and is committed, so nothing is lost and nothing blocks the partition forever.

Publishing: idempotent producer, ``acks=all``, key = ``envelope.key or envelope.source`` so one
machine's messages share a partition and keep their order. A producer thread serves delivery
reports; ``publish`` returns once librdkafka has the message (``confirm_publish: true`` waits
for the broker's ack), and ``close()`` flushes. A watchdog on librdkafka's statistics replaces a
producer that a restarted broker no longer knows and re-sends what it held (``_on_stats``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from forge_core import Envelope, RawMessage, TransportClosed, TransportError, TransportNotReady
from forge_core.transport import (
    STRUCTURED_CONTENT_TYPE,
    BatchCallback,
    DeliveryGuarantee,
    Health,
    MessageCallback,
    Subscription,
    Transport,
    encode_body,
    encode_headers,
    encode_structured,
    encode_structured_many,
    is_wildcard,
    matches,
    validate_pattern,
    validate_topic,
)

from forge_kafka.admin import ensure_topics, pattern_to_kafka, to_forge, to_kafka
from forge_kafka.settings import KafkaSettings, TopicSpec

log = logging.getLogger("forge.transport.kafka")

#: The one header of a structured-mode record (CloudEvents Kafka binding).
_STRUCTURED_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE)]

#: Headers added to a dead-lettered record (no ``ce_`` prefix: not CloudEvents attributes).
DLQ_REASON = "forge_dlq_reason"
DLQ_ERROR = "forge_dlq_error"
DLQ_TOPIC = "forge_dlq_topic"
DLQ_PARTITION = "forge_dlq_partition"
DLQ_OFFSET = "forge_dlq_offset"
DLQ_GROUP = "forge_dlq_group"
DLQ_ATTEMPTS = "forge_dlq_attempts"


#: A place holder in a run for a record that is not for this subscription (kept for its offset).
_SKIP = RawMessage(b"")


def _decode_headers(pairs: list[tuple[str, bytes]] | None) -> dict[str, str]:
    if not pairs:
        return {}
    try:
        return {k: v.decode() for k, v in pairs}
    except (AttributeError, UnicodeDecodeError):  # a null or non-UTF-8 value from a foreign client
        return {k: v.decode("utf-8", "replace") if v is not None else "" for k, v in pairs}


class KafkaSubscription(Subscription):
    """One consumer in one group, polled by its own thread."""

    def __init__(self, transport: KafkaTransport, pattern: str, callback: MessageCallback, *,
                 group: str | None, owner: str | None, group_id: str, ephemeral: bool,
                 instance_id: str | None, batch_callback: BatchCallback | None = None) -> None:
        self.transport = transport
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
        self.lag: int | None = None
        settings = transport.settings
        conf: dict[str, Any] = {
            **transport._common_config(),
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
        self.consumer = Consumer(conf, logger=log)
        self.thread = threading.Thread(target=self._poll_loop, name=f"forge-kafka-{transport.name}-{pattern}",
                                       daemon=True)

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
        loop = self.transport._loop
        assert loop is not None
        batch_size = self.transport.settings.batch_size
        batch_wait = self.transport.settings.batch_wait_ms / 1000.0
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
                    log.warning("kafka %s: consume failed on %s: %s", self.transport.name, self.group_id, exc)
                    time.sleep(0.5)
                    continue
                if time.monotonic() >= next_lag:
                    self.lag = self._measure_lag()
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
    async def _handle_batch(self, messages: list[Message]) -> None:
        """Deliver a batch in order; then store, per partition, the offset after the last record
        whose callback returned (or that was dead-lettered, or was not for this subscription)."""
        self._batch_task = asyncio.current_task()
        if self.batch_callback is not None:
            await self._handle_runs(messages, self.batch_callback)
            return
        transport = self.transport
        stats = transport._stats
        callback = self.callback
        stop = self._stop
        filtered = self.ephemeral or self.wildcard
        done: dict[tuple[str, int], int] = {}
        last_pairs: list[tuple[str, bytes]] | None = None
        last_headers: dict[str, str] = {}
        try:
            for message in messages:
                if stop.is_set():
                    return
                error = message.error()
                if error is not None:
                    if error.code() not in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
                        log.warning("kafka %s: %s on %s: %s", transport.name, self.group_id, message.topic(), error)
                    continue
                kafka_topic = message.topic()
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
                done[(kafka_topic, message.partition())] = message.offset()
        finally:
            if done:
                self._store(done)

    async def _handle_runs(self, messages: list[Message], callback: BatchCallback) -> None:
        """subscribe_batch: deliver each run of records of one topic as one list; store offsets as
        each run is done (handled, or dead-lettered after its redeliveries)."""
        stop = self._stop
        filtered = self.ephemeral or self.wildcard
        done: dict[tuple[str, int], int] = {}
        run: list[RawMessage] = []
        records: list[Message] = []
        run_topic = ""
        last_pairs: list[tuple[str, bytes]] | None = None
        last_headers: dict[str, str] = {}
        try:
            for message in messages:
                if message.error() is not None:
                    error = message.error()
                    if error.code() not in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
                        log.warning("kafka %s: %s on %s: %s", self.transport.name, self.group_id, message.topic(),
                                    error)
                    continue
                kafka_topic = message.topic()
                if filtered and not self._wanted(message):
                    if not run:
                        done[(kafka_topic, message.partition())] = message.offset()
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

    async def _deliver_run(self, kafka_topic: str, run: list[RawMessage], records: list[Message],
                           callback: BatchCallback, done: dict[tuple[str, int], int]) -> None:
        transport = self.transport
        stats = transport._stats
        wanted = [raw for raw in run if raw is not _SKIP]
        stats["consumed"] += len(wanted)
        if wanted:
            topic = to_forge(kafka_topic)
            settings = transport.settings
            error: Exception | None = None
            for attempt in range(settings.max_redeliveries + 1):
                if attempt:
                    stats["redelivered"] += len(wanted)
                    if settings.retry_backoff:
                        await asyncio.sleep(settings.retry_backoff * (2 ** (attempt - 1)))
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
                          transport.name, len(wanted), kafka_topic, self.owner or self.pattern,
                          settings.max_redeliveries + 1, error)
                for raw, message in zip(run, records, strict=True):
                    if raw is not _SKIP:
                        await transport._dead_letter(message, self, error, settings.max_redeliveries + 1)
        for message in records:
            done[(message.topic(), message.partition())] = message.offset()

    def _store(self, done: dict[tuple[str, int], int]) -> None:
        try:
            self.consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset + 1)
                                                 for (topic, partition), offset in done.items()])
        except KafkaException as exc:  # partition revoked meanwhile: the next owner gets it again
            log.debug("kafka %s: store_offsets: %s", self.transport.name, exc)

    def _wanted(self, message: Message) -> bool:
        topic = message.topic()
        if self.ephemeral and message.timestamp()[1] < self.start_ms:
            return False
        if not self.wildcard:
            return True
        if topic.startswith("__") or topic.endswith(self.transport.settings.dead_letter_suffix):
            return False  # internal and dead-letter topics only to who names them
        return matches(self.pattern, to_forge(topic))

    async def _redeliver(self, message: Message, raw: RawMessage, error: Exception) -> None:
        """The first delivery raised: call again up to ``max_redeliveries`` times, then dead-letter."""
        transport = self.transport
        settings = transport.settings
        topic = to_forge(message.topic())
        for attempt in range(settings.max_redeliveries):
            transport._stats["redelivered"] += 1
            if settings.retry_backoff:
                await asyncio.sleep(settings.retry_backoff * (2**attempt))
            try:
                await self.callback(topic, raw)
                transport._stats["handled"] += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again
                error = exc
        log.error("kafka %s: giving up on %s[%d]@%d for %s after %d deliveries: %s", transport.name,
                  message.topic(), message.partition(), message.offset(), self.owner or self.pattern,
                  settings.max_redeliveries + 1, error)
        await transport._dead_letter(message, self, error, settings.max_redeliveries + 1)

    async def cancel(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.transport._subs.discard(self)
        inside = self._batch_task is not None and self._batch_task is asyncio.current_task()
        if not inside and self.thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._done.wait, 30.0)


class KafkaTransport(Transport):
    """Forge transport over Kafka (any broker speaking the Kafka protocol)."""

    type_name = "kafka"
    header_prefix = "ce_"
    guarantee = DeliveryGuarantee.AT_LEAST_ONCE

    def __init__(self, name: str = "kafka", settings: KafkaSettings | Mapping[str, Any] | None = None, *,
                 plant: str = "forge", **options: Any) -> None:
        super().__init__(name)
        if isinstance(settings, KafkaSettings):
            if options:
                raise TypeError("pass either a KafkaSettings or keyword settings, not both")
            self.settings = settings
        else:  # a plain mapping (tests, benchmarks): the same validation and defaults as a manifest
            self.settings = KafkaSettings.load({**(settings or {}), **options}, where=f"transports.{name}.settings")
        self.plant = plant
        self._structured = self.settings.content_mode == "structured"
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._connected = False
        self._closed = False
        self._subs: set[KafkaSubscription] = set()
        self._member_count: Counter[str] = Counter()
        self._known_topics: set[str] = set()
        self._stats: Counter[str] = Counter()
        self._last_error = ""
        self._producer_conf: dict[str, Any] = {}
        self._acked = 0
        self._acked_at = time.monotonic()
        self._stalled = False
        self._stall_factor = 1
        self._resend_to: Producer | None = None
        self._failed = self._on_failed  # one bound method, partial()-ed per message

    # -- configuration -------------------------------------------------------------------------
    def _common_config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"bootstrap.servers": self.settings.bootstrap,
                                "client.id": self.settings.client_id or f"forge-{self.plant}-{self.name}",
                                "error_cb": self._on_client_error}
        conf.update(self.settings.config)
        return conf

    def _on_client_error(self, error: KafkaError) -> None:
        self._last_error = str(error)
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            log.warning("kafka %s: %s (%s)", self.name, error.str(), self.settings.bootstrap)

    def group_id(self, pattern: str, group: str | None, owner: str | None) -> str:
        """The consumer group of a subscription (``group_template``; the pattern is in the default
        so two handlers of one component on overlapping patterns each see every message)."""
        return self.settings.group_template.format(plant=self.plant, group=group or owner, pattern=pattern)

    # -- life cycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._closed:
            raise TransportClosed(f"kafka transport {self.name!r} is closed")
        if self._connected:
            return
        self._loop = asyncio.get_running_loop()
        common = self._common_config()
        admin = AdminClient(common)
        timeout = self.settings.connect_timeout
        try:
            metadata = await self._loop.run_in_executor(None, lambda: admin.list_topics(timeout=timeout))
        except KafkaException as exc:
            raise TransportNotReady(f"kafka transport {self.name!r}: broker {self.settings.bootstrap} unreachable "
                                    f"within {timeout:g}s: {exc.args[0] if exc.args else exc}") from None
        self._known_topics = set(metadata.topics)
        await self._loop.run_in_executor(None, lambda: ensure_topics(
            admin, self.settings.topics, broker=self.settings.bootstrap, transport=self.name))
        self._admin = admin
        self._producer_conf = {
            **common,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.settings.linger_ms,
            # Only failed deliveries reach Python: a callback per message would cost the hot path
            # a GIL round trip (per-message callbacks are still set for confirmed sends).
            "delivery.report.only.error": not self.settings.confirm_publish,
            "on_delivery": self._on_structured_report,
            # Once a second: acks per partition, for the stall watchdog (_on_stats).
            "statistics.interval.ms": 1000,
            "stats_cb": self._on_stats,
            **self.settings.producer,
        }
        self._producer = Producer(self._producer_conf, logger=log)
        self._poller = threading.Thread(target=self._poll_producer, name=f"forge-kafka-{self.name}-producer",
                                        daemon=True)
        self._poller.start()
        self._connected = True
        log.info("kafka transport %s connected to %s (%d topics)", self.name, self.settings.bootstrap,
                 len(self._known_topics))

    def _poll_producer(self) -> None:
        while not self._closing.is_set():
            producer = self._producer
            assert producer is not None
            producer.poll(0.1)
            if self._stalled and self._loop is not None and not self._closing.is_set():
                # The swap runs on the event loop, so no publish() slips in between.
                future = asyncio.run_coroutine_threadsafe(self._replace_producer(), self._loop)
                with contextlib.suppress(Exception):
                    future.result(60.0)
                self._stalled = False

    # -- the stall watchdog ----------------------------------------------------------------------
    # librdkafka retries a queued message until message.timeout.ms (5 min) and recovers from the
    # broker errors it knows. One it cannot get out of: a broker that restarted without its
    # producer state (Tansu's memory storage does; a Kafka broker that lost its disk would)
    # answers UNKNOWN_PRODUCER_ID to every retry, even after librdkafka bumped the epoch, so the
    # queue never drains. The watchdog sees a broker up, messages waiting and no ack for
    # ``stall_timeout`` seconds; it then replaces the producer (new producer id) and re-sends what
    # the old one held, in order. A message the broker had stored but not acked is sent twice
    # (at least once); none is lost.
    def _on_stats(self, text: str) -> None:
        try:
            stats = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        acked = sum(p.get("acked_msgid", 0) for t in stats.get("topics", {}).values()
                    for p in t.get("partitions", {}).values())
        now = time.monotonic()
        waiting = stats.get("msg_cnt", 0)
        up = any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in stats.get("brokers", {}).values())
        if acked != self._acked or not waiting or not up:
            if acked != self._acked:
                self._stall_factor = 1  # acks flow again: the next stall gets the plain timeout
            self._acked, self._acked_at = acked, now
        elif now - self._acked_at >= self.settings.stall_timeout * self._stall_factor and not self._stalled:
            log.warning("kafka %s: %d message(s) waiting and no ack from %s for %.0fs although it is up: "
                        "replacing the producer", self.name, waiting, self.settings.bootstrap, now - self._acked_at)
            self._stalled = True

    async def _replace_producer(self) -> None:
        old = self._producer
        assert old is not None
        new = Producer(self._producer_conf, logger=log)
        self._resend_to = new
        try:
            old.purge(in_queue=True, in_flight=True)
            deadline = time.monotonic() + 10.0
            # Delivery reports of the purged messages, in order: _on_failed re-sends each one.
            while len(old) and time.monotonic() < deadline:
                old.poll(0.05)
        finally:
            self._resend_to = None
            self._producer = new
            self._acked, self._acked_at = 0, time.monotonic()
            # A stall a new producer does not cure (no ack at all since) waits twice as long each
            # time: no replacement storm for a cause that is not the broker's lost state.
            self._stall_factor = min(self._stall_factor * 2, 32)
        self._stats["producer_replaced"] += 1
        log.warning("kafka %s: producer replaced; %d message(s) re-sent", self.name, self._stats["resent"])

    def _on_failed(self, headers: Any, error: KafkaError | None, message: Message) -> None:
        """Delivery report of a published message (only failures reach Python). A delivery report
        does not carry the headers, so each message's callback holds them, for a re-send."""
        if error is None:
            return
        resend_to = self._resend_to
        if resend_to is not None and error.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            self._stats["resent"] += 1
            while True:
                try:
                    resend_to.produce(message.topic(), message.value(), message.key(), headers=headers,
                                      on_delivery=partial(self._failed, headers))
                    return
                except BufferError:
                    resend_to.poll(0.05)
        self._on_delivery(error, message)

    def _on_structured_report(self, error: KafkaError | None, message: Message) -> None:
        """Failure report of a record produced without a callback of its own: a structured-mode
        publish, whose headers are the same for every record."""
        self._on_failed(_STRUCTURED_HEADERS, error, message)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        self._stats["publish_failed"] += 1
        self._last_error = str(error)
        log.error("kafka %s: delivery to %s failed: %s", self.name, message.topic(), error)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connected = False
        for sub in list(self._subs):
            await sub.cancel()
        loop = asyncio.get_running_loop()
        if self._producer is not None:
            producer = self._producer
            remaining = await loop.run_in_executor(None, producer.flush, 10.0)
            if remaining:
                log.error("kafka %s: %d message(s) not delivered at close", self.name, remaining)
        self._closing.set()
        if self._poller is not None:
            await loop.run_in_executor(None, self._poller.join, 5.0)

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, topic: str, envelope: Envelope) -> None:
        producer = self._producer
        if self._closed or producer is None:
            state = "closed" if self._closed else "not connected"
            raise TransportClosed(f"kafka transport {self.name!r} is {state}; cannot publish to {topic!r}")
        validate_topic(topic)
        kafka_topic = to_kafka(topic)
        headers: dict[str, str] | list[tuple[str, str]]
        if self._structured:
            body, headers = encode_structured(envelope), _STRUCTURED_HEADERS
        else:
            body, headers = encode_body(envelope.payload), encode_headers(envelope, "ce_")
        key = envelope.key or envelope.source
        if self.settings.confirm_publish:
            await self._produce(kafka_topic, body, key, headers)
        else:
            try:  # the hot path: librdkafka takes it, nothing to await
                if self._structured:  # the same headers for every record: the producer's report callback
                    producer.produce(kafka_topic, body, key, headers=headers)
                else:  # the failure report must hold this record's headers to send it again
                    producer.produce(kafka_topic, body, key, headers=headers, on_delivery=partial(self._failed, headers))
            except BufferError:  # local queue full: wait for room
                await self._produce(kafka_topic, body, key, headers)
        self._stats["published"] += 1

    async def publish_batch(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Every envelope in order, in one tight loop: the topic checked once, no coroutine per
        message. Falls back to ``publish`` per message for binary mode or ``confirm_publish``."""
        producer = self._producer
        if self._closed or producer is None or not self._structured or self.settings.confirm_publish:
            for envelope in envelopes:
                await self.publish(topic, envelope)
            return
        validate_topic(topic)
        kafka_topic = to_kafka(topic)
        produce = producer.produce
        headers = _STRUCTURED_HEADERS
        for envelope, body in zip(envelopes, encode_structured_many(envelopes), strict=True):
            key = envelope.key or envelope.source
            try:
                produce(kafka_topic, body, key, headers=headers)
            except BufferError:  # local queue full: wait for room
                await self._produce(kafka_topic, body, key, headers)
        self._stats["published"] += len(envelopes)

    async def _produce(self, kafka_topic: str, body: bytes, key: str | bytes | None,
                       headers: list[tuple[str, str | bytes]] | dict[str, str], *,
                       confirm: bool | None = None) -> None:
        producer = self._producer
        assert producer is not None
        future: asyncio.Future[None] | None = None
        if confirm if confirm is not None else self.settings.confirm_publish:
            future = self._delivery_future(kafka_topic)
        while True:
            try:
                if future is None:
                    producer.produce(kafka_topic, body, key, headers=headers, on_delivery=partial(self._failed, headers))
                else:
                    producer.produce(kafka_topic, body, key, headers=headers,
                                     on_delivery=self._resolver(future))
                break
            except BufferError:  # local queue full: let the poller drain it
                await asyncio.sleep(0.005)
        if future is None:
            return
        if not self.settings.confirm_publish:
            # delivery.report.only.error: success is silent, so wait for the queue to drain; a
            # failure has resolved the future by then.
            remaining = await asyncio.get_running_loop().run_in_executor(None, producer.flush, 30.0)
            if not future.done():
                if remaining:
                    raise TransportError(f"kafka transport {self.name!r}: no ack from {self.settings.bootstrap} "
                                         f"for {kafka_topic!r} within 30s")
                future.set_result(None)
        await future

    def _delivery_future(self, kafka_topic: str) -> asyncio.Future[None]:
        loop = self._loop or asyncio.get_running_loop()
        return loop.create_future()

    def _resolver(self, future: asyncio.Future[None]) -> Any:
        loop = future.get_loop()

        def resolve(error: KafkaError | None, message: Message) -> None:
            def settle() -> None:
                if future.done():
                    return
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(TransportError(
                        f"kafka transport {self.name!r}: delivery to {message.topic()!r} on "
                        f"{self.settings.bootstrap} failed: {error.str()}"))
            loop.call_soon_threadsafe(settle)
        return resolve

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait until every queued message is acknowledged; returns how many are still queued."""
        if self._producer is None:
            return 0
        return await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, timeout)

    # -- subscribing ---------------------------------------------------------------------------
    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> KafkaSubscription:
        return await self._subscribe(pattern, callback, None, group=group, owner=owner)

    async def subscribe_batch(self, pattern: str, callback: BatchCallback, *, group: str | None = None,
                              owner: str | None = None) -> KafkaSubscription:
        """Each run of records of one topic in what one fetch returned (up to ``batch_size``) goes to
        ``callback`` as one list; its offsets are stored once it returned. A callback that raises
        gets the whole run again (``max_redeliveries``), then each record is dead-lettered."""

        async def one(topic: str, message: Envelope | RawMessage) -> None:  # the subscription's per-record form
            await callback(topic, [message])

        return await self._subscribe(pattern, one, callback, group=group, owner=owner)

    async def _subscribe(self, pattern: str, callback: MessageCallback, batch_callback: BatchCallback | None, *,
                         group: str | None, owner: str | None) -> KafkaSubscription:
        if self._closed or self._loop is None:
            state = "closed" if self._closed else "not connected"
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
        self._subs.add(sub)
        return sub

    async def ensure_topic(self, topic: str, spec: TopicSpec | None = None) -> None:
        """Create ``topic`` (a Forge topic) unless it is known to exist."""
        name = to_kafka(topic)
        if name in self._known_topics or self._admin is None:
            return
        spec = spec or self.settings.topic_spec(topic)
        admin = self._admin
        await asyncio.get_running_loop().run_in_executor(None, lambda: ensure_topics(
            admin, {name: spec}, broker=self.settings.bootstrap, transport=self.name))
        self._known_topics.add(name)

    # -- dead letters ----------------------------------------------------------------------------
    async def _dead_letter(self, message: Message, sub: KafkaSubscription, error: Exception, attempts: int) -> None:
        self._stats["undeliverable"] += 1
        if self.on_undeliverable is not None:  # the runtime's dead-letter channel hears of it too
            raw = RawMessage(message.value() or b"", {k: v.decode() if isinstance(v, bytes) else v
                                                      for k, v in message.headers() or () if v is not None})
            self.on_undeliverable(to_forge(message.topic()), raw, error)
        if not self.settings.dead_letter:
            return
        dlq = message.topic() + self.settings.dead_letter_suffix
        headers: list[tuple[str, str | bytes]] = [(k, v) for k, v in message.headers() or () if v is not None]
        headers += [
            (DLQ_REASON, "undeliverable"),
            (DLQ_ERROR, f"{type(error).__name__}: {error}"[:2000]),
            (DLQ_TOPIC, message.topic()),
            (DLQ_PARTITION, str(message.partition())),
            (DLQ_OFFSET, str(message.offset())),
            (DLQ_GROUP, sub.group_id),
            (DLQ_ATTEMPTS, str(attempts)),
        ]
        delay = 0.1
        while True:  # the offset is committed only once the dead letter is safely on the broker
            try:
                if self.settings.create_topics and dlq not in self._known_topics:
                    await self.ensure_topic(to_forge(dlq))
                await self._produce(dlq, message.value() or b"", message.key(), headers, confirm=True)
                self._stats["dead_lettered"] += 1
                return
            except (TransportError, ValueError) as exc:
                if sub._stop.is_set():
                    raise TransportClosed(f"kafka transport {self.name!r}: closed before dead-lettering "
                                          f"{message.topic()}@{message.offset()}") from exc
                log.error("kafka %s: cannot dead-letter to %s (retrying): %s", self.name, dlq, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> Health:
        stats: dict[str, Any] = {**self._stats, "subscriptions": len(self._subs)}
        lag = self._lag()
        if lag is not None:
            stats["lag"] = lag
        if self._closed:
            detail = "closed"
        elif not self._connected:
            detail = "not connected"
        else:
            detail = f"connected to {self.settings.bootstrap}"
            if self._last_error:
                detail += f" (last error: {self._last_error})"
        return Health(connected=self._connected and not self._closed, detail=detail, stats=stats)

    def _lag(self) -> int | None:
        """Records not yet consumed on assigned partitions, as last measured by the poll threads."""
        lags = [sub.lag for sub in list(self._subs) if sub.lag is not None]
        return sum(lags) if lags else None
