"""The message bus's batches: publish_batch (all or none, keys, one time) and batch handlers (lists of
valid messages, a raising handler dead-letters each message)."""

from __future__ import annotations

import pytest

from forge_core.errors import MessageRejected, UnknownMessageType
from forge_core.messages.envelope import RawMessage
from forge_core.transport.codec import TypeBinding, encode
from tests.bus.bus_helpers import make_bus, run, settle


def test_publish_batch_sends_every_message_in_order_with_one_time_and_keys():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("r", got.append, owner="monitor")
        sent = await bus.publish_batch("r", "test.reading", [{"value": v} for v in range(5)], source="gateway",
                                       keys=["m0", "m1", None, "m1", "m0"])
        await settle(bus)
        return sent, got, bus.stats

    sent, got, stats = run(body)
    assert got == sent and [e.payload["value"] for e in got] == [0, 1, 2, 3, 4]
    assert [e.key for e in sent] == ["m0", "m1", None, "m1", "m0"]
    assert len({e.id for e in sent}) == 5 and len({e.time for e in sent}) == 1
    assert sent[0].time == pytest.approx(1_704_067_200.0)
    assert {e.source for e in sent} == {"gateway"} and stats.published["test.reading"] == 5


def test_publish_batch_with_an_invalid_payload_sends_none_and_names_each_by_index():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("#", got.append, owner="monitor")
        payloads = [{"value": 1}, {"value": "hot"}, {"value": 2}, {"value": 3, "unit": "C"}]
        with pytest.raises(MessageRejected, match=r"batch of 4 'test.reading' from 'gateway': 2 invalid, none sent"
                           ) as caught:
            await bus.publish_batch("r", "test.reading", payloads, source="gateway")
        await settle(bus)
        return got, list(bus.dead_letters.recent), caught.value.errors, bus.stats

    got, letters, errors, stats = run(body)
    assert got == [] and stats.published["test.reading"] == 0
    assert [e["pointer"] for e in errors] == ["[1]/value", "[3]/unit"]
    assert [(d.reason, d.envelope.payload) for d in letters] == [("invalid", {"value": "hot"}),
                                                                  ("invalid", {"value": 3, "unit": "C"})]
    assert "item 1 of a batch" in letters[0].detail


def test_publish_batch_refuses_keys_that_do_not_match_and_unknown_types():
    async def body(clock):
        bus = make_bus(clock)
        with pytest.raises(ValueError, match="1 keys for 2 payloads"):
            await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": 2}], source="g", keys=["a"])
        with pytest.raises(UnknownMessageType, match=r"test\.unknown"):
            await bus.publish_batch("r", "test.unknown", [{}], source="g")
        assert await bus.publish_batch("r", "test.reading", [], source="g") == []

    run(body)


def test_batch_handler_gets_lists_of_valid_messages_and_invalid_ones_are_dead_lettered():
    async def body(clock):
        bus = make_bus(clock, bindings=[TypeBinding("legacy/+", type="test.reading")])
        batches = []
        await bus.subscribe("legacy/+", batches.append, owner="monitor", batch=True)
        transport = bus.transport()
        good, _ = encode(bus.build("test.reading", {"value": 7}, source="m9"))
        for raw in (RawMessage(b'{"value": 1}'), RawMessage(b'{"value": "x"}'), RawMessage(b"not json"),
                    RawMessage(good), RawMessage(b'{"value": 2}')):
            await transport.publish_raw("legacy/m1", raw)
        await settle(bus)
        return batches, bus.dead_letters, bus.stats

    batches, letters, stats = run(body)
    assert all(isinstance(batch, list) and batch for batch in batches)
    assert [e.payload["value"] for batch in batches for e in batch] == [1, 7, 2]
    assert dict(letters.counts) == {"invalid": 1, "decode_error": 1}
    assert stats.handled["test.reading"] == 3


def test_batch_handler_that_raises_dead_letters_each_message_and_lives_on():
    async def body(clock):
        bus = make_bus(clock)
        handled = []

        async def handler(envelopes):
            if any(e.payload["value"] < 0 for e in envelopes):
                raise ValueError("negative reading in batch")
            handled.extend(e.payload["value"] for e in envelopes)

        await bus.subscribe("r", handler, owner="monitor", batch=True, types=["test.reading"])
        await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": -1}, {"value": 2}], source="m1")
        await settle(bus)
        await bus.publish_batch("r", "test.reading", [{"value": 3}, {"value": 4}], source="m1")
        await settle(bus)
        return handled, list(bus.dead_letters.recent)

    handled, letters = run(body)
    assert handled == [3, 4]  # the memory transport hands over the queue at once: the first list failed whole
    assert [(d.reason, d.component, d.envelope.payload["value"]) for d in letters] == [
        ("handler_error", "monitor", 1), ("handler_error", "monitor", -1), ("handler_error", "monitor", 2)]
    assert {d.detail for d in letters} == {"ValueError: negative reading in batch (batch of 3)"}
