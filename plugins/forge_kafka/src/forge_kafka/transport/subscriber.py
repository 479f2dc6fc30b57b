"""Delivery: one consumer per subscription, batches, offsets after handling, redelivery, dead letters.

Each subscription owns one consumer and one thread: the thread takes a batch (``poll`` then
``consume``), hands it to the event loop and waits; the loop awaits the callback per message, in
order, and when the batch is done (or stopped) stores per partition the offset after the last
record handled, which librdkafka's auto-commit sends to the broker (``enable.auto.offset.store=
false``): an offset is committed only after its handler returned — at least once. A callback that
raises is called again (``max_redeliveries``); then the message goes to ``<topic>.dlq`` with the
reason in headers (``dead_letters.py``) and is committed, so nothing is lost and nothing blocks the
partition forever. A callback that raises :class:`forge_core.Redeliver` ("not yet: the database is
down") is never dead-lettered: after its redeliveries the partitions are rewound to the first
record not handled and delivered again after a growing pause, until a delivery returns.
Partitions held, lag and partition events: ``partitions.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from forge_core import Envelope, RawMessage
from forge_core.transport import (
    BatchCallback,
    MessageCallback,
    PartitionListener,
    Subscription,
    is_wildcard,
    matches,
)

from forge_kafka.transport.admin import pattern_to_kafka, to_forge
from forge_kafka.transport.dead_letters import dead_letter, record_position
from forge_kafka.transport.logs import kind_of
from forge_kafka.transport.partitions import Partitions
from forge_kafka.transport.redelivery import SKIP, deliver_run, redeliver, rewind_backoff, rewind_from, seek_back

if TYPE_CHECKING:
    from forge_kafka.transport.transport import KafkaTransport

log = logging.getLogger("forge.transport.kafka")

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
        #: (kafka topic, partition) held now; changed by the rebalance callbacks (partitions.py).
        self.assigned: set[tuple[str, int]] = set()
        self.assigned_event = threading.Event()
        self.partitions = Partitions(self)
        self.starts_at_earliest = ephemeral or settings.auto_offset_reset == "earliest"
        self._stop = threading.Event()
        self._done = threading.Event()
        self._batch_task: asyncio.Future[None] | None = None
        #: Sum of the partitions' lags, for health(); None when nothing is held or measured.
        self.lag_total: int | None = None
        #: Set on the loop by a batch whose callback raised Redeliver: (kafka topic, partition) ->
        #: the offset to deliver again from; the poll thread seeks there, then pauses (redelivery.py).
        self.rewind: dict[tuple[str, int], int] = {}
        self.rewind_wait = rewind_backoff(self)
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
            # librdkafka's 500 ms lets a fetch wait that long for data; at a control loop's rates that is
            # the p99 of every hop (docs/transports/kafka.md "Latency: fetch_wait_max_ms").
            "fetch.wait.max.ms": settings.fetch_wait_max_ms,
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

    def pause(self, seconds: float) -> None:
        """Poll thread: wait ``seconds`` without fetching (cut short by cancel())."""
        self._stop.wait(seconds)

    # -- the partition API (forge_core.transport.Subscription) --------------------------------
    def on_partitions_changed(self, listener: PartitionListener) -> None:
        """``listener(PartitionChange)`` on the event loop at each assignment, revocation or loss
        (only the partitions that changed; topics by their Forge names; ``group`` = the group id).
        Partitions assigned before the listener was added are not reported again: read
        :meth:`assignment`. Cancelling the subscription reports its partitions revoked."""
        self.partitions.listeners.add(listener)

    def assignment(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((to_forge(topic), partition) for topic, partition in list(self.assigned)))

    def lag(self) -> dict[tuple[str, int], int] | None:
        """Per held partition (Forge topic name), as measured about once a second (partitions.py);
        a partition without a figure yet (no watermark seen) is left out."""
        return {(to_forge(topic), partition): lag for (topic, partition), lag in self.partitions.lags.items()}

    # -- rebalance callbacks (poll thread) ---------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions.changed("assigned", partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every handled offset is already stored; commit it now so the next owner of these
        # partitions starts right after it (no duplicate for a clean hand-over).
        with contextlib.suppress(KafkaException):
            consumer.commit(asynchronous=False)
        self.partitions.changed("revoked", partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions.changed("lost", partitions)

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
                    self.partitions.measure(self.consumer)
                    next_lag = time.monotonic() + 1.0
                if not messages or self._stop.is_set():
                    continue
                future = asyncio.run_coroutine_threadsafe(self._handle_batch(messages), loop)
                try:
                    while True:  # the lag goes on being measured while a handler takes its time
                        try:
                            future.result(timeout=1.0)
                            break
                        except concurrent.futures.TimeoutError:
                            if loop.is_closed():  # the batch can never finish
                                raise RuntimeError("event loop closed") from None
                            self.partitions.measure(self.consumer)
                            next_lag = time.monotonic() + 1.0
                except Exception:  # cancelled at close, or a bug: stop without storing more
                    if not self._stop.is_set():
                        log.exception("kafka %s: batch handling failed on %s", self.transport.name, self.group_id)
                    break
                if self.rewind:
                    seek_back(self)
                else:
                    self.rewind_wait.reset()
        finally:
            try:
                self.consumer.close()  # commits stored offsets, leaves the group
            except Exception as exc:  # noqa: BLE001 - a broken broker must not hang close()
                log.debug("kafka %s: consumer close: %s", self.transport.name, exc)
            self._done.set()

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
        # the bus's callback of a sync handler delivers without a coroutine (forge_core's
        # transport.base.DirectCallback): None when done, or an awaitable to finish it
        direct = getattr(callback, "direct", None)
        stop = self._stop
        filtered = self.ephemeral or self.wildcard
        done: dict[tuple[str, int], int] = {}
        # Not filtered (one topic named, not ephemeral): every record is of ``kafka_subscription``, so
        # none is asked its topic, and its last record is kept by partition alone (no tuple a record;
        # its offset read once a batch, not a call a record)
        last: dict[int, Message] = {}
        last_pairs: _RawHeaders = None
        last_headers: dict[str, str] = {}
        last_topic = kafka_topic = self.kafka_subscription
        topic = to_forge(kafka_topic)
        # added to stats once per batch (in finally): a Counter += per record cost; a record delivered
        # and not handled (raised, cancelled) is counted consumed all the same
        handled = unhandled = 0
        partition: int
        offset: int
        # cancel() sets ``stop`` on this loop, so only while this coroutine is suspended: it is read
        # before the first record and after each await (Event.is_set is a Python call per record)
        check_stop = True
        try:
            for index, message in enumerate(messages):
                if check_stop:
                    if stop.is_set():
                        return
                    check_stop = False
                if message.error() is not None and self._fetch_error(message):
                    continue
                # record_position inlined (a call and a tuple per record); a fetched record has all three
                partition = message.partition()  # type: ignore[assignment]
                if filtered:
                    kafka_topic = message.topic()  # type: ignore[assignment]
                    if not self._wanted(message):
                        done[(kafka_topic, partition)] = message.offset()  # type: ignore[assignment]
                        continue
                    if kafka_topic != last_topic:  # a batch is mostly of one topic: map its name once
                        last_topic, topic = kafka_topic, to_forge(kafka_topic)
                pairs = message.headers()
                if pairs != last_pairs:  # the same headers record after record (structured mode): decode once
                    last_pairs, last_headers = pairs, _decode_headers(pairs)
                raw = RawMessage(message.value() or b"", last_headers)  # untracked by the collector
                try:
                    if direct is None:
                        check_stop = True
                        await callback(topic, raw)
                    elif (pending := direct(topic, raw)) is not None:
                        check_stop = True
                        await pending
                    handled += 1
                except asyncio.CancelledError:
                    unhandled += 1
                    raise
                except Exception as exc:  # noqa: BLE001 - not acknowledged: deliver again, then dead-letter
                    check_stop = True
                    unhandled += 1
                    if not await redeliver(self, message, raw, exc):
                        rewind_from(self, messages[index:])
                        return
                if filtered:
                    done[(kafka_topic, partition)] = message.offset()  # type: ignore[assignment]
                else:
                    last[partition] = message
        finally:
            if handled or unhandled:
                stats["consumed"] += handled + unhandled
                stats["handled"] += handled
            for partition, record in last.items():
                offset = record.offset()  # type: ignore[assignment]
                done[(self.kafka_subscription, partition)] = offset
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
        run_topic = "" if filtered else self.kafka_subscription  # not filtered: every record is of it
        skips = False  # a SKIP in ``run`` (deliver_run then leaves it out; without one it delivers ``run`` itself)
        last_pairs: _RawHeaders = None
        last_headers: dict[str, str] = {}
        add, keep = run.append, records.append
        kafka_topic: str
        try:
            for index, message in enumerate(messages):
                if message.error() is not None and self._fetch_error(message):
                    continue
                # per record only what the loop needs: a call and a tuple less each (deliver_run stores
                # the offsets of what it delivered); not filtered, one run per batch: no record's topic
                if filtered:
                    kafka_topic = message.topic()  # type: ignore[assignment]  # a fetched record has it
                    if not self._wanted(message):
                        if not run:
                            _, partition, offset = record_position(message)
                            done[(kafka_topic, partition)] = offset
                        else:  # behind a pending run: the run's records keep their place
                            keep(message)
                            add(SKIP)
                            skips = True
                        continue
                    if kafka_topic != run_topic and run:
                        if not await deliver_run(self, run_topic, run, records, callback, done, skips=skips):
                            rewind_from(self, [*records, *messages[index:]])
                            return
                        if stop.is_set():
                            return
                        run, records, skips = [], [], False
                        add, keep = run.append, records.append
                    run_topic = kafka_topic
                pairs = message.headers()
                if pairs != last_pairs:  # the same headers record after record (structured mode): decode once
                    last_pairs, last_headers = pairs, _decode_headers(pairs)
                add(RawMessage(message.value() or b"", last_headers))  # untracked by the collector
                keep(message)
            if (run and not stop.is_set()
                    and not await deliver_run(self, run_topic, run, records, callback, done, skips=skips)):
                rewind_from(self, records)
        finally:
            if done:
                self._store(done)

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
            # consumer.close() in the poll thread reports the partitions revoked; that report is
            # on the loop before this wait ends, so listeners hear of it before cancel() returns
            await asyncio.get_running_loop().run_in_executor(None, self._done.wait, 30.0)
            self.partitions.listeners.clear()
