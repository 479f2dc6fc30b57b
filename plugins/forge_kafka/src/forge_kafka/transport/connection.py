"""The Kafka clients on the event loop: admin and producer, the producer's poll thread, the stall
watchdog that replaces a producer a restarted broker no longer knows.

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

log = logging.getLogger("forge.transport.kafka")

#: A producer-wide delivery report callback: ``(error, message)``.
DeliveryReport = Callable[[KafkaError | None, Message], None]

#: A producer replaced after a stall that a new producer did not cure waits up to this many
#: ``stall_timeout``s before the next replacement (no replacement storm for another cause).
_STALL_MAX_FACTOR = 32


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
        self.last_error = ""
        self.known_topics: set[str] = set()
        #: While a stalled producer is replaced: the new one, to which its purged messages are re-sent.
        self.resend_to: Producer | None = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._acked = 0
        self._acked_at = time.monotonic()
        self._stalled = False
        # The stall timeout doubles after each replacement that brought no ack, reset once acks flow.
        self._stall_wait = Backoff(initial=settings.stall_timeout,
                                   maximum=settings.stall_timeout * _STALL_MAX_FACTOR)

    # -- configuration -------------------------------------------------------------------------
    def common_config(self) -> dict[str, Any]:
        """librdkafka settings every client of this transport shares (``config`` passthrough last)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.settings.bootstrap,
                                "client.id": self.settings.client_id or f"forge-{self.plant}-{self.name}",
                                "error_cb": self._on_client_error}
        conf.update(self.settings.config)
        return conf

    def _on_client_error(self, error: KafkaError) -> None:
        self.last_error = str(error)
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            log.warning("kafka %s: %s (%s)", self.name, error.str(), self.settings.bootstrap)

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
            **self.settings.producer,
        }
        self.producer = Producer(self.producer_conf, logger=log)
        self._poller = threading.Thread(target=self._poll_producer, name=f"forge-kafka-{self.name}-producer",
                                        daemon=True)
        self._poller.start()
        self.connected = True
        log.info("kafka transport %s connected to %s (%d topics)", self.name, self.settings.bootstrap,
                 len(self.known_topics))

    async def close(self) -> None:
        """Flush what the producer holds (up to 10 s) and stop its poll thread."""
        self.connected = False
        loop = asyncio.get_running_loop()
        if self.producer is not None:
            remaining = await loop.run_in_executor(None, self.producer.flush, 10.0)
            if remaining:
                log.error("kafka %s: %d message(s) not delivered at close", self.name, remaining)
        self._closing.set()
        if self._poller is not None:
            await loop.run_in_executor(None, self._poller.join, 5.0)

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
            if self._stalled and self.loop is not None and not self._closing.is_set():
                # The swap runs on the event loop, so no publish() slips in between.
                future = asyncio.run_coroutine_threadsafe(self._replace_producer(), self.loop)
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
                self._stall_wait.reset()  # acks flow again: the next stall gets the plain timeout
            self._acked, self._acked_at = acked, now
        elif now - self._acked_at >= self._stall_wait.peek() and not self._stalled:
            log.warning("kafka %s: %d message(s) waiting and no ack from %s for %.0fs although it is up: "
                        "replacing the producer", self.name, waiting, self.settings.bootstrap, now - self._acked_at)
            self._stalled = True

    async def _replace_producer(self) -> None:
        old = self.producer
        assert old is not None
        new = Producer(self.producer_conf, logger=log)
        self.resend_to = new
        try:
            old.purge(in_queue=True, in_flight=True)
            deadline = time.monotonic() + 10.0
            # Delivery reports of the purged messages, in order: the publisher re-sends each one
            # to ``resend_to`` (KafkaPublisher.on_failed).
            while len(old) and time.monotonic() < deadline:
                old.poll(0.05)
        finally:
            self.resend_to = None
            self.producer = new
            self._acked, self._acked_at = 0, time.monotonic()
            # A stall a new producer does not cure (no ack at all since) waits longer each time.
            self._stall_wait.next()
        self.stats["producer_replaced"] += 1
        log.warning("kafka %s: producer replaced; %d message(s) re-sent", self.name, self.stats["resent"])

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
