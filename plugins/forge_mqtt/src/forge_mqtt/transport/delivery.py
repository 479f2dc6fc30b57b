"""Delivery of received messages: the inbox paho fills, each message handed to its local
subscriptions in arrival order, local redelivery, the report of what keeps failing, and the manual
PUBACK after every callback returned or gave up.

A message whose callbacks are all sync bus handlers (``callback.direct``, see
``forge_core.transport.base.DirectCallback``) is delivered right after the read that brought it,
without a coroutine, in the same loop turn (up to :data:`SYNC_BATCH`); anything else (an async handler, a
handler that returned an awaitable, more than a turn's worth, a resumed session waiting for its
subscriptions) goes on in one drain task, in the same order. Delivering at once also keeps the
inbox short: a message that waits in a deep inbox lives through garbage collections, and with
thousands waiting (the broker may have 65,535 QoS 1 messages in flight to an MQTT 5 client) the
collector's passes over them cost more than the delivery itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from forge_core import RawMessage, dead_letters
from forge_core.transport import STRUCTURED_CONTENT_TYPE, matches

from forge_mqtt.transport.decoder import ReceivedProperties
from forge_mqtt.transport.paho_adapter import MAX_PACKETS_PER_EVENT

if TYPE_CHECKING:
    from forge_mqtt.settings import MqttSettings
    from forge_mqtt.transport.connection import Connection
    from forge_mqtt.transport.subscriber import BrokerSub, LocalSub, UndeliverableCallback

__all__ = ["DRAIN_BATCH", "SYNC_BATCH", "Delivering"]

log = logging.getLogger("forge.transport.mqtt")

#: Messages delivered at once after a read, at most: one read's worth (a read takes up to as many
#: packets), so reading does not outrun delivery; more waits for the drain task, which lets timers
#: (heartbeats, monitors) run every :data:`DRAIN_BATCH`.
SYNC_BATCH = MAX_PACKETS_PER_EVENT
DRAIN_BATCH = 64
#: The headers of every structured event received: one dict (RawMessage.headers are read-only).
_STRUCTURED = {"content-type": STRUCTURED_CONTENT_TYPE}
#: The headers of every message received without properties (read-only too).
_NO_HEADERS: dict[str, str] = {}


class Delivering:
    """The delivering half of :class:`~forge_mqtt.transport.subscriber.Subscriber` (its base class):
    the state below is set by the subscriber's constructor."""

    conn: Connection
    settings: MqttSettings
    #: ``settings.max_message_bytes`` and ``settings.max_redeliveries`` (frozen settings) as plain attributes:
    #: a pydantic model's attribute costs a message twice a plain one's.
    max_message_bytes: int
    max_redeliveries: int
    name: str
    stats: dict[str, int]
    report: UndeliverableCallback
    by_filter: dict[str, BrokerSub]
    by_id: dict[int, BrokerSub]
    #: (connection generation, message) as paho delivered them, in arrival order.
    inbox: deque[tuple[int, mqtt.MQTTMessage]]
    _stale_idents: set[int]
    _draining: bool
    _resume_grace_until: float
    #: When the message being dispatched was read (paho's ``timestamp``, monotonic), else None.
    _dispatching_since: float | None
    #: The task running :meth:`_drain`, while it runs (a cancel from inside it waits for nothing).
    _drain_task: asyncio.Task[None] | None

    def start_drain(self) -> None:
        """Deliver what paho queued (called once per read burst): at once as far as the callbacks
        allow, the rest in the drain task."""
        inbox = self.inbox
        if not inbox or self._draining or self.conn.closed:
            return
        pending: tuple[float, Awaitable[None]] | None = None
        if not self._resume_grace_until:
            pending = self._deliver_now()
            if pending is None and not inbox:
                return
        self._draining = True
        self._drain_task = self.conn.spawn(self._drain(pending))

    def _deliver_now(self) -> tuple[float, Awaitable[None]] | None:
        """Up to :data:`SYNC_BATCH` messages from the inbox, each finished before the next; stops at
        one that needs awaiting and returns (its read time, what finishes it)."""
        inbox, conn = self.inbox, self.conn
        for _ in range(SYNC_BATCH):
            if not inbox or conn.closed:
                return None
            generation, message = inbox.popleft()
            self._dispatching_since = message.timestamp
            try:
                rest = self._handle(generation, message)
            finally:
                self._dispatching_since = None
            if rest is not None:
                return message.timestamp, rest
        return None

    async def _drain(self, pending: tuple[float, Awaitable[None]] | None = None) -> None:
        inbox, conn = self.inbox, self.conn
        handled = 0
        try:
            if pending is not None:
                self._dispatching_since = pending[0]
                try:
                    await pending[1]
                finally:
                    self._dispatching_since = None
            while inbox and not conn.closed:
                handled += 1
                if handled % DRAIN_BATCH == 0:
                    await asyncio.sleep(0)  # a flood in the inbox must not starve timers (heartbeats, monitors)
                generation, message = inbox.popleft()
                while self._resume_grace_until and not self._known(message):
                    if time.monotonic() > self._resume_grace_until:
                        self._resume_grace_until = 0.0
                        break
                    await asyncio.sleep(0.02)
                self._dispatching_since = message.timestamp
                try:
                    if (rest := self._handle(generation, message)) is not None:
                        await rest
                finally:
                    self._dispatching_since = None
        finally:
            self._draining = False
            self._drain_task = None

    def backlog_age(self) -> float:
        """How long the oldest message received but not yet handed over has waited: the one being
        dispatched, else the head of the inbox (paho stamps ``timestamp`` with ``time.monotonic``
        when it reads the packet), or, when reads stop at their bound with packets left in the
        socket, at least since the first such read."""
        since = self._dispatching_since
        if since is None and self.inbox:
            since = self.inbox[0][1].timestamp
        unread = self.conn.unread_since
        if unread is not None and (since is None or unread < since):
            since = unread
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def _known(self, message: mqtt.MQTTMessage) -> bool:
        """Some subscription of this process is there for the message."""
        idents = getattr(message.properties, "SubscriptionIdentifier", None) if message.properties else None
        if idents:
            return any(i in self.by_id for i in idents)
        return any(matches(bs.pattern, message.topic) for bs in list(self.by_filter.values()))

    def _targets(self, topic: str, properties: Any) -> list[LocalSub]:
        if properties is not None:
            idents = getattr(properties, "SubscriptionIdentifier", None)
            if idents:
                if len(idents) == 1 and (bs := self.by_id.get(idents[0])) is not None:
                    return bs.pick()  # one subscription of this process: most messages
                targets: list[LocalSub] = []
                for ident in idents:
                    bs = self.by_id.get(ident)
                    if bs is not None:
                        targets.extend(bs.pick())
                    elif ident not in self._stale_idents:
                        self._stale_idents.add(ident)
                        log.warning("transport %s: %s arrived for subscription identifier %d, which this process "
                                    "has not subscribed: a subscription kept in the resumed session of %r; "
                                    "acknowledged and dropped", self.name, topic, ident, self.conn.client_id)
                if not targets:
                    self.stats["stale_subscription"] += 1
                return targets
        # MQTT 3.1.1 (Mosquitto sends one copy per client): every matching subscription locally.
        seen: list[LocalSub] = []
        for bs in list(self.by_filter.values()):
            if matches(bs.pattern, topic):
                seen.extend(s for s in bs.pick() if s not in seen)
        return seen

    def _handle(self, generation: int, message: mqtt.MQTTMessage) -> Awaitable[None] | None:
        """Deliver ``message`` to its local subscriptions and acknowledge it: None when that is done,
        else the coroutine that finishes it (the caller awaits it before the next message)."""
        topic = message.topic
        props: Any = message.properties  # paho's Properties or FastClient's ReceivedProperties
        headers: dict[str, str] = _NO_HEADERS
        idents: list[int] | None = None
        only: BrokerSub | None = None  # the one subscription of this process the message names, if so
        if props is not None:
            if props.__class__ is ReceivedProperties:  # FastClient's: two fields always set, no AttributeError
                pairs = props.user_pairs
                content_type = props.content_type
            else:  # paho's own decoder (QoS 2)
                pairs = getattr(props, "UserProperty", None)
                content_type = getattr(props, "ContentType", None)
            if pairs:
                headers = dict(pairs)
            elif content_type == STRUCTURED_CONTENT_TYPE:
                headers = _STRUCTURED  # the Decoder's mark of structured mode
            idents = getattr(props, "SubscriptionIdentifier", None)
            if idents and len(idents) == 1:
                only = self.by_id.get(idents[0])
        size = len(message.payload)
        if size > self.max_message_bytes:
            # refused before decoding; the dead letter keeps the size and headers, never the body
            self.stats["too_large"] += 1
            self.report(topic, RawMessage(b"", headers),
                        dead_letters.MessageTooLarge(size, self.max_message_bytes))
            self._ack(generation, message)
            return None
        payload: Any = message.payload  # paho's type says bytearray too; it is bytes
        raw = RawMessage(payload, headers)
        retries = self.max_redeliveries if message.qos else 0
        # _targets' common case read here: one identifier, of one subscription without a group
        if only is not None and only.group is None:
            targets = list(only.locals)
        else:  # (no identifier: _targets' topic match, as for MQTT 3.1.1)
            targets = self._targets(topic, props if idents else None)
        index = -1
        for local in targets:
            index += 1
            direct = local.direct
            if direct is None:
                return self._finish(generation, message, raw, retries, targets, index, None, 0)
            attempt = 0
            while not local.cancelled:
                try:
                    result = direct(topic, raw)
                except Exception as exc:  # not acknowledged: deliver again, locally
                    if attempt < retries:
                        attempt += 1
                        self.stats["redelivered"] += 1
                        continue
                    self._give_up(topic, raw, local, attempt, exc)
                    break
                if result is not None:
                    return self._finish(generation, message, raw, retries, targets, index, result, attempt)
                self.stats["delivered"] += 1
                break
        self._ack(generation, message)
        return None

    async def _finish(self, generation: int, message: mqtt.MQTTMessage, raw: RawMessage, retries: int,
                      targets: list[LocalSub], index: int, result: Awaitable[None] | None, attempt: int) -> None:
        """The rest of :meth:`_handle` from ``targets[index]`` on; ``result``: what that target's
        direct call (its ``attempt``-th redelivery) left to await, None if it has not been called."""
        topic = message.topic
        if result is not None:
            local = targets[index]
            index += 1
            local.running = True
            try:
                await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt < retries:
                    self.stats["redelivered"] += 1
                    await self._deliver(local, topic, raw, retries, attempt + 1, exc)
                else:
                    self._give_up(topic, raw, local, attempt, exc)
            else:
                self.stats["delivered"] += 1
            finally:
                _ended(local)
        for local in targets[index:]:
            await self._deliver(local, topic, raw, retries, 0)
        self._ack(generation, message)

    async def _deliver(self, local: LocalSub, topic: str, raw: RawMessage, retries: int, attempt: int,
                       failed: Exception | None = None) -> None:
        """``local``'s callback until it returns, up to ``retries`` redeliveries (``attempt`` done, the
        last of them raising ``failed``). A subscription cancelled before a redelivery gets none: the
        message is reported undeliverable then, as when the redeliveries run out."""
        while not local.cancelled:
            local.running = True
            try:
                await local.callback(topic, raw)
                self.stats["delivered"] += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not acknowledged: deliver again, locally (the loop goes on)
                if attempt >= retries:
                    self._give_up(topic, raw, local, attempt, exc)
                    return
                attempt += 1
                failed = exc
                self.stats["redelivered"] += 1
            finally:  # (no ``continue`` above: mypyc cannot compile one inside try/finally)
                _ended(local)
        if failed is not None:  # cancelled before its redelivery: given up on, not acknowledged unreported
            self._give_up(topic, raw, local, attempt - 1, failed)

    def _give_up(self, topic: str, raw: RawMessage, local: LocalSub, attempt: int, exc: Exception) -> None:
        self.stats["undeliverable"] += 1
        log.error("transport %s: giving up on %s after %d deliveries to %r: %s", self.name, topic,
                  attempt + 1, local.owner or local.pattern, exc)
        self.report(topic, raw, exc)

    def _ack(self, generation: int, message: mqtt.MQTTMessage) -> None:
        """The PUBACK of a QoS 1 message, unless it came on an earlier connection (the broker sends
        it again on this one)."""
        conn = self.conn
        if message.qos and generation == conn.generation and (client := conn.client) is not None:
            client.ack(message.mid, message.qos)


def _ended(local: LocalSub) -> None:
    """``local``'s callback call has ended: wake a cancel waiting for it."""
    local.running = False
    idle = local.idle
    if idle is not None and not idle.done():
        idle.set_result(None)
