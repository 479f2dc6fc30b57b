"""The in-memory hub on its own: groups take turns, routes follow subscriptions, stats count exactly."""

from __future__ import annotations

import asyncio

from forge_core.messages.envelope import Envelope
from forge_core.transport.memory_hub import MemoryHub, _Sub


def test_group_members_take_turns_and_a_member_outside_the_group_gets_every_message():
    async def body() -> dict[str, list[str]]:
        hub = MemoryHub()
        got: dict[str, list[str]] = {"a": [], "b": [], "solo": []}

        def recorder(name: str):
            async def callback(topic: str, envelope: Envelope) -> None:
                got[name].append(envelope.id)
            return callback

        for name, group in (("a", "workers"), ("b", "workers"), ("solo", None)):
            hub.add(_Sub(hub, "jobs/#", recorder(name), group, name))
        for n in range(4):
            hub.put("jobs/x", Envelope(type="t", payload={}, source="s", id=str(n)))
        await hub.drained()
        assert hub.stats == {"published": 4, "delivered": 8, "redelivered": 0, "undeliverable": 0}
        return got

    got = asyncio.run(body())
    assert got == {"a": ["0", "2"], "b": ["1", "3"], "solo": ["0", "1", "2", "3"]}


def test_a_removed_subscription_leaves_the_cached_route_and_its_queue():
    async def body() -> tuple[int, int]:
        hub = MemoryHub()
        seen: list[str] = []

        async def callback(topic: str, envelope: Envelope) -> None:
            seen.append(topic)

        sub = _Sub(hub, "a/+", callback, None, None)
        hub.add(sub)
        hub.put("a/b", Envelope(type="t", payload={}, source="s"))  # caches the route of a/b
        await hub.drained()
        task = hub.remove(sub)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        hub.put("a/b", Envelope(type="t", payload={}, source="s"))
        await hub.drained()
        return len(seen), hub.pending()

    assert asyncio.run(body()) == (1, 0)
