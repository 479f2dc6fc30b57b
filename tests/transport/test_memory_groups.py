"""Consumer groups on the in-memory hub: the plan kept per topic picks what the split made per
message picked, through subscriptions coming and going."""

from __future__ import annotations

import asyncio
import random

from forge_core.messages.envelope import Envelope
from forge_core.transport.memory import MemoryTransport
from forge_core.transport.memory_groups import pick_members, settle_plans


class Sub:
    def __init__(self, name: str, group: str | None) -> None:
        self.name, self.group = name, group


def reference(turns: dict[tuple[str, str], int], topic: str, subs: list[Sub]) -> list[Sub]:
    """The pick as it was made per message before plans (e32cb8a's _pick_group_members)."""
    chosen: list[Sub] = []
    groups: dict[str, list[Sub]] = {}
    for sub in subs:
        if sub.group is None:
            chosen.append(sub)
        else:
            groups.setdefault(sub.group, []).append(sub)
    for group, members in groups.items():
        turn = turns.get((group, topic), 0)
        chosen.append(members[turn % len(members)])
        turns[(group, topic)] = turn + 1
    return chosen


def test_the_kept_plan_picks_as_the_per_message_split_did_while_members_come_and_go():
    rng = random.Random(5)
    plans: dict = {}
    turns: dict[tuple[str, str], int] = {}
    ref_turns: dict[tuple[str, str], int] = {}
    routes: dict[str, list[Sub]] = {"a": [], "b": []}
    for step in range(3000):
        topic = rng.choice("ab")
        if rng.random() < 0.05:  # a subscription comes or goes: the route gets a new list, as the hub's cache does
            subs = routes[topic]
            if subs and rng.random() < 0.5:
                gone = rng.choice(subs)
                routes[topic] = [s for s in subs if s is not gone]
            else:
                routes[topic] = [*subs, Sub(f"s{step}", rng.choice([None, "g", "h"]))]
        subs = routes[topic]
        got = [s.name for s in pick_members(plans, turns, topic, subs)]
        assert got == [s.name for s in reference(ref_turns, topic, subs)], step
        if step % 500 == 499:  # the hub drops every plan when a subscription leaves: their counts kept
            settle_plans(plans, turns)
            assert turns == ref_turns, step
    settle_plans(plans, turns)
    assert turns == ref_turns


def test_one_member_groups_are_picked_from_a_kept_list_and_a_second_member_takes_its_turn_in_place():
    plans: dict = {}
    turns: dict[tuple[str, str], int] = {}
    ref_turns: dict[tuple[str, str], int] = {}
    loose, only = Sub("loose", None), Sub("only", "g")
    subs = [loose, only]
    first = pick_members(plans, turns, "r", subs)
    assert [s.name for s in first] == ["loose", "only"]
    for _ in range(4):
        assert pick_members(plans, turns, "r", subs) is first  # no list built per message
        reference(ref_turns, "r", subs)
    reference(ref_turns, "r", subs)
    assert turns == {}, "held by the plan until it is dropped"
    subs = [loose, only, Sub("second", "g")]  # five messages so far: 5 % 2 -> the second member next
    assert [s.name for s in pick_members(plans, turns, "r", subs)] == ["loose", "second"]
    assert [s.name for s in reference(ref_turns, "r", subs)] == ["loose", "second"]
    assert turns == ref_turns == {("g", "r"): 6}


def test_group_members_share_a_topic_in_turn_on_the_hub_and_a_new_member_joins_the_turns():
    async def body() -> dict[str, list[int]]:
        transport = MemoryTransport()
        got: dict[str, list[int]] = {"x": [], "y": [], "z": [], "all": []}

        def into(name: str):
            async def callback(topic: str, message: Envelope) -> None:
                got[name].append(message.payload["n"])
            return callback

        await transport.subscribe("r", into("x"), group="g")
        await transport.subscribe("r", into("y"), group="g")
        await transport.subscribe("r", into("all"))
        for n in range(5):
            await transport.publish("r", Envelope(type="t", payload={"n": n}, source="s", id=str(n)))
        await transport.subscribe("r", into("z"), group="g")
        for n in range(5, 11):
            await transport.publish("r", Envelope(type="t", payload={"n": n}, source="s", id=str(n)))
        await transport.drained()
        return got

    got = asyncio.run(body())
    assert got["all"] == list(range(11))
    # turns 0..4 over [x, y]; then turns 5..10 over [x, y, z]: 5 % 3 = 2 -> z first
    assert (got["x"], got["y"], got["z"]) == ([0, 2, 4, 6, 9], [1, 3, 7, 10], [5, 8])
