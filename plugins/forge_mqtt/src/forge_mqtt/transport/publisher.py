"""Publishing: encoding, the in-flight window, the durable outbox and its replay.

At most ``max_inflight`` QoS 1 publishes wait for a PUBACK (``publish`` waits for a slot); paho
keeps them and resends them after a reconnect. Publishes made while disconnected go to the outbox
(SQLite) and are replayed in order after the reconnect; each leaves the outbox only after its PUBACK.

A publish on a topic of ``message_expiry_by_topic`` carries the MQTT 5 Message Expiry Interval, counted
from the envelope's time: what it waited before (in another transport, a bridge, the outbox, paho's
in-flight window at a reconnect) is taken off, and one already expired is dropped here (stats
``expired``) instead of being sent as if new.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable
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
#: The properties of every structured publish without an expiry: the same bytes each time, and paho
#: only calls pack() on them, so one object serves them all.
_STRUCTURED_PROPERTIES = PackedProperties(_STRUCTURED_TYPE_PROPERTY, _STRUCTURED_HEADERS)

#: A publish handed to paho and not yet acknowledged: topic, body, headers, qos, whether it came from the outbox,
#: and when it expires (clock time; None: never).
Pending = tuple[str, bytes, dict[str, str], int, bool, float | None]
#: How often (seconds) dropping expired messages is logged, with the count in between.
_EXPIRED_LOG_INTERVAL = 10.0


class Slots:
    """``asyncio.Semaphore``'s acquire/release, first come first served, for the in-flight window.

    Python 3.11's ``Semaphore.acquire`` asks ``locked()``, which builds a generator over the waiters
    on every call: 3 % of a Forge publish in py-spy. Here a free slot is one comparison; a release
    with someone waiting hands the slot straight to the oldest waiter."""

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.cancelled():
                self.waiters.remove(future)  # still queued (release pops what it hands out)
            else:
                self.release()  # handed a slot, then cancelled: the slot goes to the next one
            raise

    def try_acquire(self) -> bool:
        """Take a free slot now if there is one and nobody waits for one (no coroutine)."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():  # skip the cancelled
                future.set_result(None)
                return
        self.free += 1


