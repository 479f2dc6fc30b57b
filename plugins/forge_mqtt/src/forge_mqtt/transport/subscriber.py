"""Subscriptions: broker subscriptions with Subscription Identifiers, shared groups, resubscribing
after a reconnect; delivery (local redelivery, the manual PUBACK after every callback returned) is
:mod:`forge_mqtt.transport.delivery`.

The broker's copy of a QoS 1 message is acknowledged only after every local callback returned or
one gave up: a raising callback gets the message again, locally, up to ``max_redeliveries`` times,
then it is reported undeliverable (dead letter) and acknowledged. A message whose PUBACK was never
sent is redelivered by the broker only if the session survives (``session_expiry`` > 0).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from forge_core import Envelope, RawMessage, TransportClosed, TransportError
from forge_core.transport import MessageCallback, Subscription, validate_pattern
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from forge_mqtt.transport.connection import Connection
from forge_mqtt.transport.delivery import Delivering

__all__ = ["MAX_IDENT", "BrokerSub", "LocalSub", "Subscriber", "UndeliverableCallback", "ident_for"]

log = logging.getLogger("forge.transport.mqtt")

UndeliverableCallback = Callable[[str, RawMessage, BaseException], None]
#: A callback's plain-function form (``forge_core.transport.base.DirectCallback``: a sync bus handler's
#: ``callback.direct``): None when the delivery is done, else an awaitable that finishes it.
DirectCallback = Callable[[str, Envelope | RawMessage], Awaitable[None] | None]

#: MQTT 5 Subscription Identifiers are 1..268,435,455.
MAX_IDENT = 268_435_455


def ident_for(filter: str) -> int:
    """A Subscription Identifier derived from the filter, so it means the same filter in every process
    run: a resumed session keeps the subscriptions (and identifiers) of an earlier run."""
    return zlib.crc32(filter.encode()) % MAX_IDENT + 1


class LocalSub(Subscription):
    """One ``subscribe()`` call: a callback behind a broker subscription."""

    __slots__ = ("callback", "cancelled", "direct", "filter", "group", "idle", "owner", "pattern", "running",
                 "subscriber")

    def __init__(self, subscriber: Subscriber, pattern: str, callback: MessageCallback, group: str | None,
                 owner: str | None, filter: str) -> None:
        self.subscriber = subscriber
        self.pattern = pattern
        self.callback = callback
        #: The callback's plain-function form (a sync bus handler's ``callback.direct``), else None.
        self.direct: DirectCallback | None = getattr(callback, "direct", None)
        self.group = group
        self.owner = owner
        self.filter = filter
        self.cancelled = False
        #: True while an awaited call of ``callback`` (or of what ``direct`` returned) is under way.
        self.running = False
        #: Set by :meth:`Subscriber.cancel` while it waits for that call: resolved when it ends.
        self.idle: asyncio.Future[None] | None = None

    async def cancel(self) -> None:
        """Route this subscription nothing more, start no further call of its callback, and return
        once a call under way has ended (bounded by the transport's ``cancel_timeout``)."""
        await self.subscriber.cancel(self)


@dataclass(eq=False)
class BrokerSub:
    """One subscription at the broker (a filter, ``$share/<group>/`` included), shared by the
    local subscriptions on the same pattern and group."""

    filter: str
    pattern: str
    group: str | None
    ident: int
    qos: int
    locals: list[LocalSub] = field(default_factory=list)
    turn: int = 0
    confirmed: bool = False  # SUBACKed in the broker's current session

    def pick(self) -> list[LocalSub]:
        """Every local subscriber, or one in turn when they share a group."""
        if self.group is None or len(self.locals) <= 1:
            return list(self.locals)
        self.turn += 1
        return [self.locals[self.turn % len(self.locals)]]


class Subscriber(Delivering):
    """The subscribing side of one transport, acting through its :class:`Connection`; delivery is
    its base class's (:class:`~forge_mqtt.transport.delivery.Delivering`)."""

    def __init__(self, conn: Connection, report: UndeliverableCallback) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.max_message_bytes = conn.settings.max_message_bytes
        self.max_redeliveries = conn.settings.max_redeliveries
        self.name = conn.name
        self.stats = conn.stats
        #: Called with (topic, raw message, last error) when a callback kept raising: the transport's
        #: way to its ``on_undeliverable`` (the runtime's dead letters).
        self.report = report
        self.by_filter: dict[str, BrokerSub] = {}
        self.by_id: dict[int, BrokerSub] = {}
        #: (connection generation, message) as paho delivered them, drained on the loop.
        self.inbox: deque[tuple[int, mqtt.MQTTMessage]] = deque()
        self._sub_mids: dict[int, BrokerSub] = {}
        self._sub_waiters: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._unsubscribe_later: set[str] = set()
        #: Set by the transport's detach() (the process is stopping): a persistent session keeps its
        #: subscriptions at the broker, which queues what arrives until the next start.
        self.keep_session = False
        self._stale_idents: set[int] = set()
        self._draining = False
        self._resume_grace_until = 0.0
        #: When the message being dispatched was read (paho's ``timestamp``, monotonic), else None.
        self._dispatching_since: float | None = None
        #: The task delivering from the inbox (``_drain``), while it runs.
        self._drain_task: asyncio.Task[None] | None = None

    # -- subscribing -----------------------------------------------------------------------------------
    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> Subscription:
        conn = self.conn
        if conn.closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot subscribe to {pattern!r}")
        validate_pattern(pattern)
        if group is not None and (not group or any(c in group for c in "/+#")):
            raise ValueError(f"group {group!r}: a shared-subscription group name cannot be empty or "
                             f"contain '/', '+' or '#'")
        filt = f"$share/{group}/{pattern}" if group else pattern
        local = LocalSub(self, pattern, callback, group, owner, filt)
        with conn.lock:
            bs = self.by_filter.get(filt)
            new = bs is None
            if bs is None:
                ident = ident_for(filt)
                while ident in self.by_id:  # a crc32 collision within this process: the next free one
                    ident = ident % MAX_IDENT + 1
                bs = BrokerSub(filt, pattern, group, ident, self.settings.qos_for(pattern))
                self._unsubscribe_later.discard(filt)
                self.by_filter[filt] = bs
                self.by_id[bs.ident] = bs
            bs.locals.append(local)
            send_now = new and conn.connected
        if send_now and conn.client is not None:
            await self._confirm_subscribe(conn.client, bs, local)
        return local

    def _subscribe_packet(self, client: mqtt.Client, bs: BrokerSub) -> tuple[int, int | None]:
        if self.settings.is_v5:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = bs.ident
            # Retain handling 1: retained messages only for a subscription the session did not have yet.
            options = SubscribeOptions(qos=bs.qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            rc, mid = client.subscribe(bs.filter, options=options, properties=props)
        else:
            rc, mid = client.subscribe(bs.filter, qos=bs.qos)
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._sub_mids[mid] = bs
        return rc, mid

    async def _confirm_subscribe(self, client: mqtt.Client, bs: BrokerSub, local: LocalSub) -> None:
        rc, mid = self._subscribe_packet(client, bs)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected after all: on_connect subscribes again
        waiter = self._sub_waiters[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                reasons = await waiter
        except TimeoutError:
            log.warning("transport %s: no SUBACK for %r within %gs; it is sent again on reconnect",
                        self.name, bs.filter, self.settings.connect_timeout)
            return
        refused = [r for r in reasons if r.is_failure]
        if refused:
            await self.cancel(local)
            raise TransportError(f"transport {self.name!r}: MQTT broker {self.conn.broker} refused the "
                                 f"subscription {bs.filter!r}: {refused[0]} (reason code {int(refused[0].value)})")

    async def cancel(self, local: LocalSub) -> None:
        """End ``local``: no further message routed to it and no further call of its callback, then
        wait for a call under way (see :meth:`_await_delivery`)."""
        if local.cancelled:
            return
        local.cancelled = True
        self._unroute(local)
        await self._await_delivery(local)

    def _unroute(self, local: LocalSub) -> None:
        """Take ``local`` off its broker subscription; UNSUBSCRIBE when it was the last one there."""
        conn = self.conn
        with conn.lock:
            bs = self.by_filter.get(local.filter)
            if bs is None or local not in bs.locals:
                return
            bs.locals.remove(local)
            empty = not bs.locals
            if empty:
                del self.by_filter[bs.filter]
                del self.by_id[bs.ident]
        if empty:
            if self.keep_session and self.settings.persistent:
                return  # no UNSUBSCRIBE: the broker keeps queueing for the next life of this client id
            if conn.client is not None and conn.connected:
                conn.client.unsubscribe(bs.filter)
            elif self.settings.persistent:
                self._unsubscribe_later.add(bs.filter)  # the kept session still has it

    async def _await_delivery(self, local: LocalSub) -> None:
        """Return once ``local``'s callback call under way (if any) has ended, or after
        ``cancel_timeout`` with an error log naming the subscription. Its message is acknowledged only
        when every callback for it has returned (a call that never returns: never). Called from the
        delivering task itself (a callback cancelling a subscription), nothing else can be under way
        and nothing is awaited."""
        if not local.running or asyncio.current_task() is self._drain_task:
            return
        idle = local.idle = asyncio.get_running_loop().create_future()
        timeout = self.settings.cancel_timeout
        try:
            async with asyncio.timeout(timeout):
                await idle
        except TimeoutError:
            log.error("transport %s: subscription %r (owner %s) was cancelled while its handler ran and the handler "
                      "has not returned within cancel_timeout %gs; cancel returns without it, and the message is "
                      "not acknowledged while the handler runs", self.name, local.filter, local.owner or "none",
                      timeout)
        finally:
            local.idle = None

    def on_connect(self, client: mqtt.Client, present: bool) -> None:
        """After CONNACK (paho's callback): subscribe what the broker's session does not have."""
        with self.conn.lock:
            subs = list(self.by_filter.values())
        for bs in subs:
            if not present:
                bs.confirmed = False  # a new session: the broker has none of them
            if not bs.confirmed:  # a resumed session kept the confirmed ones: no second SUBSCRIBE
                self._subscribe_packet(client, bs)
        for filt in list(self._unsubscribe_later):
            if present and filt not in self.by_filter:
                client.unsubscribe(filt)
        self._unsubscribe_later.clear()

    def resolve_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        bs = self._sub_mids.pop(mid, None)
        if bs is not None and reasons and not any(r.is_failure for r in reasons):
            bs.confirmed = True
        waiter = self._sub_waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reasons)
        elif any(r.is_failure for r in reasons):
            log.error("transport %s: MQTT broker %s refused a subscription on resubscribe: %s",
                      self.name, self.conn.broker, ", ".join(map(str, reasons)))

    def hold_for_resubscribe(self) -> None:
        """A session kept from an earlier run of this process: its queued messages arrive before the
        components subscribe again; hold them (in order) for a while rather than drop them."""
        self._resume_grace_until = time.monotonic() + self.settings.connect_timeout

    def close(self) -> None:
        for future in self._sub_waiters.values():
            future.cancel()
