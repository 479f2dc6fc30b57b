"""The backlog: bounded with counted drops, order kept per topic, unsent changes put back in front,
invalid ones (dead-lettered by the bus) skipped."""

from __future__ import annotations

import asyncio

import pytest
from forge_core import MessageRejected, TransportNotReady

from forge_opcua.client.backlog import Backlog, Pending


def item(topic: str, n: int) -> Pending:
    return Pending(topic, topic, {"n": n})


class Sender:
    def __init__(self, fail_on: str | None = None, reject: dict[str, list[int]] | None = None) -> None:
        self.sent: list[tuple[str, list[int]]] = []
        self.fail_on = fail_on
        self.reject = reject or {}

    async def __call__(self, topic, payloads, keys):
        if topic == self.fail_on:
            raise TransportNotReady("broker away")
        invalid = self.reject.pop(topic, [])
        if invalid:
            raise MessageRejected("invalid", errors=[{"pointer": f"[{i}]/value", "message": "bad"} for i in invalid])
        self.sent.append((topic, [p["n"] for p in payloads]))


def test_bounded_drops_the_oldest_and_counts() -> None:
    backlog = Backlog(limit=3)
    added = [backlog.add(item("a", n)) for n in range(5)]
    assert added == [True, True, True, False, False]
    assert [p.payload["n"] for p in backlog.waiting] == [2, 3, 4]
    assert (backlog.received, backlog.dropped, backlog.depth) == (5, 2, 3)


def test_publishes_per_topic_in_order_and_puts_back_what_failed() -> None:
    backlog = Backlog(limit=100)
    for n in range(6):
        backlog.add(item("a" if n % 2 == 0 else "b", n))
    sender = Sender(fail_on="b")
    with pytest.raises(TransportNotReady):
        asyncio.run(backlog.publish(sender, batch=10))
    assert sender.sent == [("a", [0, 2, 4])]
    assert [p.payload["n"] for p in backlog.waiting] == [1, 3, 5] and backlog.in_flight == 0
    assert backlog.published == 3
    sender.fail_on = None
    assert asyncio.run(backlog.publish(sender, batch=2)) == 2
    assert sender.sent[-1] == ("b", [1, 3]) and [p.payload["n"] for p in backlog.waiting] == [5]


def test_invalid_changes_are_skipped_and_the_rest_sent() -> None:
    backlog = Backlog(limit=100)
    for n in range(4):
        backlog.add(item("a", n))
    sender = Sender(reject={"a": [1]})
    assert asyncio.run(backlog.publish(sender, batch=10)) == 3
    assert sender.sent == [("a", [0, 2, 3])] and backlog.rejected == 1 and backlog.depth == 0
