"""Proof that the broker read the QoS 0 DATA an edge node wrote (``link_proof``).

Sparkplug sends DATA at QoS 0, so a connection that died without the node noticing yet eats what was
written into it. The node keeps a copy of each live DATA (its outbox body) until a round trip to the
broker written after it comes back: the broker answers in order, so its answer means it read
everything before. Copies not proven when the connection or the host's session ends go to the
store-and-forward outbox ahead of anything newer and are replayed as historical (at least once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from forge_sparkplug.mqtt.client import SparkplugClient

__all__ = ["LinkProof"]


class LinkProof:
    """The copies of live DATA not yet proven read, and the task proving them every ``interval`` seconds."""

    def __init__(self, ctx: Any, interval: float, client: Callable[[], SparkplugClient], keepalive: float,
                 stats: dict[str, int]) -> None:
        self.ctx, self.interval, self.client, self.keepalive, self.stats = ctx, interval, client, keepalive, stats
        self.pending: list[bytes] = []  # outbox bodies, made when sent (the table's entries change after)
        # one prover for the node's life, woken by the first copy held after it went idle: a task spawned each
        # time was a task, its first step and its done callback for every other DATA (the OEE line's day)
        self._held = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def hold(self, body: bytes) -> None:
        """Keep ``body`` until a round trip after it; start proving if nothing is."""
        self.pending.append(body)
        if self._task is None or self._task.done():
            self._task = self.ctx.spawn(self._prover(), name="link-proof")
        self._held.set()

    def take(self) -> list[bytes]:
        """Everything not proven, oldest first; held no longer."""
        pending, self.pending = self.pending, []
        return pending

    async def prove_now(self, timeout: float) -> None:
        """One round trip (on stop): what it proves needs no copy."""
        client = self.client()
        if self.pending and client.connected and await client.probe(timeout=timeout):
            self.pending.clear()

    async def _prover(self) -> None:
        while True:
            await self._held.wait()
            self._held.clear()
            await self._proving()

    async def _proving(self) -> None:
        """Every ``interval`` seconds while a copy is held: a probe after it. No answer: the copies stay, and
        go to the outbox when the connection is found dead."""
        while self.pending:
            await self.ctx.clock.sleep(self.interval)
            self._held.clear()  # what was held meanwhile is proven by this round, or waits for the next
            client, upto = self.client(), len(self.pending)
            if not upto or not client.connected:
                return
            if await client.probe(timeout=max(self.interval, self.keepalive)) \
                    and client is self.client() and client.connected:
                del self.pending[:upto]
                self.stats["link_proofs"] += 1
