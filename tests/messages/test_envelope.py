"""Envelope ids: unique per process, repeatable under a seed."""

from __future__ import annotations

from forge_core.messages.envelope import IdGenerator


def test_ids_are_unique_and_repeat_under_a_seed():
    ids = IdGenerator(seed=3)
    taken = [ids() for _ in range(1000)]
    assert len(set(taken)) == 1000
    again = IdGenerator(seed=3)
    assert [again() for _ in range(3)] == taken[:3]
    assert IdGenerator()() != IdGenerator()()  # unseeded: a random prefix per generator


def test_many_continues_the_sequence():
    ids, same = IdGenerator(seed=3), IdGenerator(seed=3)
    assert [*ids.many(3), ids(), *ids.many(2)] == [same() for _ in range(6)]
    assert ids.many(0) == []
