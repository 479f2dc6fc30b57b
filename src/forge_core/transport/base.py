"""The one contract every transport keeps (in-memory, MQTT, Kafka, any a plugin adds).

A transport moves envelopes between processes. It does not validate, type or route: the
runtime's :class:`~forge_core.bus.MessageBus` does that at the edge, so every transport gets
the same guarantees for free.

Acknowledgement: a transport calls the subscriber's callback and awaits it. Returning means
the message is handled (ack, commit); raising means it is not. An ``AT_LEAST_ONCE`` transport
then delivers it again (up to its redelivery limit); an ``AT_MOST_ONCE`` transport drops it.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from forge_core.clock import Clock
from forge_core.messages.envelope import Envelope, RawMessage

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from forge_core.tactics.service import Tactics
    from forge_core.transport.memory import MemoryHub

log = logging.getLogger("forge.transport")

#: ``await callback(topic, message)``: an Envelope from in-process transports, a RawMessage
#: (body + headers) from network transports.
MessageCallback = Callable[[str, Envelope | RawMessage], Awaitable[None]]

#: A queued message of a transport that queues in process: ``(topic, message, attempt)``, or, for
#: an Envelope's first delivery, the Envelope alone (its ``topic`` is the topic; attempt 0): a
#: tuple less per message, which is also one object less for the garbage collector to track.
QueueEntry = tuple[str, Envelope | RawMessage, int] | Envelope

#: A callback may carry ``callback.run(queue)``: the same deliveries done without a coroutine, for a
#: run of queued Envelopes (the bus's callbacks for sync handlers have it; the in-memory transport
#: calls it). It pops entries from the left of ``queue`` one at a time, in order, each before
#: handing it over, and returns ``(delivered, entry, outcome)``: ``delivered`` counts the deliveries
#: done (what returning from ``await callback(...)`` means); it returns when the queue is empty or
#: its head is not an Envelope (left there for ``await callback(...)``), and ``entry`` and
#: ``outcome`` are None; or, when a delivery did not finish, ``entry`` is that popped entry and
#: ``outcome`` either an awaitable still to await or the exception the delivery raised (what
#: raising from ``await callback(...)`` means). Messages queued while it runs stay in order behind.
DirectRun = Callable[[deque[QueueEntry]], tuple[int, QueueEntry | None, Awaitable[None] | BaseException | None]]

#: A callback may carry ``callback.direct(topic, message)``: one delivery done without a coroutine
#: (the bus's callbacks for sync handlers have it; the Kafka subscriber calls it per record). It
#: returns None when the delivery is done (what returning from ``await callback(...)`` means), or an
#: awaitable the caller awaits at once, before the next delivery, to finish it; an exception it
#: raises, or the awaitable raises, means what raising from ``await callback(...)`` means.
DirectCallback = Callable[[str, Envelope | RawMessage], Awaitable[None] | None]

#: ``await callback(topic, messages)``: a batch of messages on one topic, in order (see
#: :meth:`Transport.subscribe_batch`).
BatchCallback = Callable[[str, list[Envelope | RawMessage]], Awaitable[None]]

#: ``on_undeliverable(topic, message, error)``: a transport gave up redelivering a message whose
#: callback kept raising. The runtime sets it on every transport and turns each call into a dead
#: letter (``undeliverable``), so nothing a transport gives up on is lost silently.
UndeliverableCallback = Callable[[str, Envelope | RawMessage, BaseException], None]


class DeliveryGuarantee(enum.Enum):
    AT_MOST_ONCE = "at-most-once"
    AT_LEAST_ONCE = "at-least-once"


@dataclass
class Health:
    """What a transport says of itself for ``/health`` and ``/ready``."""

    connected: bool
    detail: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionChange:
    """Partitions a subscription's consumer was given or lost, in one rebalance step.

    ``assigned``: now held. ``revoked``: handed back in an orderly rebalance (what was handled is
    committed first). ``lost``: taken away without a hand-over (the consumer's session expired;
    another member may already hold them, and what was handled but not committed is delivered
    again there). Only the partitions that changed are listed (incremental, as Kafka's
    cooperative rebalancing gives them). ``group`` is the consumer group as the broker knows it
    (Kafka: the group id made by ``group_template``)."""

    kind: Literal["assigned", "revoked", "lost"]
    group: str | None
    partitions: tuple[tuple[str, int], ...]  # (topic, partition); the Forge topic name


#: ``listener(change)``: called on the event loop; see :meth:`Subscription.on_partitions_changed`.
PartitionListener = Callable[[PartitionChange], None]


class Subscription(ABC):
    """A live subscription; ``await sub.cancel()`` stops deliveries to it.

    Partitioned transports (Kafka) also say which partitions the subscription holds
    (:meth:`assignment`), how far behind it is (:meth:`lag`) and when that changes
    (:meth:`on_partitions_changed`). The defaults here are those of a transport without
    partitions: nothing held, no lag figure, no events."""

    pattern: str
    group: str | None = None

    @abstractmethod
    async def cancel(self) -> None: ...

    async def flush(self) -> None:
        """Hand the subscriber now what the transport holds back for it, and return once that has
        been delivered (acknowledged, or given up on as undeliverable). A batch subscription's
        ``cancel()`` calls it after routing the subscription no more messages (the runtime cancels a
        component's batch subscriptions before its ``stop()``). The in-memory transport's batch
        subscriptions hold messages back (their ``batch_wait`` window); this default holds nothing back."""
        return None

    async def abandon(self) -> None:
        """End the subscription as a crash would (``Runtime.kill``): what is held back is not
        handed over. This default is :meth:`cancel`."""
        await self.cancel()

    def on_partitions_changed(self, listener: PartitionListener) -> None:
        """Call ``listener(change)`` on the event loop each time partitions are assigned to this
        subscription, revoked from it or lost (:class:`PartitionChange`), in the order they
        happen and before any record of a newly assigned partition is delivered. A listener that
        raises is logged (with the subscription's pattern and group) and the others still run;
        delivery goes on. This default (no partitions) never calls it."""
        return None

    def lag(self) -> dict[tuple[str, int], int] | None:
        """Records per ``(topic, partition)`` held by this subscription that the broker has and
        the handler has not been given yet, as last measured; None if the transport has no such
        figure (this default)."""
        return None

    def assignment(self) -> tuple[tuple[str, int], ...]:
        """The ``(topic, partition)`` pairs this subscription holds now; empty for transports
        without partitions (this default)."""
        return ()


class PartitionListeners:
    """For transport authors: the listeners of one subscription, and the call of each one.

    :meth:`notify` must run on the event loop (hop there with ``loop.call_soon_threadsafe``
    from a client's thread). A listener that raises is logged and does not stop the others."""

    __slots__ = ("_listeners", "_subscription")

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self._listeners: list[PartitionListener] = []

    def add(self, listener: PartitionListener) -> None:
        if not callable(listener):
            raise TypeError(f"on_partitions_changed({listener!r}) of subscription "
                            f"{self._subscription.pattern!r}: the listener must be callable")
        self._listeners.append(listener)

    def clear(self) -> None:
        self._listeners.clear()

    def __len__(self) -> int:
        return len(self._listeners)

    def notify(self, change: PartitionChange) -> None:
        sub = self._subscription
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop delivery or the other listeners
                log.exception("partition listener %s of subscription %r (group %s) failed on %s %s; "
                              "delivery goes on", getattr(listener, "__qualname__", repr(listener)), sub.pattern,
                              change.group or sub.group or "none", change.kind, list(change.partitions))


class Transport(ABC):
    """Publish, subscribe with ``+``/``#`` wildcards, acknowledge, report health, close."""

    #: Registered type name (``memory``, ``mqtt``, ``kafka``).
    type_name: str = ""
    guarantee: DeliveryGuarantee = DeliveryGuarantee.AT_MOST_ONCE
    #: Header name prefix of CloudEvents attributes in binary mode (``ce_`` on Kafka, none on MQTT 5).
    header_prefix: str = "ce_"
    #: A transport whose ``publish`` seldom waits (the in-memory one never does; Kafka's only on a
    #: full local queue, a fatal producer or ``confirm_publish``) sets this to a plain function
    #: doing what ``publish`` does; the bus calls it instead and saves a coroutine per message. It
    #: returns None when done, or the awaitable that finishes the publish (the bus awaits it at
    #: once, so the order of publishes holds).
    direct_publish: Callable[[str, Envelope], Awaitable[None] | None] | None = None
    #: The in-memory transport's hub while it is open (``MemoryTransport``; None elsewhere): the bus
    #: queues its new envelopes there itself, ``MemoryHub.put`` inlined. An instance attribute, so
    #: reading it per message is a cached slot read.
    memory_hub: MemoryHub | None

    def __init__(self, name: str) -> None:
        self.name = name
        self.memory_hub = None
        #: Set by the runtime; call it when giving up on a message (see UndeliverableCallback).
        self.on_undeliverable: UndeliverableCallback | None = None

    @abstractmethod
    async def connect(self) -> None:
        """Connect to the broker; raise :class:`~forge_core.errors.TransportNotReady` if it
        cannot be reached yet."""

    @abstractmethod
    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Send ``envelope`` on ``topic``; raise TransportClosed after ``close()``."""

    @abstractmethod
    async def subscribe(
        self, pattern: str, callback: MessageCallback, *, group: str | None = None, owner: str | None = None
    ) -> Subscription:
        """Deliver every message whose topic matches ``pattern`` to ``callback``.

        ``group``: subscribers sharing a group name share the messages (each message goes to
        one of them), as Kafka consumer groups and MQTT shared subscriptions do. ``owner``
        names the subscribing component (used for fault injection and diagnostics).
        """

    async def publish_batch(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Send ``envelopes`` on ``topic`` in order. This default publishes one by one; a
        transport whose client batches anyway (Kafka) overrides it to skip the per-message glue."""
        for envelope in envelopes:
            await self.publish(topic, envelope)

    async def subscribe_batch(
        self, pattern: str, callback: BatchCallback, *, group: str | None = None, owner: str | None = None
    ) -> Subscription:
        """Like :meth:`subscribe`, but ``callback(topic, messages)`` gets what the transport
        received together, in order, and acknowledges all of them by returning (raising: none of
        them). This default delivers batches of one; Kafka delivers what one fetch returned
        (up to ``batch_size``), split where the topic changes."""

        async def one(topic: str, message: Envelope | RawMessage) -> None:
            await callback(topic, [message])

        return await self.subscribe(pattern, one, group=group, owner=owner)

    @abstractmethod
    def health(self) -> Health: ...

    def backlog_age(self) -> float:
        """Seconds the oldest message this transport has received but not yet handed to its
        callbacks has waited (0.0 when it holds none). A liveness monitor judges silence only up
        to ``now - backlog_age()``: a beat still queued here is not silence (issue 11 §3). This
        default (delivery without a local queue) is 0.0."""
        return 0.0

    def detach(self) -> None:
        """The plant is stopping: the subscriptions about to be cancelled one by one are ending
        with the process, not given up. A transport whose broker keeps a session for it (an MQTT
        persistent session) keeps the broker-side subscriptions, so what is published until the
        next start is queued for it instead of lost. Called by the runtime before components stop.
        This default has no session to keep."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Stop delivering, release connections; idempotent."""

    async def __aenter__(self) -> Transport:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class TransportContext:
    """What a transport factory gets besides its name and settings."""

    clock: Clock
    plant_dir: Path
    plant: str
    seed: int | None
    data_dir: Path  # for outboxes and other durable files
    tactics: Tactics | None = None  # the plant's configured tactics (outbox, retry, backpressure settings)
    #: The plant's OpenTelemetry meter provider (None when telemetry is off): a transport takes its
    #: meter from it (``meter_provider.get_meter("forge_kafka")``) for its own instruments.
    meter_provider: MeterProvider | None = None


class TransportFactory(Protocol):
    """``factory(name, settings, context) -> Transport``: what ``registry.add(type, factory, ...)``
    takes. ``settings`` is the transport's declared Settings model (defaults filled) or, for a
    plain JSON Schema declaration, a dict."""

    def __call__(self, name: str, settings: Any, context: TransportContext) -> Transport: ...
