"""The in-memory transport: the conformance suite, groups, redelivery and fault injection."""

from __future__ import annotations

import asyncio

import pytest

from forge_core.clock import VirtualClock
from forge_core.messages.envelope import Envelope
from forge_core.testing.conformance import Inbox, TransportConformance
from forge_core.transport.memory import MemoryTransport, hub_for, reset_hubs


class TestMemoryTransportConformance(TransportConformance):
    async def make_transport(self, name: str) -> MemoryTransport:
        return MemoryTransport(name)


def envelope(n: int, source: str = "src") -> Envelope:
    return Envelope("t", {"n": n}, source, str(n), 0.0)


def run_virtual(body):
    clock = VirtualClock()
    try:
        return clock.run(body(clock))
    finally:
        clock.close()


async def connected(**options) -> MemoryTransport:
    transport = MemoryTransport("mem", **options)
    await transport.connect()
    return transport


def test_drop_rule_loses_only_matching_and_counted_messages():
    async def body(clock):
        transport = await connected()
        inbox = Inbox(transport)
        await transport.subscribe("#", inbox)
        transport.faults.drop("plant/a", count=2)
        for n in range(3):
            await transport.publish("plant/a", envelope(n))
            await transport.publish("plant/b", envelope(10 + n))
        await transport.drained()
        return inbox.payloads, transport.faults.stats["dropped"]

    payloads, dropped = run_virtual(body)
    assert dropped == 2
    assert [p["n"] for p in payloads] == [10, 11, 2, 12]


def test_delay_rule_delivers_later_on_the_clock():
    async def body(clock):
        transport = await connected()
        inbox = Inbox(transport)
        await transport.subscribe("x", inbox)
        transport.faults.delay("x", seconds=2.5)
        await transport.publish("x", envelope(1))
        await asyncio.sleep(2.4)
        before = len(inbox.items)
        await asyncio.sleep(0.2)
        return before, len(inbox.items), clock.elapsed

    before, after, elapsed = run_virtual(body)
    assert (before, after) == (0, 1)
    assert elapsed == pytest.approx(2.6)


def test_duplicate_rule_delivers_twice():
    async def body(clock):
        transport = await connected()
        inbox = Inbox(transport)
        await transport.subscribe("x", inbox)
        transport.faults.duplicate("x", count=1)
        await transport.publish("x", envelope(1))
        await transport.publish("x", envelope(2))
        await transport.drained()
        return [p["n"] for p in inbox.payloads]

    assert run_virtual(body) == [1, 1, 2]


def test_reorder_rule_shuffles_a_window_reproducibly():
    async def body(clock):
        transport = await connected(fault_seed=5)
        inbox = Inbox(transport)
        await transport.subscribe("x", inbox)
        transport.faults.reorder("x", window=6)
        for n in range(6):
            await transport.publish("x", envelope(n))
        await transport.drained()
        return [p["n"] for p in inbox.payloads]

    first, second = run_virtual(body), run_virtual(body)
    assert sorted(first) == list(range(6))
    assert first != list(range(6))
    assert first == second


def test_partition_cuts_a_component_off_both_ways_until_healed():
    async def body(clock):
        transport = await connected()
        to_scheduler, to_machine = Inbox(transport), Inbox(transport)
        await transport.subscribe("cmd", to_machine, owner="machine")
        await transport.subscribe("beat", to_scheduler, owner="scheduler")
        transport.faults.partition("machine")
        await transport.publish("beat", envelope(1, source="machine"))
        await transport.publish("cmd", envelope(2, source="scheduler"))
        await transport.drained()
        cut = (len(to_scheduler.items), len(to_machine.items))
        transport.faults.heal()
        await transport.publish("beat", envelope(3, source="machine"))
        await transport.publish("cmd", envelope(4, source="scheduler"))
        await transport.drained()
        return cut, (len(to_scheduler.items), len(to_machine.items)), transport.faults.stats["partitioned"]

    cut, healed, counted = run_virtual(body)
    assert cut == (0, 0)
    assert healed == (1, 1)
    assert counted == 2


