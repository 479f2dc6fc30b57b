"""Publishing: encoding, the in-flight window, the durable outbox and its replay.

At most ``max_inflight`` QoS 1 publishes wait for a PUBACK (``publish`` waits for a slot); paho
keeps them and resends them after a reconnect. Publishes made while disconnected go to the outbox
(SQLite) and are replayed in order after the reconnect; each leaves the outbox only after its PUBACK.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path

import paho.mqtt.client as mqtt
from forge_core import Clock, Envelope, TransportClosed, TransportNotReady
from forge_core.tactics import Outbox
from forge_core.transport import CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, encode, encode_structured, validate_topic

from forge_mqtt.transport.connection import Connection
from forge_mqtt.transport.paho_adapter import PackedProperties, utf8

__all__ = ["Publisher"]

log = logging.getLogger("forge.transport.mqtt")

_CONTENT_TYPE_PROPERTY = b"\x03" + utf8(CONTENT_TYPE)
#: Structured mode: no user properties (an empty header dict, in the outbox too); the content type
#: says what the body is.
_STRUCTURED_HEADERS: dict[str, str] = {}
_STRUCTURED_TYPE_PROPERTY = b"\x03" + utf8(STRUCTURED_CONTENT_TYPE)

#: A publish handed to paho and not yet acknowledged: topic, body, headers, qos, whether it came from the outbox.
Pending = tuple[str, bytes, dict[str, str], int, bool]


class Publisher:
    """The publishing side of one transport, acting through its :class:`Connection`."""

    def __init__(self, conn: Connection, *, clock: Clock, data_dir: Path) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.name = conn.name
        self.stats = conn.stats
        self.clock = clock
        self.data_dir = data_dir
        self.structured = self.settings.content_mode == "structured"
        self.slots = asyncio.Semaphore(self.settings.max_inflight)
        self.pending: dict[int, Pending] = {}
        self.waiters: dict[int, asyncio.Future[int]] = {}
        #: (mid, reason code) of PUBACKs paho reported, taken over by :meth:`take_acks`.
        self.acks: deque[tuple[int, int]] = deque()
        self.outbox: Outbox | None = None
        self._qos_cache: dict[str, int] = {}
        self._replay_task: asyncio.Task[None] | None = None

    def open_outbox(self) -> Outbox:
        if self.outbox is None:
            self.outbox = Outbox(self.data_dir / f"outbox-{self.name}.db", max_bytes=self.settings.outbox_max_bytes,
                                 clock=self.clock)
        return self.outbox

    async def publish(self, topic: str, envelope: Envelope) -> None:
        conn = self.conn
        if conn.closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
        if not topic or "+" in topic or "#" in topic:
            validate_topic(topic)
        if self.structured:
            body, headers = encode_structured(envelope), _STRUCTURED_HEADERS
        else:
            body, headers = encode(envelope, prefix="")
        qos = self._qos_cache.get(topic)
        if qos is None:
            qos = self._qos_cache[topic] = self.settings.qos_for(topic)
            if len(self._qos_cache) > 10_000:
                self._qos_cache.clear()
        outbox = self.outbox
        if not conn.connected or (outbox is not None and outbox.depth):
            self._store(topic, body, headers, qos)
            return
        if await self.send(topic, body, headers, qos) is None:
            self._store(topic, body, headers, qos)

    def _store(self, topic: str, body: bytes, headers: dict[str, str], qos: int) -> None:
        """Keep a publish durably until the broker is back (or fail loudly if there is no outbox)."""
        if not self.settings.outbox:
            raise TransportNotReady(f"transport {self.name!r}: not connected to MQTT broker {self.conn.broker} "
                                    f"and the outbox is off; publish to {topic!r} not sent")
        self.open_outbox().put(topic, body, {"h": headers, "q": qos})
        self.stats["outboxed"] += 1
        if self.conn.connected:
            self._start_replay()

    async def send(self, topic: str, body: bytes, headers: dict[str, str], qos: int,
                   from_outbox: bool = False) -> int | None:
        """Hand one publish to paho; its mid (QoS 1) or 0 (QoS 0), None if paho refused it."""
        if qos:
            await self.slots.acquire()  # backpressure: never more than max_inflight unacked
        client = self.conn.client
        if client is None or self.conn.closed:
            if qos:
                self.slots.release()
            if self.conn.closed:
                raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
            return None
        props = None
        if self.settings.is_v5:
            # Outbox entries keep their headers: an empty dict is a structured-mode message.
            props = PackedProperties(_STRUCTURED_TYPE_PROPERTY if not headers else _CONTENT_TYPE_PROPERTY, headers)
        info = client.publish(topic, body, qos, properties=props)
        rc = info.rc
        if qos:
            # NO_CONN: paho keeps a QoS 1 message and sends it after the reconnect.
            if rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_NO_CONN:
                self.pending[info.mid] = (topic, body, headers, qos, from_outbox)
                self.stats["published"] += 1
                return info.mid
            self.slots.release()
            return None
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        self.stats["published"] += 1
        return 0

    def take_acks(self) -> None:
        """Free the slots of acknowledged publishes and wake whoever waits for them (on the loop)."""
        acks, pending, waiters = self.acks, self.pending, self.waiters
        while acks:
            mid, code = acks.popleft()
            entry = pending.pop(mid, None)
            if entry is not None:
                self.slots.release()
                if code >= 0x80:
                    self.stats["refused_by_broker"] += 1
                    log.error("transport %s: MQTT broker %s refused the publish on %r: reason code %d",
                              self.name, self.conn.broker, entry[0], code)
            waiter = waiters.pop(mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(code)

    def waiter(self, mid: int) -> asyncio.Future[int]:
        """A future resolved with the PUBACK reason code of ``mid``."""
        future = self.waiters[mid] = asyncio.get_running_loop().create_future()
        return future

    # -- the outbox ------------------------------------------------------------------------------------
    def on_connected(self) -> None:
        if self.outbox is not None and self.outbox.depth and not self.conn.closed:
            self._start_replay()

    def _start_replay(self) -> None:
        if self._replay_task is None or self._replay_task.done():
            self._replay_task = self.conn.spawn(self._replay())

    async def _replay(self) -> None:
        """Send the outbox in order; each message leaves it only after its PUBACK (QoS 1)."""
        outbox = self.outbox
        assert outbox is not None
        conn = self.conn
        while not conn.closed:
            if not conn.connected:
                await conn.connected_event.wait()
                continue
            batch = outbox.peek(200)
            if not batch:
                return
            sent: list[tuple[int, asyncio.Future[int] | None]] = []
            for msg in batch:
                if not conn.connected:
                    break
                mid = await self.send(msg.topic, msg.body, msg.headers["h"], msg.headers["q"], True)
                if mid is None:
                    break
                sent.append((msg.seq, self.waiter(mid) if mid else None))
            for seq, waiter in sent:
                if waiter is not None:
                    await waiter  # paho resends it after a reconnect, so this resolves eventually
                outbox.ack(seq)
                self.stats["replayed"] += 1
            if len(sent) < len(batch):
                await asyncio.sleep(0.05)

    # -- close -------------------------------------------------------------------------------------------
    def stop_replay(self) -> None:
        if self._replay_task is not None:
            self._replay_task.cancel()

    async def drain(self, deadline: float) -> None:
        """Wait (until ``deadline``, ``time.monotonic()``) for the PUBACKs of what is in flight."""
        while self.pending and self.conn.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def stash_pending(self) -> None:
        """Unacknowledged publishes go to the outbox, to be sent by the next run."""
        if self.outbox is not None:
            for topic, body, headers, qos, from_outbox in list(self.pending.values()):
                if not from_outbox:  # replayed ones are still in the outbox
                    self.outbox.put(topic, body, {"h": headers, "q": qos})
        self.pending.clear()

    def close(self) -> None:
        for future in self.waiters.values():
            future.cancel()
        if self.outbox is not None:
            self.outbox.close()
