"""A batch subscription's delivery on the in-memory hub (``MemoryTransport.subscribe_batch``).

What the subscription's queue holds when its drain task runs goes to the callback at once, in lists
of one topic (as Kafka hands over a fetched run of records of one topic), so a batch handler that
writes a transaction per list writes one per burst rather than one per message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from forge_core.messages.envelope import Envelope, RawMessage
from forge_core.transport.base import BatchCallback, QueueEntry

if TYPE_CHECKING:
    from forge_core.transport.memory_hub import MemoryHub, _Sub

log = logging.getLogger("forge.transport.memory")


async def deliver_batches(hub: MemoryHub, sub: _Sub) -> None:
    """A batch subscription's delivery: all that the queue holds, as lists of one topic. A list
    is acknowledged whole by returning; when the callback raises none of it is: each message goes
    back to the head of the queue, in order, to be delivered again (with what queued behind it,
    as Kafka refetches from the first record not handled) until it has had ``max_redeliveries``
    redeliveries; then it is reported undeliverable, one message at a time, as on the per-message path.
    A flush (the subscription's cancel, a component's stop) ends the batch_wait window early."""
    queue = sub.queue
    callback = cast(BatchCallback, sub.callback)
    if sub.wait and not sub.hurry:  # batch_wait: let more join the first list, as a Kafka fetch waits
        # asyncio.sleep's timer and future, the future kept so that a flush (cancel, stop) ends it early
        loop = asyncio.get_running_loop()
        window = sub.window = loop.create_future()
        timer = loop.call_later(sub.wait, _end_window, window)
        try:
            await window
        finally:
            timer.cancel()
            sub.window = None
    while queue:
        topic = _topic_of(queue[0])
        entries: list[QueueEntry] = []
        messages: list[Envelope | RawMessage] = []
        while queue:
            entry = queue[0]
            if entry.__class__ is tuple:
                entry_topic, message, _attempt = entry
            else:  # an Envelope alone: its first delivery (see put)
                message = cast(Envelope, entry)
                entry_topic = message.topic
            if entry_topic != topic:
                break
            entries.append(queue.popleft())
            messages.append(message)
        try:
            await callback(topic, messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nothing of the list acknowledged
            _not_acked(hub, sub, topic, entries, exc)
        else:
            hub.delivered += len(messages)
    idle = sub.idle  # a flush waits for the queue to be empty
    if idle is not None and not idle.done():
        idle.set_result(None)


def _end_window(window: asyncio.Future[None]) -> None:
    if not window.done():
        window.set_result(None)


def _not_acked(hub: MemoryHub, sub: _Sub, topic: str, entries: list[QueueEntry], exc: Exception) -> None:
    again: list[QueueEntry] = []
    for entry in entries:
        if entry.__class__ is tuple:
            _topic, message, attempt = entry
        else:
            message, attempt = cast(Envelope, entry), 0
        if attempt < hub.max_redeliveries:
            hub.redelivered += 1
            again.append((topic, message, attempt + 1))
        else:
            hub.undeliverable += 1
            log.error("giving up on %s after %d deliveries to %r (in a batch of %d): %s",
                      topic, attempt + 1, sub.owner or sub.pattern, len(entries), exc)
            if hub.on_undeliverable is not None:
                hub.on_undeliverable(topic, message, exc)
    sub.queue.extendleft(reversed(again))


def _topic_of(entry: QueueEntry) -> str:
    return entry[0] if entry.__class__ is tuple else cast(Envelope, entry).topic
