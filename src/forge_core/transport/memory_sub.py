"""A subscription on the in-memory hub (:class:`~forge_core.transport.memory_hub.MemoryHub`): its
queue, its delivery task's state and how it ends (cancel, abandon, flush)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from forge_core.transport.base import BatchCallback, MessageCallback, QueueEntry, Subscription

if TYPE_CHECKING:
    from forge_core.transport.memory_hub import MemoryHub


class _Sub(Subscription):
    __slots__ = ("_hub", "_registry", "batch", "callback", "draining", "group", "handover", "hurry", "idle", "kick",
                 "owner", "parked", "pattern", "queue", "task", "wait", "waiter", "window")

    def __init__(self, hub: MemoryHub, pattern: str, callback: MessageCallback | BatchCallback, group: str | None,
                 owner: str | None, registry: dict[_Sub, None] | None = None, *, batch: bool = False,
                 wait: float = 0.0) -> None:
        self._hub = hub
        #: The subscribing transport's record of its live subscriptions (for ``close``); a cancelled
        #: subscription leaves it, or the callback (and the component behind it) would live on.
        self._registry = registry
        self.pattern = pattern
        self.callback = callback
        #: ``callback(topic, messages)`` with lists (subscribe_batch) rather than one message a call.
        self.batch = batch
        #: A batch subscription's wait for more messages after the first, in seconds (batch_wait).
        self.wait = wait
        #: Set while :meth:`flush` runs: the batch delivery takes the queue without waiting.
        self.hurry = False
        #: The batch_wait window being waited out (a future :meth:`flush` ends early), or None.
        self.window: asyncio.Future[None] | None = None
        #: Set by :meth:`flush`: resolved when the batch delivery has emptied the queue.
        self.idle: asyncio.Future[None] | None = None
        self.group = group
        self.owner = owner
        self.queue: deque[QueueEntry] = deque()
        self.draining = False
        #: The subscription's delivery task lives as long as the subscription and sleeps on
        #: ``waiter`` when the queue is empty: waking a future is far cheaper than a task per burst.
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        #: Set while the task is idle and the callback has a ``run``: queues the callback that
        #: delivers a burst without waking the task (``MemoryHub._kick``), or None.
        self.kick: Callable[[], object] | None = None
        #: The task's future while ``kick`` is set (``waiter`` is None then): resolved by a handover.
        self.parked: asyncio.Future[None] | None = None
        #: What ``_kick`` could not finish without the task: (entry or None, outcome), taken by the task.
        self.handover: tuple[QueueEntry | None, Any] | None = None

    async def cancel(self) -> None:
        """Stop deliveries. A batch subscription first takes no more messages and delivers what its
        queue holds, its batch_wait window ended early (:meth:`flush`); a per-message one drops
        what is queued (an instant's messages). Called from inside its own callback, neither waits."""
        if self.batch and self.task is not None and self.task is not asyncio.current_task():
            self._hub.unroute(self)
            try:
                await self.flush()
            finally:
                await self.abandon()
        else:
            await self.abandon()

    async def abandon(self) -> None:
        """Stop deliveries at once (``Runtime.kill``): what is queued is dropped."""
        if self._registry is not None:
            self._registry.pop(self, None)
        task = self._hub.remove(self)
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)

    async def flush(self) -> None:
        """A batch subscription: end the batch_wait window now and return once the queue has been
        delivered (each list acknowledged, or redelivered and given up on per ``max_redeliveries``,
        as on any delivery). Messages that arrive meanwhile are delivered without a wait too."""
        task = self.task
        if not self.batch or task is None or task is asyncio.current_task():
            return
        loop = asyncio.get_running_loop()
        self.hurry = True
        try:
            while (self.queue or self.draining) and not task.done():
                window = self.window
                if window is not None and not window.done():
                    window.set_result(None)
                idle = self.idle = loop.create_future()
                await asyncio.wait((idle, task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.hurry = False
            self.idle = None
