"""Consumer groups on the in-memory hub: which subscriptions get a message published to a topic.

Every subscription outside a group gets it; each group's members take turns per ``(group, topic)``.
The split of a topic's subscriptions into those two is the same for every message until they
change, so it is kept per topic (a :class:`GroupPlan`) and checked against the route's list by
identity: the hub's route cache makes a new list whenever a subscription comes or goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from forge_core.transport.memory_hub import _Sub

S = TypeVar("S", bound="_Sub")


class GroupPlan(Generic[S]):
    """A topic's subscriptions split once: outside any group, and each group's members in order."""

    __slots__ = ("groups", "loose", "subs")

    def __init__(self, topic: str, subs: list[S]) -> None:
        self.subs = subs  # the route's list this plan was made from
        self.loose: list[S] = [sub for sub in subs if sub.group is None]
        members: dict[str, list[S]] = {}
        for sub in subs:
            if sub.group is not None:
                members.setdefault(sub.group, []).append(sub)
        #: ((group, topic), its members) in the order the groups first appear among ``subs``.
        self.groups = [((group, topic), group_members) for group, group_members in members.items()]


def pick_members(plans: dict[str, GroupPlan[S]], turns: dict[tuple[str, str], int], topic: str,
                 subs: list[S]) -> list[S]:
    """The subscriptions that get the next message to ``topic``: all outside a group, then one member
    of each group in turn (``turns`` counts per ``(group, topic)``)."""
    plan = plans.get(topic)
    if plan is None or plan.subs is not subs:
        if len(plans) > 10_000:
            plans.clear()
        plan = plans[topic] = GroupPlan(topic, subs)
    chosen = plan.loose.copy()
    for key, members in plan.groups:
        turn = turns.get(key, 0)
        chosen.append(members[turn % len(members)])
        turns[key] = turn + 1
    return chosen