class Publisher:
    """The publishing side of one transport, acting through its :class:`Connection`."""

    def __init__(self, conn: Connection, *, clock: Clock, data_dir: Path) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.name = conn.name
        self.stats = conn.stats
        self.clock = clock
        self.data_dir = data_dir
        self.structured = self.settings.structured
        self.is_v5 = self.settings.is_v5  # (settings.is_v5 is a property: a call per publish)
        self.slots = Slots(self.settings.max_inflight)
        self.pending: dict[int, Pending] = {}
        self.waiters: dict[int, asyncio.Future[int]] = {}
        #: (mid, reason code) of PUBACKs paho reported, taken over by :meth:`take_acks`.
        self.acks: deque[tuple[int, int]] = deque()
        self.outbox: Outbox | None = None
        #: topic -> (qos, expiry seconds or None, the topic as a PUBLISH writes it or b"" if paho refuses it)
        self._rules: dict[str, tuple[int, int | None, bytes]] = {}
        self.stats.setdefault("expired", 0)
        self._expired_logged = (float("-inf"), 0)  # when last logged, count dropped since
        self._replay_task: asyncio.Task[None] | None = None

    def open_outbox(self) -> Outbox:
        if self.outbox is None:
            self.outbox = Outbox(self.data_dir / f"outbox-{self.name}.db", max_bytes=self.settings.outbox_max_bytes,
                                 clock=self.clock)
        return self.outbox

    async def publish(self, topic: str, envelope: Envelope) -> None:
        if (pending := self.direct_publish(topic, envelope)) is not None:
            await pending

    def direct_publish(self, topic: str, envelope: Envelope) -> Awaitable[None] | None:
        """:meth:`publish` as a plain function (``Transport.direct_publish``): done when it returns
        None, else the coroutine that finishes it (waiting for a slot of the in-flight window), which
        the caller awaits before its next publish. The bus calls this instead of awaiting
        ``publish``: no coroutine per message while the window has room."""
        conn = self.conn
        if conn.closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
        if not topic or "+" in topic or "#" in topic:
            validate_topic(topic)
        if self.structured:
            body, headers = encode_structured(envelope), _STRUCTURED_HEADERS
        else:
            body, headers = encode(envelope, prefix="")
        rules = self._rules.get(topic)
        if rules is None:
            rules = self._rules[topic] = (self.settings.qos_for(topic), self.settings.expiry_for(topic),
                                          _topic_field(topic))
            if len(self._rules) > 10_000:
                self._rules.clear()
        qos, expiry, field = rules
        deadline: float | None = None
        if expiry is not None:
            now = self.clock.time()
            # From the envelope's time: it may have waited elsewhere. No time, or one ahead of this
            # clock (another host's): from now.
            born = envelope.time if 0 < envelope.time <= now else now
            deadline = born + expiry
            if deadline <= now:
                self._expired(topic, now - born)
                return None
        outbox = self.outbox
        if not conn.connected or (outbox is not None and outbox.depth):
            self._store(topic, body, headers, qos, deadline)
            return None
        if qos:
            slots = self.slots
            if slots.free <= 0 or slots.waiters:  # Slots.try_acquire, inlined
                return self._publish_later(topic, body, headers, qos, deadline)
            slots.free -= 1
            client = conn.client
            if deadline is None and self.structured and self.is_v5 and client is not None and field:
                # hand()'s common path, inlined: a structured QoS 1 publish without an expiry
                info = client.publish_packed(topic, field, body, qos, _STRUCTURED_PROPERTIES)
                rc = info.rc
                # NO_CONN: paho keeps a QoS 1 message and sends it after the reconnect.
                if rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_NO_CONN:
                    self.pending[info.mid] = (topic, body, headers, qos, False, None)
                    self.stats["published"] += 1
                    return None
                slots.release()
                self._store(topic, body, headers, qos, deadline)
                return None
        if self.hand(topic, body, headers, qos, False, deadline) is None:
            self._store(topic, body, headers, qos, deadline)
        return None

    async def _publish_later(self, topic: str, body: bytes, headers: dict[str, str], qos: int,
                             deadline: float | None) -> None:
        """The rest of a publish that found the in-flight window full: wait for a slot, then send."""
        if await self.send(topic, body, headers, qos, deadline=deadline) is None:
            self._store(topic, body, headers, qos, deadline)

    def _expired(self, topic: str, age: float) -> None:
        """Count (and now and then log) a message not sent because its expiry passed."""
        self.stats["expired"] += 1
        last, count = self._expired_logged
        now = time.monotonic()
        if now - last < _EXPIRED_LOG_INTERVAL:
            self._expired_logged = (last, count + 1)
            return
        self._expired_logged = (now, 0)
        log.warning("transport %s: not sent to %r: its message expiry passed (%.1f s old; message_expiry_by_topic)%s",
                    self.name, topic, age, f"; {count} more since the last report" if count else "")

    def _store(self, topic: str, body: bytes, headers: dict[str, str], qos: int, deadline: float | None) -> None:
        """Keep a publish durably until the broker is back (or fail loudly if there is no outbox)."""
        if not self.settings.outbox:
            raise TransportNotReady(f"transport {self.name!r}: not connected to MQTT broker {self.conn.broker} "
                                    f"and the outbox is off; publish to {topic!r} not sent")
        self.open_outbox().put(topic, body, _outbox_headers(headers, qos, deadline))
        self.stats["outboxed"] += 1
        if self.conn.connected:
            self._start_replay()

    async def send(self, topic: str, body: bytes, headers: dict[str, str], qos: int,
                   from_outbox: bool = False, *, deadline: float | None = None) -> int | None:
        """Hand one publish to paho; its mid (QoS 1) or 0 (QoS 0), None if paho refused it. ``deadline``
        (clock time): the Message Expiry Interval is what is left until then, at least 1 s."""
        if qos:
            await self.slots.acquire()  # backpressure: never more than max_inflight unacked
        return self.hand(topic, body, headers, qos, from_outbox, deadline)

    def hand(self, topic: str, body: bytes, headers: dict[str, str], qos: int, from_outbox: bool,
             deadline: float | None) -> int | None:
        """:meth:`send` once a QoS 1 publish holds its slot (released here if paho does not take it)."""
        client = self.conn.client
        if client is None or self.conn.closed:
            if qos:
                self.slots.release()
            if self.conn.closed:
                raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
            return None
        props = None
        if self.is_v5:
            # Outbox entries keep their headers: an empty dict is a structured-mode message.
            if not headers and deadline is None:
                props = _STRUCTURED_PROPERTIES
            else:
                expiry = None if deadline is None else max(1, math.ceil(deadline - self.clock.time()))
                props = PackedProperties(_STRUCTURED_TYPE_PROPERTY if not headers else _CONTENT_TYPE_PROPERTY,
                                         headers, expiry)
        info = client.publish(topic, body, qos, properties=props)
        rc = info.rc
        if qos:
            # NO_CONN: paho keeps a QoS 1 message and sends it after the reconnect.
            if rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_NO_CONN:
                self.pending[info.mid] = (topic, body, headers, qos, from_outbox, deadline)
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
        acks, pending, waiters, slots = self.acks, self.pending, self.waiters, self.slots
        while acks:
            mid, code = acks.popleft()
            entry = pending.pop(mid, None)
            if entry is not None:
                if slots.waiters:
                    slots.release()
                else:  # Slots.release with nobody waiting, inlined
                    slots.free += 1
                if code >= 0x80:
                    self.stats["refused_by_broker"] += 1
                    log.error("transport %s: MQTT broker %s refused the publish on %r: reason code %d",
                              self.name, self.conn.broker, entry[0], code)
            if waiters:  # (the replay's and the death certificate's: seldom any)
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
                deadline = msg.headers.get("x")
                if deadline is not None and deadline <= self.clock.time():
                    self._expired(msg.topic, self.clock.time() - msg.queued_at)  # kept too long: not sent at all
                    outbox.ack(msg.seq)
                    continue
                mid = await self.send(msg.topic, msg.body, msg.headers["h"], msg.headers["q"], True, deadline=deadline)
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
            for topic, body, headers, qos, from_outbox, deadline in list(self.pending.values()):
                if not from_outbox:  # replayed ones are still in the outbox
                    self.outbox.put(topic, body, _outbox_headers(headers, qos, deadline))
        self.pending.clear()

    def close(self) -> None:
        for future in self.waiters.values():
            future.cancel()
        if self.outbox is not None:
            self.outbox.close()


def _topic_field(topic: str) -> bytes:
    """``topic`` as a PUBLISH carries it (two-byte length, UTF-8), or b"" for one paho refuses to
    publish to (empty, a wildcard, too long, not UTF-8: its ``publish`` raises the error)."""
    try:
        field = utf8(topic)
    except UnicodeEncodeError:
        return b""
    return field if 2 < len(field) <= 65_537 and b"+" not in field and b"#" not in field else b""


def _outbox_headers(headers: dict[str, str], qos: int, deadline: float | None) -> dict[str, object]:
    """What the outbox keeps beside a body: the headers, the QoS and (if it expires) the deadline."""
    return {"h": headers, "q": qos} if deadline is None else {"h": headers, "q": qos, "x": deadline}
