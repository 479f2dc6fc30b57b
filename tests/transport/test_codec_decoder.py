"""decode_structured's fast path (msgspec reads the shape, orjson the data): Forge's exact events,
every other form through the general reader, a bad attribute never an envelope (decode then
dead-letters with the reason)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from forge_core.errors import DecodeError
from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator, parse_time
from forge_core.transport.codec import STRUCTURED_CONTENT_TYPE, Decoder, encode_structured

MARKED = {"content-type": STRUCTURED_CONTENT_TYPE}
FORGE = {"specversion": "1.0", "id": "i-1", "source": "m1", "type": "a.b", "time": "2026-11-22T05:09:27.000250Z",
         "datacontenttype": "application/json", "schemaversion": "1", "data": {"x": 1}}


def decoder() -> Decoder:
    return Decoder(ids=IdGenerator(seed=1), clock_time=lambda: 0.0)


@pytest.mark.parametrize("key", [None, "k1"])
@pytest.mark.parametrize("epoch", [1_795_324_167.00025, 1_795_324_167.999999, 1_795_324_168.0, 0.5, -0.25])
def test_forges_events_decode_exactly(key, epoch) -> None:
    sent = Envelope("a.b", {"x": [1, "é"]}, "m1", "i-1", epoch, key, 3)
    for _ in range(2):  # the second: in the cached second
        got = decoder().decode_structured("t", encode_structured(sent))
        assert got == dataclasses.replace(sent, topic="t") and got.headers is NO_HEADERS


@pytest.mark.parametrize("change", [
    {"tenant": "north"},  # an extension beside Forge's eight: the general reader keeps it
    {"specversion": None, "tenant": "north"},  # eight keys, one an extension in place of specversion
    {"datacontenttype": None, "tenant": "north"},
    {"schemaversion": None},  # other producers may leave it out: version 1
    {"partitionkey": "k", "datacontenttype": None},
    {"schemaversion": "2", "partitionkey": "k"},
])
def test_other_forms_of_a_valid_event_go_through_the_general_reader(change) -> None:
    event = {name: value for name, value in {**FORGE, **change}.items() if value is not None}
    got = decoder().decode_structured("t", orjson.dumps(event))
    assert got is not None and (got.type, got.id, got.source, got.payload) == ("a.b", "i-1", "m1", {"x": 1})
    assert got.time == parse_time(FORGE["time"]) and got.schema_version == int(event.get("schemaversion", "1"))
    assert got.key == event.get("partitionkey") and got.headers == ({"tenant": "north"} if "tenant" in event else {})


@pytest.mark.parametrize(("change", "fault"), [
    ({"type": ""}, "no type"),
    ({"type": 7}, None),
    ({"id": ["x"]}, "attribute 'id'"),
    ({"source": {"a": 1}}, "attribute 'source'"),
    ({"time": "2026-11-22T05:09:27.00025xZ"}, "bad header value"),
    ({"time": "2026-11-22T05:09:27.\u0660\u0660\u0660\u0662\u0665\u0660Z"}, "bad header value"),  # Arabic-Indic
    ({"time": "2026-11-22T05:09:27." + "\u00b2" * 6 + "Z"}, "bad header value"),
    ({"time": "yesterday"}, "bad header value"),
    ({"time": 5}, "bad header value"),
    ({"schemaversion": "two"}, "bad header value"),
    ({"partitionkey": 5}, None),
    ({"partitionkey": [1]}, "attribute 'partitionkey'"),
])
def test_a_bad_attribute_is_never_an_envelope_and_decode_names_it(change, fault) -> None:
    body = orjson.dumps({**FORGE, **change})
    assert decoder().decode_structured("plant/line1", encode_structured(
        Envelope("a.b", 1, "m1", "i", 1_795_324_167.5))) is not None  # the second cached first
    assert decoder().decode_structured("plant/line1", body) is None
    if fault is None:  # a number where text belongs: read as text by the general path (foreign producers)
        decoder().decode("plant/line1", body, MARKED)
        return
    with pytest.raises(DecodeError, match=fault) as info:
        decoder().decode("plant/line1", body, MARKED)
    assert "plant/line1" in str(info.value)


def test_a_batchs_shared_time_is_read_once_and_exactly() -> None:
    """decode_structured keeps the last time text it parsed: the events of a publish_batch call share
    one; each event still gets its own text's exact value, and a bad time after a good one is refused."""
    one = decoder()
    seen = [1_795_324_167.00025, 1_795_324_167.00025, 1_795_324_167.5, 1_795_324_167.00025, -0.25, -0.25, 0.5]
    for epoch in seen:
        got = one.decode_structured("t", encode_structured(Envelope("a.b", 1, "m1", "i", epoch)))
        assert got is not None and got.time == epoch
    bad = [{"time": ""}, {"time": "2026-11-22T05:09:27.00025xZ"}, {"time": "2026-11-22T05:09:27.000250Z "}]
    for change in bad:
        assert one.decode_structured("t", orjson.dumps({**FORGE, **change})) is None
        assert one.decode_structured("t", orjson.dumps(FORGE)).time == parse_time(FORGE["time"])  # type: ignore[union-attr]
