"""Consumer groups on the in-memory hub: which subscriptions get a message published to a topic.

Every subscription outside a group gets it; each group's members take turns per ``(group, topic)``.
The split of a topic's subscriptions into those two is the same for every message until they
change, so it is kept per topic (a :class:`GroupPlan`) and checked against the route's list by
identity: the hub's route cache makes a new list whenever a subscription comes or goes.

When every group of a topic has one member (a plant's single processor, the common case), the pick
is the same list for every message: the plan hands it out and counts the messages, and the count is
added to each group's turns when the plan is dropped (:func:`settle_plans`, or a new plan for the
topic), so a member joining later takes its turns exactly where a count per message would put it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from forge_core.transport.memory_hub import _Sub

S = TypeVar("S", bound="_Sub")

Turns = dict[tuple[str, str], int]


class GroupPlan(Generic[S]):
    """A topic's subscriptions split once: outside any group, and each group's members in order."""

    __slots__ = ("fixed", "groups", "loose", "sent", "subs")

    def __init__(self, topic: str, subs: list[S]) -> None:
        self.subs = subs  # the route's list this plan was made from
        self.loose: list[S] = [sub for sub in subs if sub.group is None]
        members: dict[str, list[S]] = {}
        for sub in subs:
            if sub.group is not None:
                members.setdefault(sub.group, []).append(sub)
        #: ((group, topic), its members) in the order the groups first appear among ``subs``.
        self.groups = [((group, topic), group_members) for group, group_members in members.items()]
        #: every group has one member: the pick for every message (read only), else None
        self.fixed: list[S] | None = (
            [*self.loose, *(group_members[0] for _key, group_members in self.groups)]
            if all(len(group_members) == 1 for _key, group_members in self.groups) else None)
        self.sent = 0  # messages picked from ``fixed`` whose turns are not yet in the hub's counts

    def settle(self, turns: Turns) -> None:
        """Add the messages handed ``fixed`` to each group's turns."""
        if self.sent:
            for key, _members in self.groups:
                turns[key] = turns.get(key, 0) + self.sent
            self.sent = 0


def settle_plans(plans: dict[str, GroupPlan[S]], turns: Turns) -> None:
    """Drop every plan, its counted messages added to the turns first."""
    for plan in plans.values():
        plan.settle(turns)
    plans.clear()


def pick_members(plans: dict[str, GroupPlan[S]], turns: Turns, topic: str, subs: list[S]) -> list[S]:
    """The subscriptions that get the next message to ``topic``: all outside a group, then one member
    of each group in turn (``turns`` counts per ``(group, topic)``, less what plans hold: settle them
    before reading it). The list returned must not be changed."""
    plan = plans.get(topic)
    if plan is None or plan.subs is not subs:
        if plan is not None:
            plan.settle(turns)
        if len(plans) > 10_000:
            settle_plans(plans, turns)
        plan = plans[topic] = GroupPlan(topic, subs)
    fixed = plan.fixed
    if fixed is not None:
        plan.sent += 1
        return fixed
    chosen = plan.loose.copy()
    for key, members in plan.groups:
        turn = turns.get(key, 0)
        chosen.append(members[turn % len(members)])
        turns[key] = turn + 1
    return chosen
