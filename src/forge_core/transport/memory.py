"""The in-memory transport: the embedded profile's bus and every test's double.

:class:`MemoryTransport` is the :class:`~forge_core.transport.base.Transport` contract in front of a
:class:`~forge_core.transport.memory_hub.MemoryHub` (routing, queues, delivery, redelivery and
fault injection live there). Transports that name the same ``channel`` share one hub, so several
runtimes in one process talk to each other. While open, the transport hands the bus the hub's
``put`` (``direct_publish``), so a publish costs no coroutine of ours.
"""

from __future__ import annotations

import asyncio

from pydantic import Field

from forge_core.errors import TransportClosed
from forge_core.messages.envelope import Envelope, RawMessage
from forge_core.settings import Settings
from forge_core.transport.base import (
    BatchCallback,
    DeliveryGuarantee,
    Health,
    MessageCallback,
    Subscription,
    Transport,
    UndeliverableCallback,
)
from forge_core.transport.faults import Faults
from forge_core.transport.memory_hub import _HUBS, MemoryHub, _Sub, hub_for, reset_hubs
from forge_core.transport.topics import validate_pattern, validate_topic

# The hub's names stay importable from here, where they lived before the hub had a module of its own.
__all__ = ["_HUBS", "MemoryHub", "MemorySettings", "MemoryTransport", "_Sub", "hub_for", "reset_hubs"]


class MemorySettings(Settings):
    """``transports.<name>.settings`` for ``type: memory``."""

    channel: str | None = Field(None, description="share a hub with other transports of this name in the process")
    max_redeliveries: int = Field(3, ge=0, description="redeliveries to a raising callback before giving up")
    fault_seed: int = Field(0, description="seed of the fault injector's random choices")
    batch_wait: float = Field(0.0, ge=0, description="seconds a batch subscriber's delivery waits, once the first "
                              "message is queued, for more to join the list (Kafka's fetch.wait.max.ms); "
                              "0: what the queue holds at once. A component's stop, cancel() and close() "
                              "end the wait and deliver what is queued")


_DEFAULTS = MemorySettings()


class MemoryTransport(Transport):
    """In-process transport with wildcard routing, groups, redelivery and fault injection."""

    type_name = "memory"
    guarantee = DeliveryGuarantee.AT_LEAST_ONCE

    def __init__(self, name: str = "memory", *, channel: str | None = None,
                 max_redeliveries: int = _DEFAULTS.max_redeliveries, fault_seed: int = _DEFAULTS.fault_seed,
                 batch_wait: float = _DEFAULTS.batch_wait, hub: MemoryHub | None = None) -> None:
        self.hub = hub or hub_for(channel, max_redeliveries=max_redeliveries, seed=fault_seed)
        super().__init__(name)
        self._connected = False
        self._closed = False
        self.batch_wait = batch_wait
        self._subs: dict[_Sub, None] = {}  # live subscriptions, in order; cancel() removes its own
        # The bus calls the hub's publish instead of awaiting ours (Transport.direct_publish; the
        # hub validates each new topic), until close(), or never if a subclass changed publish.
        if type(self).publish is MemoryTransport.publish:
            self.direct_publish = self.hub.put
            self.memory_hub = self.hub

    @property
    def faults(self) -> Faults:
        return self.hub.faults

    @property
    def on_undeliverable(self) -> UndeliverableCallback | None:
        return self.hub.on_undeliverable

    @on_undeliverable.setter
    def on_undeliverable(self, callback: UndeliverableCallback | None) -> None:
        self.hub.on_undeliverable = callback

    async def connect(self) -> None:
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed")
        self._connected = True

    async def publish(self, topic: str, envelope: Envelope) -> None:
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
        if not topic or "+" in topic or "#" in topic:
            validate_topic(topic)
        self.hub.publish(topic, envelope)

    async def publish_raw(self, topic: str, message: RawMessage) -> None:
        """Put bytes on the hub as a network client would (no Forge envelope): subscribers
        through a bus decode and validate them like any message from outside."""
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
        validate_topic(topic)
        self.hub.publish(topic, message)

    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> Subscription:
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot subscribe to {pattern!r}")
        validate_pattern(pattern)
        sub = _Sub(self.hub, pattern, callback, group, owner, self._subs)
        self.hub.add(sub)
        self._subs[sub] = None
        return sub

    async def subscribe_batch(self, pattern: str, callback: BatchCallback, *, group: str | None = None,
                              owner: str | None = None) -> Subscription:
        """``callback(topic, messages)`` gets everything the subscription's queue holds when its
        delivery runs, split where the topic changes (as Kafka hands over a fetch), and acknowledges
        the list by returning. Raising acknowledges none of it: the messages are delivered again,
        first in the queue, up to ``max_redeliveries`` times each, then reported undeliverable.
        With ``batch_wait`` the delivery waits that long (on the loop's clock) after the first
        message arrives before it takes the queue, as a Kafka fetch waits for more records. At
        ``cancel()``, ``flush()`` (a component's stop) and ``close()`` the wait ends early and what
        is queued is delivered before the call returns."""
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot subscribe to {pattern!r}")
        validate_pattern(pattern)
        sub = _Sub(self.hub, pattern, callback, group, owner, self._subs, batch=True, wait=self.batch_wait)
        self.hub.add(sub)
        self._subs[sub] = None
        return sub

    def health(self) -> Health:
        return Health(
            connected=self._connected and not self._closed,
            detail="closed" if self._closed else ("connected" if self._connected else "not connected"),
            stats={**self.hub.stats, **self.hub.faults.stats, "pending": self.hub.pending()},
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connected = False
        self.direct_publish = self.memory_hub = None  # the bus awaits publish() again, which raises TransportClosed
        subs = list(self._subs)
        self._subs.clear()
        for sub in subs:  # nothing new is routed to any; a batch subscription's queue is delivered first
            self.hub.unroute(sub)
        current = asyncio.current_task()
        try:
            await asyncio.gather(*(sub.flush() for sub in subs if sub.batch and sub.task is not current),
                                 return_exceptions=True)
        finally:
            tasks = [task for task in (self.hub.remove(sub) for sub in subs) if task is not None]
            await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)

    async def drained(self) -> None:
        await self.hub.drained()