def test_redelivery_gives_up_and_reports_undeliverable():
    async def body(clock):
        transport = await connected(max_redeliveries=2)
        lost = []
        transport.hub.on_undeliverable = lambda topic, env, exc: lost.append((topic, env.payload, str(exc)))

        async def always_fails(topic, message):
            raise RuntimeError("broken handler")

        await transport.subscribe("x", always_fails)
        await transport.publish("x", envelope(1))
        await transport.drained()
        return lost, transport.hub.stats

    lost, stats = run_virtual(body)
    assert lost == [("x", {"n": 1}, "broken handler")]
    assert stats["redelivered"] == 2 and stats["undeliverable"] == 1


def test_named_channel_is_shared_between_transports():
    reset_hubs()

    async def body(clock):
        a = await connected(channel="plant")
        b = await connected(channel="plant")
        inbox = Inbox(b)
        await b.subscribe("x", inbox)
        await a.publish("x", envelope(1))
        await b.drained()
        return len(inbox.items), a.hub is hub_for("plant")

    assert run_virtual(body) == (1, True)
    reset_hubs()


def test_fault_rules_validate_their_arguments():
    transport = MemoryTransport("mem")
    with pytest.raises(ValueError, match="probability"):
        transport.faults.drop("#", probability=1.5)
    with pytest.raises(ValueError, match="window"):
        transport.faults.reorder("#", window=1)
    with pytest.raises(ValueError, match="'#' must be"):
        transport.faults.drop("a/#/b")


def test_health_reports_pending_and_fault_counters():
    async def body(clock):
        transport = await connected()
        transport.faults.drop("#")
        await transport.subscribe("x", Inbox(transport))
        await transport.publish("x", envelope(1))
        return transport.health()

    health = run_virtual(body)
    assert health.connected and health.stats["dropped"] == 1 and health.stats["published"] == 1


def test_route_cache_follows_subscriptions_made_and_cancelled_after_traffic():
    async def body(clock):
        transport = await connected()
        early = Inbox(transport)
        await transport.subscribe("plant/#", early)
        await transport.publish("plant/a", envelope(1))  # caches the route of plant/a
        late = Inbox(transport)
        late_sub = await transport.subscribe("plant/+", late)
        await transport.publish("plant/a", envelope(2))
        await transport.drained()
        await late_sub.cancel()
        await transport.publish("plant/a", envelope(3))
        await transport.drained()
        return [p["n"] for p in early.payloads], [p["n"] for p in late.payloads]

    assert run_virtual(body) == ([1, 2, 3], [2])


def test_a_pattern_subscribed_again_is_routed_the_topics_cached_before_and_after():
    """MemoryHub.add remembers which cached topics a pattern matched (a re-subscription asks again);
    topics first seen between two lives of the subscription are matched too, others never."""
    async def body(clock):
        transport = await connected()
        got: list[list[str]] = []
        for life, topics in enumerate((["plant/a/x", "plant/b/x"], ["plant/c/x", "other/a/x", "plant/a/y"],
                                       ["plant/d/x"])):
            inbox = Inbox(transport)
            sub = await transport.subscribe("plant/+/x", inbox)
            for n, topic in enumerate(["plant/a/x", "plant/b/x", "plant/a/y", *topics]):
                await transport.publish(topic, envelope(life * 10 + n))
            await transport.drained()
            got.append(list(inbox.topics))
            await sub.cancel()
        return got, sorted(topic for _, topic in transport.hub._matched)

    got, remembered = run_virtual(body)
    assert got == [["plant/a/x", "plant/b/x", "plant/a/x", "plant/b/x"],
                   ["plant/a/x", "plant/b/x", "plant/c/x"],
                   ["plant/a/x", "plant/b/x", "plant/d/x"]]
    assert {"plant/a/y", "other/a/x"} <= set(remembered)  # asked once, remembered as no match
