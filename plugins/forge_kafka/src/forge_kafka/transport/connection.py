"""The Kafka clients on the event loop: admin and producer, the producer's poll thread, and the
replacement of a producer that went fatal or stalled, with the ordered re-send of what it held.

confluent-kafka is blocking and callback-based, asyncio is not: every blocking call runs in the
loop's executor, and one thread per transport serves the producer's callbacks (``poll``). What is
published and consumed is the publisher's and the subscribers' business; this module owns the
clients they use and the state they share (statistics, known topics, the last error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from forge_core import TransportClosed, TransportNotReady
from forge_core.tactics import Backoff

from forge_kafka.settings import KafkaSettings, TopicSpec
from forge_kafka.transport.admin import ensure_topics, to_kafka
from forge_kafka.transport.logs import RateLimitedLog, kind_of
from forge_kafka.transport.metrics import KafkaMetrics

log = logging.getLogger("forge.transport.kafka")

#: A producer-wide delivery report callback: ``(error, message)``.
DeliveryReport = Callable[[KafkaError | None, Message], None]

#: A message a failed or replaced producer gave back, to be produced again on its successor:
#: ``(seq, topic, value, key, headers, on_delivery)``; ``seq`` is its place in publish order.
Held = tuple[int, str, bytes | None, bytes | None, Any, Callable[[KafkaError | None, Message], None]]

#: Delivery errors that mean "this producer cannot deliver it, a new one can": purged by a
#: replacement or by librdkafka when the producer went fatal, or the broker forgot the producer.
RESEND_CODES = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._FATAL,
                          KafkaError.UNKNOWN_PRODUCER_ID, KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                          KafkaError.INVALID_PRODUCER_EPOCH})


def needs_new_producer(error: KafkaError) -> bool:
    """A delivery or produce error that a new producer (new producer id) cures."""
    return error.fatal() or error.code() in RESEND_CODES

#: A producer replaced after a stall that a new producer did not cure waits up to this many
#: ``stall_timeout``s before the next replacement (no replacement storm for another cause).
_STALL_MAX_FACTOR = 32

#: Producer epoch bumps with no ack in between after which the broker is taken to have forgotten
#: the producer (one bump is librdkafka's normal recovery; Tansu loops on it forever).
_FORGOTTEN_AFTER_BUMPS = 3


class KafkaConnection:
    """Admin client, producer and its poll thread for one transport; :meth:`connect` makes them."""

    def __init__(self, name: str, settings: KafkaSettings, plant: str) -> None:
        self.name = name
        self.settings = settings
        self.plant = plant
        self.loop: asyncio.AbstractEventLoop | None = None
        self.admin: AdminClient | None = None
        self.producer: Producer | None = None
        self.producer_conf: dict[str, Any] = {}
        self.connected = False
        self.closed = False
        #: Counters shown by ``health()``: published, consumed, handled, redelivered, dead_lettered...
        self.stats: Counter[str] = Counter()
        #: Records handed to librdkafka: health()'s ``published``. A plain int, not a ``stats`` item:
        #: a Counter's ``+= 1`` is a dict subclass's subscript twice, ~0.3 µs a published message.
        self.published = 0
        #: librdkafka's log lines and client errors, rate-limited per kind (log_every); every client's logger
        self.logs = RateLimitedLog(log, settings.log_every, name=name, stats=self.stats)
        self.last_error = ""
        #: The OpenTelemetry instruments (metrics.py), when the plant's telemetry is on.
        self.metrics: KafkaMetrics | None = None
        self.known_topics: set[str] = set()
        #: Messages given back by the producer (fatal, purged, forgotten by the broker), kept until
        #: its successor re-sends them in publish order; guarded by ``lock`` (any thread appends).
        self.held: list[Held] = []
        #: (producer to replace, why, when it was seen) once a replacement is wanted.
        self._replace_wanted: tuple[Producer, str, float] | None = None
        self.lock = threading.Lock()
        #: The publisher's: give up on held records (each one's callback hears the error); set by it.
        self.give_up_held: Callable[[list[Held], KafkaError], None] | None = None
        #: Replaced producers whose purged records did not all report within ``replace_timeout``:
        #: the poll thread serves them on, and each late report is given up (dead letter).
        self.retired: list[Producer] = []
        self._giving_up = False  # closing: no successor will re-send a purged record
        self._late = threading.local()  # .on while the poll thread serves a retired producer
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._acked = 0
        self._acked_at = time.monotonic()
        self._stalled = False
        self._epochs = 0  # the producer epoch (stats eos.producer_epoch) at the last ack
        # The stall timeout doubles after each replacement that brought no ack, reset once acks flow.
        self._stall_wait = Backoff(initial=settings.stall_timeout,
                                   maximum=settings.stall_timeout * _STALL_MAX_FACTOR)

    # -- configuration -------------------------------------------------------------------------
    def common_config(self) -> dict[str, Any]:
        """librdkafka settings every client of this transport shares (``config`` passthrough last)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.settings.bootstrap,
                                "client.id": self.settings.client_id or f"forge-{self.plant}-{self.name}",
                                "error_cb": self._on_client_error, "logger": self.logs}
        conf.update(self.settings.config)
        return conf

    def _on_client_error(self, error: KafkaError) -> None:
        self.last_error = str(error)
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            # every client reports every failed reconnect while the broker is down: one line per kind
            self.logs.emit(logging.WARNING, f"error|{error.code()}|{kind_of(error.str())}",
                           f"kafka {self.name}: {error.str()} ({self.settings.bootstrap})")

    # -- life cycle ----------------------------------------------------------------------------
    async def connect(self, on_delivery: DeliveryReport) -> None:
        """Reach the broker (``TransportNotReady`` if it does not answer within ``connect_timeout``),
        create the declared topics, start the producer; ``on_delivery`` gets its failure reports."""
        if self.closed:
            raise TransportClosed(f"kafka transport {self.name!r} is closed")
        if self.connected:
            return
        self.loop = loop = asyncio.get_running_loop()
        common = self.common_config()
        admin = AdminClient(common)
        timeout = self.settings.connect_timeout
        try:
            metadata = await loop.run_in_executor(None, lambda: admin.list_topics(timeout=timeout))
        except KafkaException as exc:
            raise TransportNotReady(f"kafka transport {self.name!r}: broker {self.settings.bootstrap} unreachable "
                                    f"within {timeout:g}s: {exc.args[0] if exc.args else exc}") from None
        self.known_topics = set(metadata.topics)
        await loop.run_in_executor(None, lambda: ensure_topics(
            admin, self.settings.topics, broker=self.settings.bootstrap, transport=self.name))
        self.admin = admin
        self.producer_conf = {
            **common,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.settings.linger_ms,
            # Only failed deliveries reach Python: a callback per message would cost the hot path
            # a GIL round trip (per-message callbacks are still set for confirmed sends).
            "delivery.report.only.error": not self.settings.confirm_publish,
            "on_delivery": on_delivery,
            # Once a second: acks per partition, for the stall watchdog (_on_stats).
            "statistics.interval.ms": 1000,
            "stats_cb": self._on_stats,
            # A fatal error (e.g. the broker forgot the idempotent producer) is seen here at once.
            "error_cb": self._on_producer_error,
            **self.settings.producer,
        }
        self.producer = Producer(self.producer_conf)
        self._poller = threading.Thread(target=self._poll_producer, name=f"forge-kafka-{self.name}-producer",
                                        daemon=True)
        self._poller.start()
        self.connected = True
        log.info("kafka transport %s connected to %s (%d topics)", self.name, self.settings.bootstrap,
                 len(self.known_topics))

    def late_reports(self) -> bool:
        """True when no successor will re-send a purged record: the transport is closing, or this is
        the poll thread serving a producer retired after ``replace_timeout``."""
        return self._giving_up or getattr(self._late, "on", False)

    async def close(self) -> None:
        """Flush what the producer holds (up to ``close_timeout``), give up on what is left (purged:
        a dead letter each), stop the poll thread."""
        self.connected = False
        loop = asyncio.get_running_loop()
        if self.producer is not None:
            timeout = self.settings.close_timeout
            remaining = await self.flush(timeout)
            if remaining:
                log.error("kafka %s: %d record(s) not delivered to %s within close_timeout %gs: purged, each "
                          "dead-lettered (undeliverable)", self.name, remaining, self.settings.bootstrap, timeout)
                await loop.run_in_executor(None, self._give_up_all)
        self._closing.set()
        if self._poller is not None:
            await loop.run_in_executor(None, self._poller.join, 5.0)
        for _ in range(3):  # the reports hopped to the loop (call_soon_threadsafe) run before close returns
            await asyncio.sleep(0)
        self.logs.flush(force=True)  # what was held back is still counted

    def _give_up_all(self) -> None:
        """At close: purge every producer, serve the purge reports (each a give-up), give up the held."""
        self._giving_up = True
        for producer in [*self.retired, *([self.producer] if self.producer is not None else [])]:
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(5.0)  # serves the reports of the purged records (the poll thread may serve some)
        with self.lock:
            held, self.held = self.held, []
        if held and self.give_up_held is not None:
            self.give_up_held(held, KafkaError(KafkaError._PURGE_QUEUE, "the transport closed before a new "
                                               "producer could re-send it"))

    async def ensure_topic(self, topic: str, spec: TopicSpec | None = None) -> None:
        """Create ``topic`` (a Forge topic) unless it is known to exist."""
        name = to_kafka(topic)
        if name in self.known_topics or self.admin is None:
            return
        spec = spec or self.settings.topic_spec(topic)
        admin = self.admin
        await asyncio.get_running_loop().run_in_executor(None, lambda: ensure_topics(
            admin, {name: spec}, broker=self.settings.bootstrap, transport=self.name))
        self.known_topics.add(name)

    def _poll_producer(self) -> None:
        while not self._closing.is_set():
            producer = self.producer
            assert producer is not None
            producer.poll(0.1)
            if self.retired:
                self._serve_retired()
            if self.admin is not None:
                self.admin.poll(0)  # its log lines and errors, through the rate limit (else they queue up)
            self.logs.flush()
            wanted = self._replace_wanted
            if wanted is not None and self.loop is not None and not self._closing.is_set():
                # The swap runs on the event loop, so no publish() slips in between.
                future = asyncio.run_coroutine_threadsafe(self._replace_on_loop(wanted[0]), self.loop)
                with contextlib.suppress(Exception):
                    future.result(60.0)

    def _serve_retired(self) -> None:
        """Late reports of retired producers (poll thread): each one given up by the publisher."""
        self._late.on = True
        try:
            for producer in list(self.retired):
                producer.poll(0)
                if not len(producer):
                    self.retired.remove(producer)
        finally:
            self._late.on = False

    # -- replacing the producer -------------------------------------------------------------------
    # Two ways a producer ends up unable to deliver. (1) Fatal: a broker that restarted without
    # the idempotent producer's state (Tansu's memory storage; a Kafka broker that lost its disk)
    # answers UNKNOWN_PRODUCER_ID / OUT_OF_ORDER_SEQUENCE_NUMBER, librdkafka raises a fatal error,
    # purges its queue and refuses every produce() with _FATAL. error_cb sees it at once. (2) A
    # stall: the broker is up, messages wait and no ack comes for ``stall_timeout`` (the stats
    # watchdog below). Either way the producer is replaced at once on the event loop: the old one
    # is purged, every message it gave back is re-sent on a new producer (new producer id) in
    # publish order, and only then does publish() use the new one. A message the broker had stored
    # but not acked is sent twice (at least once; the new producer id cannot be deduplicated
    # against the old one); none is lost.
    def _on_producer_error(self, error: KafkaError) -> None:
        self._on_client_error(error)
        if error.fatal():
            self.stats["producer_fatal"] += 1
            log.error("kafka %s: the producer hit a fatal error (%s): replacing it now", self.name, error.str())
            self.request_replacement(self.producer, f"fatal: {error.str()}")

    def request_replacement(self, producer: Producer | None, reason: str) -> None:
        """Ask for ``producer`` to be replaced (any thread); the poll thread hands it to the loop."""
        with self.lock:
            if producer is None or producer is not self.producer or self._replace_wanted is not None:
                return
            self._replace_wanted = (producer, reason, time.monotonic())

    def hold(self, message: Held, reason: str) -> None:
        """Keep a message the producer gave back until its successor re-sends it (any thread)."""
        with self.lock:
            self.held.append(message)
        self.request_replacement(self.producer, reason)

    async def _replace_on_loop(self, failed: Producer) -> None:
        self.replace_producer(failed)

    def replace_producer(self, failed: Producer) -> Producer:
        """Replace ``failed`` (on the event loop, without awaiting: no publish() slips in) unless it
        already was; return the producer to use."""
        old = self.producer
        if old is not failed or old is None:
            return old if old is not None else failed
        wanted = self._replace_wanted
        since = wanted[2] if wanted is not None else time.monotonic()
        new = Producer(self.producer_conf)
        old.purge(in_queue=True, in_flight=True)
        deadline = time.monotonic() + self.settings.replace_timeout
        # The delivery reports of the purged messages: the publisher hands each one to hold().
        while len(old) and time.monotonic() < deadline:
            old.poll(0.05)
        if len(old):  # reports still to come: the poll thread serves them, each one a dead letter
            log.error("kafka %s: %d purged record(s) of the replaced producer not reported within "
                      "replace_timeout %gs: each is dead-lettered when it reports", self.name, len(old),
                      self.settings.replace_timeout)
            self.retired.append(old)
        with self.lock:
            held, self.held = self.held, []
            self.producer = new
            self._replace_wanted = None
        held.sort(key=lambda message: message[0])  # reports come in no useful order: publish order
        for _, topic, value, key, headers, on_delivery in held:
            while True:
                try:
                    new.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    new.poll(0.05)
        self._stalled = False
        self._acked, self._acked_at, self._epochs = 0, time.monotonic(), 0
        if wanted is not None and wanted[1] == "stall":
            self._stall_wait.next()  # a stall a new producer does not cure waits longer each time
            self.stats["replaced_after_stall"] += 1  # the watchdog's cure, stall_timeout late: worth counting
        took = round((time.monotonic() - since) * 1000)
        self.stats["producer_replaced"] += 1
        self.stats["resent"] += len(held)
        self.stats["replace_ms_last"] = took
        self.stats["replace_ms_max"] = max(self.stats["replace_ms_max"], took)
        log.warning("kafka %s: producer replaced %d ms after %s; %d message(s) re-sent in publish order "
                    "(duplicates possible: at least once)", self.name, took,
                    wanted[1] if wanted else "a failed produce", len(held))
        return new

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait until every queued message is acknowledged, across producer replacements; returns
        how many are still queued or held."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            producer = self.producer
            if producer is None:
                return 0
            remaining = await loop.run_in_executor(None, producer.flush, max(0.0, deadline - time.monotonic()))
            if (producer is self.producer and self._replace_wanted is None and not self.held) \
                    or time.monotonic() >= deadline:
                return remaining + len(self.held) if producer is self.producer else len(self.producer or ())
            await asyncio.sleep(0.01)  # a replacement is under way: flush its successor

    # -- the stall watchdog ----------------------------------------------------------------------
    # librdkafka retries a queued message until message.timeout.ms (5 min) and recovers from the
    # broker errors it knows. A broker that forgot the producer may also just never ack (Tansu
    # answers UNKNOWN_PRODUCER_ID to every retry, even after librdkafka bumped the epoch, without
    # librdkafka going fatal): the watchdog sees a broker up, messages waiting and no ack for
    # ``stall_timeout`` seconds, and asks for a replacement as above. It need not wait that long
    # when librdkafka says why: epoch bump after epoch bump (stats ``eos.producer_epoch``) and no ack
    # in between is the broker answering UNKNOWN_PRODUCER_ID to each new epoch.
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
        epochs = stats.get("eos", {}).get("producer_epoch", 0)
        self._epochs = min(self._epochs, epochs)  # a new producer id starts at epoch 0 again
        if acked != self._acked or not waiting or not up:
            if acked != self._acked:
                self._stall_wait.reset()  # acks flow again: the next stall gets the plain timeout
            self._acked, self._acked_at, self._epochs = acked, now, epochs
        elif epochs - self._epochs >= _FORGOTTEN_AFTER_BUMPS and not self._stalled:
            log.warning("kafka %s: %d message(s) waiting, no ack, %d producer epoch bumps: %s no longer knows "
                        "the producer; replacing it", self.name, waiting, epochs - self._epochs, self.settings.bootstrap)
            self._stalled = True
            self.request_replacement(self.producer, "unknown producer id (epoch bumps without an ack)")
        elif now - self._acked_at >= self._stall_wait.peek() and not self._stalled:
            log.warning("kafka %s: %d message(s) waiting and no ack from %s for %.0fs although it is up: "
                        "replacing the producer", self.name, waiting, self.settings.bootstrap, now - self._acked_at)
            self._stalled = True
            self.request_replacement(self.producer, "stall")

    # -- health ----------------------------------------------------------------------------------
    def detail(self) -> str:
        """One line for ``health().detail``."""
        if self.closed:
            return "closed"
        if not self.connected:
            return "not connected"
        detail = f"connected to {self.settings.bootstrap}"
        if self.last_error:
            detail += f" (last error: {self.last_error})"
        return detail
