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
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from forge_core.clock import Clock
from forge_core.messages.envelope import Envelope, RawMessage

if TYPE_CHECKING:
    from forge_core.tactics.service import Tactics

#: ``await callback(topic, message)``: an Envelope from in-process transports, a RawMessage
#: (body + headers) from network transports.
MessageCallback = Callable[[str, Envelope | RawMessage], Awaitable[None]]

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


class Subscription(ABC):
    """A live subscription; ``await sub.cancel()`` stops deliveries to it."""

    pattern: str
    group: str | None = None

    @abstractmethod
    async def cancel(self) -> None: ...


class Transport(ABC):
    """Publish, subscribe with ``+``/``#`` wildcards, acknowledge, report health, close."""

    #: Registered type name (``memory``, ``mqtt``, ``kafka``).
    type_name: str = ""
    guarantee: DeliveryGuarantee = DeliveryGuarantee.AT_MOST_ONCE
    #: Header name prefix of CloudEvents attributes in binary mode (``ce_`` on Kafka, none on MQTT 5).
    header_prefix: str = "ce_"

    def __init__(self, name: str) -> None:
        self.name = name
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


class TransportFactory(Protocol):
    """``factory(name, settings, context) -> Transport``: what ``registry.add(type, factory, ...)``
    takes. ``settings`` is the transport's declared Settings model (defaults filled) or, for a
    plain JSON Schema declaration, a dict."""

    def __call__(self, name: str, settings: Any, context: TransportContext) -> Transport: ...
