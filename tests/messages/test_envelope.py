"""Envelope ids: unique per process, repeatable under a seed; the shared empty headers."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator


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


def test_the_shared_empty_headers_read_as_an_empty_dict_and_refuse_every_write():
    envelope = Envelope("t", {"n": 1}, "s", "1", 0.0, headers=NO_HEADERS)
    assert envelope.headers == {} and not envelope.headers and isinstance(envelope.headers, dict)
    assert envelope == Envelope("t", {"n": 1}, "s", "1", 0.0)  # equal to one with a dict of its own
    assert orjson.loads(orjson.dumps(envelope.to_dict()))["headers"] == {}
    assert orjson.dumps(NO_HEADERS) == b"{}"
    writes = [lambda h: h.__setitem__("a", "1"), lambda h: h.update(a="1"), lambda h: h.setdefault("a", "1"),
              lambda h: h.pop("a", None), lambda h: h.popitem(), lambda h: h.clear(),
              lambda h: h.__delitem__("a"), lambda h: h.__ior__({"a": "1"})]
    for write in writes:
        with pytest.raises(TypeError, match="shared empty ones"):
            write(envelope.headers)
    assert NO_HEADERS == {}  # nothing got in
    copy = dict(envelope.headers)
    copy["a"] = "1"  # a copy is a plain dict
    changed = dataclasses.replace(envelope, headers={**envelope.headers, "a": "1"})
    assert changed.headers == {"a": "1"} and NO_HEADERS == {}


def test_a_raw_message_is_not_tracked_by_the_collector_and_keeps_its_fields() -> None:
    import gc

    from forge_core import RawMessage

    first, second = RawMessage(b"{}"), RawMessage(body=b"{}", headers={"a": "b"})
    assert not gc.is_tracked(first) and not gc.is_tracked(second)
    assert first.headers == {} and first.headers is not RawMessage(b"").headers  # a dict of its own
    assert (second.body, second.headers, second.verdict) == (b"{}", {"a": "b"}, None)
    envelope = Envelope("t", {}, "s", "1", 0.0)
    second.verdict = envelope  # the bus's verdict, set later
    assert second.verdict is envelope and RawMessage(b"{}") == first
