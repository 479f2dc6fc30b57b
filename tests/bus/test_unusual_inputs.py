"""Unusual payloads, keys, headers and sources through ``publish`` and ``publish_batch``. The bus may run compiled
(mypyc checks annotations where it is entered; docs/compiled.md): every case here has the same outcome pure and
compiled, a message delivered as sent or a TypeError before anything is sent or dead-lettered."""

from __future__ import annotations

import types
from collections import OrderedDict
from typing import Any

import pytest

from forge_core.bus.stats import TraceRecorder
from forge_core.messages.envelope import Envelope
from tests.bus.bus_helpers import make_bus, run, settle


class Payload(dict[str, Any]):
    pass


class Name(str):
    __slots__ = ()


def publish(*, payload: Any = None, batch: bool = False, **options: Any) -> tuple[list[Any], list[Any], int]:
    """Publish one message (or a batch of two) on a memory bus; (what was sent, what was delivered, dead letters)."""
    async def body(clock):
        bus = make_bus(clock)
        got: list[Envelope] = []
        await bus.subscribe("plant/#", got.append, owner="monitor")
        message = {"value": 1.5} if payload is None else payload
        if batch:
            key = options.pop("key", None)
            keys = None if key is None else [key, key]
            sent = await bus.publish_batch("plant/m1/reading", "test.reading", [message, message], source="m1",
                                           keys=keys, **options)
        else:
            sent = [await bus.publish("plant/m1/reading", "test.reading", message, source="m1", **options)]
        await settle(bus)
        return ([(e.payload, e.key, e.headers) for e in sent], [(e.payload, e.key, e.headers) for e in got],
                len(bus.dead_letters.recent))

    return run(body)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("payload", [{"value": 1}, {"value": 2.0}, {"value": 10**30}, {"value": 1e308},
                                     Payload(value=1.5), OrderedDict(value=1.5)],
                         ids=["int", "whole-float", "huge-int", "huge-float", "dict-subclass", "ordered-dict"])
def test_unusual_numbers_and_dicts_are_delivered_as_sent(payload, batch):
    sent, got, letters = publish(payload=payload, batch=batch)
    assert got == sent == [(payload, None, {})] * len(sent) and letters == 0


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("headers", [{"a": "b"}, OrderedDict(a="b"), Payload(a="b"),
                                     types.MappingProxyType({"a": "b"})],
                         ids=["dict", "ordered-dict", "dict-subclass", "mapping-proxy"])
def test_any_mapping_of_headers_is_copied_into_a_dict(headers, batch):
    sent, got, _ = publish(headers=headers, batch=batch)
    assert got == sent == [({"value": 1.5}, None, {"a": "b"})] * len(sent)
    assert all(type(h) is dict for _, _, h in sent)


@pytest.mark.parametrize("batch", [False, True])
def test_a_str_subclass_key_is_a_key(batch):
    sent, got, _ = publish(key=Name("k"), batch=batch)
    assert got == sent == [({"value": 1.5}, "k", {})] * len(sent)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("key", [5, 1.5, b"k"], ids=["int", "float", "bytes"])
def test_a_key_that_is_not_a_str_is_refused_before_anything_is_sent(key, batch):
    async def body(clock):
        bus = make_bus(clock)
        got: list[Envelope] = []
        await bus.subscribe("plant/#", got.append, owner="monitor")
        with pytest.raises(TypeError):  # compiled: the argument check's words; pure: _bad_key's
            if batch:
                await bus.publish_batch("plant/m1/reading", "test.reading", [{"value": 1.5}], source="m1", keys=[key])
            else:
                await bus.publish("plant/m1/reading", "test.reading", {"value": 1.5}, source="m1", key=key)
        await settle(bus)
        return got, len(bus.dead_letters.recent), dict(bus.stats.published)

    got, letters, published = run(body)
    assert got == [] and letters == 0 and not any(published.values())


def test_the_refusal_says_what_a_key_may_be_and_what_it_got():
    async def body(clock):
        with pytest.raises(TypeError, match=r"str or None") as caught:  # the words of both, pure and compiled
            await make_bus(clock).publish("plant/m1/reading", "test.reading", {"value": 1.5}, source="m1", key=7)
        return str(caught.value)

    assert "int" in run(body)


@pytest.mark.parametrize("time", [1_700_000_000.0, 1_700_000_000, 0.5, 1e300])
def test_trace_lines_of_whole_and_extreme_times(time):
    # a clock gives floats; an int time of the fast path's range is hashed as its float
    recorder, reference = TraceRecorder(keep=1), TraceRecorder()
    recorder.record("t", Envelope("x", {"a": 1, "b": [1.5, None]}, "s", "id", time, Name("k")))
    reference.record("t", Envelope("x", {"a": 1, "b": [1.5, None]}, "s", "id", float(time), "k"))
    assert recorder.digest == reference.digest and recorder.events[0][0] == time
