"""The in-memory hub: routing, per-subscription queues and delivery for ``type: memory``.

Transports that name the same ``channel`` share one :class:`MemoryHub`, so several runtimes in
one process (a test of an active and a shadow scheduler, say) talk to each other. Delivery is
asynchronous and in order per subscription: ``publish`` queues the message and a drain task
per subscription hands it over (a burst to an idle subscription with a ``run`` goes by a
callback queued in its stead: ``_kick``). A callback that raises gets the message again (at least once)
up to ``max_redeliveries`` times. A batch subscription (``subscribe_batch``) gets everything its
queue holds at once, split where the topic changes, as Kafka hands over a fetch. Planned faults
(:class:`~forge_core.transport.faults.Faults`) and consumer groups take a slower path, chosen
once per topic. The bus's publish path runs through :meth:`MemoryHub.put`;
:class:`~forge_core.transport.memory.MemoryTransport` is the transport in front of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import Context, copy_context
from dataclasses import replace
from functools import partial
from typing import Any, cast

from forge_core.clock import _VirtualEventLoop
from forge_core.messages.envelope import Envelope, RawMessage
from forge_core.transport.base import (
    DirectRun,
    MessageCallback,
    QueueEntry,
    UndeliverableCallback,
)
from forge_core.transport.faults import Faults
from forge_core.transport.memory_batch import deliver_batches
from forge_core.transport.memory_groups import GroupPlan, pick_members, settle_plans
from forge_core.transport.memory_sub import _Sub
from forge_core.transport.topics import matches, validate_topic

log = logging.getLogger("forge.transport.memory")

_HUBS: dict[str, MemoryHub] = {}


class MemoryHub:
    """Subscriptions and queues shared by every transport on one channel."""

    def __init__(self, *, max_redeliveries: int = 3, seed: int | None = 0) -> None:
        self.subs: list[_Sub] = []
        #: topic -> (matching subscriptions, slow): slow when one of them is in a group or a fault is
        #: planned (then ``_route_out`` picks members and applies faults); dropped when the faults change.
        self._route_cache: dict[str, tuple[list[_Sub], bool]] = {}
        #: (pattern, topic) -> matches(pattern, topic), for ``add``: chaos re-subscribes the same patterns
        #: thousands of times a day against every cached topic; cleared with the route cache when it is full.
        self._matched: dict[tuple[str, str], bool] = {}
        self._group_turn: dict[tuple[str, str], int] = {}
        self._group_plans: dict[str, GroupPlan[_Sub]] = {}  # see memory_groups
        self.faults = Faults(seed)
        self.faults.on_change = self._route_cache.clear
        self.max_redeliveries = max_redeliveries
        # Counted in attributes (an attribute's += 1 costs less than a dict item's, per message);
        # ``stats`` reads them.
        self.published = self.delivered = self.redelivered = self.undeliverable = 0
        self.on_undeliverable: UndeliverableCallback | None = None

    @property
    def stats(self) -> dict[str, int]:
        """Messages published to the hub, handed to a callback that returned, handed again after a
        callback raised, and given up on (each exact when read)."""
        return {"published": self.published, "delivered": self.delivered, "redelivered": self.redelivered,
                "undeliverable": self.undeliverable}

    # -- subscriptions ------------------------------------------------------------------
    def add(self, sub: _Sub) -> None:
        self.subs.append(sub)
        # Update cached routes in place: components (re)subscribe often under chaos, and
        # recomputing every topic's route against every subscription would cost far more.
        pattern, matched = sub.pattern, self._matched
        for topic, (subs, slow) in self._route_cache.items():
            hit = matched.get((pattern, topic))  # a re-subscription's pattern was matched before
            if hit is None:
                hit = matched[pattern, topic] = matches(pattern, topic)
            if hit:
                self._route_cache[topic] = ([*subs, sub], slow or sub.group is not None)

    def remove(self, sub: _Sub) -> asyncio.Task[None] | None:
        """Forget ``sub`` and drop its queue; returns its delivery task, cancelled, for the caller to await."""
        task, sub.task = sub.task, None
        if task is not None:
            task.cancel()
        sub.queue.clear()
        self.unroute(sub)
        return task

    def unroute(self, sub: _Sub) -> None:
        """Route no more messages to ``sub`` (its queue and delivery stay)."""
        if sub in self.subs:
            self.subs.remove(sub)
            settle_plans(self._group_plans, self._group_turn)  # a plan would keep the subscription alive
            for topic, (subs, _grouped) in self._route_cache.items():
                if sub in subs:
                    kept = [s for s in subs if s is not sub]
                    self._route_cache[topic] = (kept, self._slow(kept))

    def _slow(self, subs: list[_Sub]) -> bool:
        """Whether messages to ``subs`` go through ``_route_out`` (a group among them, or faults)."""
        return any(s.group for s in subs) or self.faults.active

    def _routes(self, topic: str) -> tuple[list[_Sub], bool]:
        """Subscriptions matching ``topic`` and whether their messages take the slow path (cached per topic)."""
        routes = self._route_cache.get(topic)
        if routes is None:
            validate_topic(topic)  # once per topic: publishes look the route up before anything else
            subs = [s for s in self.subs if matches(s.pattern, topic)]
            if len(self._route_cache) > 10_000:
                self._route_cache.clear()
                self._matched.clear()
            routes = self._route_cache[topic] = (subs, self._slow(subs))
        return routes

    # -- delivery -------------------------------------------------------------------------
    def publish(self, topic: str, message: Envelope | RawMessage) -> None:
        """Queue ``message`` for every subscription matching ``topic`` (an Envelope's ``topic`` is set)."""
        if isinstance(message, Envelope):
            self.put(topic, message)
            return
        subs, slow = self._route_cache.get(topic) or self._routes(topic)
        self.published += 1
        if subs:
            self._route_out(topic, message, subs, slow)

    def put(self, topic: str, envelope: Envelope) -> None:
        """``publish`` of an Envelope (Transport.direct_publish). ``MessageBus.publish`` inlines this
        for the envelopes it builds (reading ``Transport.memory_hub``): keep the two in step.

        The route cache lookup is inlined (a method call per message was 19 % of a profile); a miss
        computes the route and validates the topic. The common case (no group, no fault) is inlined
        too, and queues the Envelope alone (a QueueEntry without the tuple). That needs an Envelope's
        ``topic`` to stay what it was queued with: it is set once, when it is "" (the bus's new
        envelopes), and an Envelope published again to another topic is delivered as a copy.
        """
        subs, slow = self._route_cache.get(topic) or self._routes(topic)
        self.published += 1
        current = envelope.topic
        if current is not topic:
            if not current:
                envelope.topic = topic
            elif current != topic:
                envelope = replace(envelope, topic=topic)
        if not subs:
            return
        if slow:
            self._route_out(topic, envelope, subs, slow)
            return
        for sub in subs:
            sub.queue.append(envelope)
            if not sub.draining:
                self._wake(sub)

    def _route_out(self, topic: str, message: Envelope | RawMessage, subs: list[_Sub], slow: bool) -> None:
        if slow:  # a group among them (picking is a no-op without one), or faults
            subs = pick_members(self._group_plans, self._group_turn, topic, subs)
        faults = self.faults
        if faults.rules or faults.partitioned:
            self._publish_with_faults(topic, message, subs)
            return
        for sub in subs:
            sub.queue.append((topic, message, 0))
            if not sub.draining:
                self._wake(sub)

    def _publish_with_faults(self, topic: str, envelope: Envelope | RawMessage, subs: list[_Sub]) -> None:
        faults = self.faults
        if getattr(envelope, "source", None) in faults.partitioned:
            faults.stats["partitioned"] += 1
            return
        if faults.pick("drop", topic) is not None:
            faults.stats["dropped"] += 1
            return
        copies = 1
        if faults.pick("duplicate", topic) is not None:
            faults.stats["duplicated"] += 1
            copies = 2
        delay = faults.pick("delay", topic)
        reorder = faults.pick("reorder", topic)
        for sub in subs:
            if sub.owner is not None and sub.owner in faults.partitioned:
                faults.stats["partitioned"] += 1
                continue
            for _ in range(copies):
                if reorder is not None:
                    reorder.held.append((sub, topic, envelope))
                elif delay is not None:
                    faults.stats["delayed"] += 1
                    asyncio.get_running_loop().call_later(delay.seconds, self._enqueue, sub, topic, envelope)
                else:
                    self._enqueue(sub, topic, envelope)
        if reorder is not None and len(reorder.held) >= reorder.window:
            held, reorder.held = reorder.held, []
            faults.rng.shuffle(held)
            faults.stats["reordered"] += len(held)
            for sub, held_topic, held_env in held:
                self._enqueue(sub, held_topic, held_env)

    def _enqueue(self, sub: _Sub, topic: str, envelope: Envelope | RawMessage) -> None:
        if sub not in self.subs:
            return
        sub.queue.append((topic, envelope, 0))
        if not sub.draining:
            self._wake(sub)

    def _wake(self, sub: _Sub) -> None:
        sub.draining = True
        waiter = sub.waiter
        if waiter is not None:
            sub.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif (kick := sub.kick) is not None:  # queues _kick where set_result queues the task's step
            kick()
        elif sub.task is None:
            sub.task = asyncio.get_running_loop().create_task(self._drain(sub))

    async def _drain(self, sub: _Sub) -> None:
        """A subscription's delivery task: deliver what is queued, sleep on ``waiter`` until ``_wake``.
        Per-message delivery is inlined here (a coroutine less per burst: it was a ``_deliver``
        method); the batch form is :func:`deliver_batches`."""
        loop = asyncio.get_running_loop()
        # loop.create_future() without its Python frame
        new_waiter: Callable[[], asyncio.Future[None]] = partial(asyncio.Future, loop=loop)
        if sub.batch:
            try:
                while True:
                    await deliver_batches(self, sub)
                    sub.draining = False
                    sub.waiter = waiter = new_waiter()
                    await waiter
            finally:
                sub.draining = False
                sub.waiter = None
        queue = sub.queue
        callback = cast(MessageCallback, sub.callback)
        run: DirectRun | None = getattr(callback, "run", None)  # see DirectRun
        kick: Callable[[], object] | None = None
        if run is not None:  # _kick run in a copy of this task's context, queued where call_soon queues
            kick = _soon_caller(loop, partial(self._kick, sub, run), copy_context())
        handed: tuple[QueueEntry | None, Any] | None = None  # what _kick handed over, delivered first
        try:
            while True:
                delivered = 0  # counted per burst, not per message; added however the burst ends
                try:
                    while queue or handed is not None:
                        entry: QueueEntry | None = None
                        outcome: Awaitable[None] | BaseException | None = None
                        if handed is not None:  # draining still set: on as the burst would have gone
                            (entry, outcome), handed = handed, None
                        elif run is not None:
                            done, entry, outcome = run(queue)  # the Envelopes at the head, in one call
                            delivered += done
                            if entry is None and not queue:
                                break
                        if entry is None:  # bytes (or no run): one message through the coroutine
                            entry = queue.popleft()
                        if entry.__class__ is tuple:
                            topic, envelope, attempt = entry  # a tuple QueueEntry
                        else:  # an Envelope alone: its first delivery (see put)
                            envelope = cast(Envelope, entry)
                            topic, attempt = envelope.topic, 0
                        try:
                            if outcome is None:
                                await callback(topic, envelope)
                            elif isinstance(outcome, BaseException):
                                raise outcome
                            else:
                                await outcome
                            delivered += 1
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:  # the subscriber did not ack: deliver again
                            self._not_acked(sub, topic, envelope, attempt, exc)
                finally:
                    self.delivered += delivered
                sub.draining = False
                waiter = new_waiter()
                if kick is None:
                    sub.waiter = waiter
                    await waiter
                else:  # parked: _wake queues the kick; only _kick's handover wakes the task
                    sub.parked, sub.kick = waiter, kick
                    await waiter
                    handed, sub.handover = sub.handover, None
        finally:
            sub.draining = False
            sub.waiter = sub.kick = sub.parked = sub.handover = None

    def _kick(self, sub: _Sub, run: DirectRun) -> None:
        """A burst to an idle subscription, delivered by a callback ``_wake`` queues (``sub.kick``)
        instead of the task's waiter: the same runs of the same handlers at the same place in the
        loop's order (the callback lands in the ready queue where the waiter's ``set_result`` would
        have put the task's step), without a future, a task step and a coroutine resumed per burst
        (on the virtual loop, without a handle either: its ``soon_caller``). What needs to await (an
        awaitable outcome, bytes to decode) is handed to the task, which carries on from there in its
        next step."""
        parked = sub.parked
        if sub.kick is None or parked is None or parked.done():  # handed over, or the task is ending
            return
        queue = sub.queue
        delivered = 0
        try:
            while queue:
                done, entry, outcome = run(queue)
                delivered += done
                if entry is None:
                    if not queue:
                        break
                elif isinstance(outcome, Exception):  # Redeliver: as the task's ``raise outcome``
                    topic, envelope, attempt = _parts(entry)
                    self._not_acked(sub, topic, envelope, attempt, outcome)
                    continue
                sub.kick, sub.parked, sub.handover = None, None, (entry, outcome)
                parked.set_result(None)  # draining stays set: the task goes on from the handover
                return
        finally:
            self.delivered += delivered
        sub.draining = False

    def _not_acked(self, sub: _Sub, topic: str, envelope: Envelope | RawMessage, attempt: int,
                   exc: Exception) -> None:
        if attempt < self.max_redeliveries:
            self.redelivered += 1
            sub.queue.appendleft((topic, envelope, attempt + 1))
        else:
            self.undeliverable += 1
            log.error("giving up on %s after %d deliveries to %r: %s",
                      topic, attempt + 1, sub.owner or sub.pattern, exc)
            if self.on_undeliverable is not None:
                self.on_undeliverable(topic, envelope, exc)

    def pending(self) -> int:
        """Messages queued or held and not yet handed to a subscriber."""
        held = sum(len(r.held) for r in self.faults.rules)
        return sum(len(s.queue) + (1 if s.draining else 0) for s in self.subs) + held

    async def drained(self, max_rounds: int = 100_000) -> None:
        """Wait until every queue is empty (delayed messages not counted)."""
        for _ in range(max_rounds):
            busy = [s for s in self.subs if s.queue or s.draining]
            if not busy:
                return
            # a batch subscription waiting for more (batch_wait) needs the clock to move
            await asyncio.sleep(max(s.wait for s in busy) if any(s.wait for s in busy) else 0)


def _parts(entry: QueueEntry) -> tuple[str, Envelope | RawMessage, int]:
    """(topic, message, attempt) of a queue entry: a tuple, or an Envelope alone (its first delivery, see put)."""
    if isinstance(entry, tuple):
        return entry
    return entry.topic, entry, 0


def _soon_caller(loop: asyncio.AbstractEventLoop, callback: Callable[[], object],
                 context: Context) -> Callable[[], object]:
    """A call that queues ``callback`` as ``loop.call_soon(callback, context=context)`` does: the
    virtual loop's own, without a handle per call (:meth:`_VirtualEventLoop.soon_caller`), else that."""
    if isinstance(loop, _VirtualEventLoop):
        return loop.soon_caller(callback, context)
    return partial(loop.call_soon, callback, context=context)


def hub_for(channel: str | None, **options: Any) -> MemoryHub:
    """The shared hub of ``channel``, or a private one when ``channel`` is None."""
    if channel is None:
        return MemoryHub(**options)
    hub = _HUBS.get(channel)
    if hub is None:
        hub = _HUBS[channel] = MemoryHub(**options)
    return hub


def reset_hubs() -> None:
    """Forget all named channels (tests)."""
    _HUBS.clear()
