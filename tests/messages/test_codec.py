"""CloudEvents in both content modes: binary (attributes in headers, plain JSON body) and structured
(one JSON event); plain clients typed by bindings."""

from __future__ import annotations

import dataclasses
import random

import orjson
import pytest

from forge_core.errors import DecodeError
from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator, format_time, parse_time
from forge_core.transport.codec import (
    STRUCTURED_CONTENT_TYPE,
    Decoder,
    TypeBinding,
    encode,
    encode_structured,
    encode_structured_many,
    fast_parse_time,
    is_structured,
)


def decoder(*bindings: TypeBinding, prefix: str = "ce_", infer=None) -> Decoder:
    return Decoder(list(bindings), prefix=prefix, ids=IdGenerator(seed=1), clock_time=lambda: 1_700_000_000.0,
                   infer_type=infer)


@pytest.mark.parametrize("prefix", ["ce_", ""])
def test_round_trip_keeps_every_attribute(prefix):
    sent = Envelope("pasta.heartbeat", {"title": "heartbeat", "machineId": 0}, "machine-0", "abc-1",
                    1_704_067_200.123456, "0", 2, {"traceparent": "00-aa-bb-01", "tenant": "north"})
    body, headers = encode(sent, prefix)
    assert body == b'{"title":"heartbeat","machineId":0}', "the body stays the plain JSON payload"
    assert headers[f"{prefix}type"] == "pasta.heartbeat" and headers[f"{prefix}specversion"] == "1.0"
    got = decoder(prefix=prefix).decode("heartbeats", body, headers)
    assert (got.type, got.payload, got.source, got.id, got.key, got.schema_version) == (
        sent.type, sent.payload, sent.source, sent.id, sent.key, 2)
    assert got.time == pytest.approx(sent.time, abs=1e-6)
    assert got.headers == {"traceparent": "00-aa-bb-01", "tenant": "north"}
    assert got.topic == "heartbeats"


def test_plain_json_typed_from_a_field_with_a_map():
    binding = TypeBinding("heartbeats", type_field="title", type_map={"heartbeat": "pasta.heartbeat"},
                          source_field="machineId", key_field="machineId")
    got = decoder(binding).decode("heartbeats", b'{"title": "heartbeat", "machineId": 0}', {})
    assert (got.type, got.source, got.key) == ("pasta.heartbeat", "0", "0")
    assert got.id and got.time == 1_700_000_000.0


def test_plain_json_typed_from_the_topic_with_wildcards():
    binding = TypeBinding("productionPlan/+", type="pasta.command")
    got = decoder(binding).decode("productionPlan/assignBlade", b'{"machineId": 1}', {})
    assert got.type == "pasta.command" and got.source == "topic:productionPlan/assignBlade"


def test_field_value_outside_the_map_is_untyped():
    binding = TypeBinding("heartbeats", type_field="title", type_map={"heartbeat": "pasta.heartbeat"})
    with pytest.raises(DecodeError, match="has no type"):
        decoder(binding).decode("heartbeats", b'{"title": "other"}', {})


def test_headers_win_over_bindings_and_foreign_headers_are_ignored():
    binding = TypeBinding("x", type="from.binding")
    got = decoder(binding).decode("x", b"{}", {"ce_type": "from.header", "content-type": "application/json"})
    assert got.type == "from.header" and got.headers == {}


def test_infer_hook_is_the_last_resort():
    got = decoder(infer=lambda topic, payload: "legacy.reading").decode("old/topic", b"[1, 2]", {})
    assert got.type == "legacy.reading" and got.payload == [1, 2]


@pytest.mark.parametrize(
    ("body", "headers", "match"),
    [
        (b"{not json", {"ce_type": "t"}, "is not JSON"),
        (b"{}", {}, "no 'type' header and no binding"),
        (b"{}", {"ce_type": "t", "ce_time": "yesterday"}, "bad header value"),
        (b"{}", {"ce_type": "t", "ce_schemaversion": "two"}, "bad header value"),
    ],
)
def test_bad_input_names_the_topic_and_the_fault(body, headers, match):
    with pytest.raises(DecodeError, match=match) as caught:
        decoder().decode("plant/line1", body, headers)
    assert "plant/line1" in str(caught.value)


@pytest.mark.parametrize("prefix", ["ce_", ""])
@pytest.mark.parametrize("marked", [True, False], ids=["content-type", "unmarked"])
def test_structured_round_trip_keeps_every_attribute(prefix, marked):
    sent = Envelope("pasta.heartbeat", {"title": "heartbeat", "machineId": 0}, "machine-0", "abc-1",
                    1_704_067_200.123456, "0", 2, {"traceparent": "00-aa-bb-01", "tenant": "north"})
    body = encode_structured(sent)
    event = orjson.loads(body)
    assert event["data"] == sent.payload and event["type"] == "pasta.heartbeat" and event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json" and event["tenant"] == "north"
    headers = {"content-type": STRUCTURED_CONTENT_TYPE} if marked else {}  # MQTT 3.1.1 cannot mark it
    got = decoder(prefix=prefix).decode("heartbeats", body, headers)
    assert (got.type, got.payload, got.source, got.id, got.key, got.schema_version, got.time) == (
        sent.type, sent.payload, sent.source, sent.id, sent.key, 2, sent.time)
    assert got.headers == {"traceparent": "00-aa-bb-01", "tenant": "north"}


def test_a_payload_that_looks_like_an_event_stays_a_payload_when_headers_type_it():
    payload = {"specversion": "x", "type": "mine", "data": 1}
    body, headers = encode(Envelope("a.b", payload, "s", "i", 0.0), "ce_")
    assert decoder().decode("t", body, headers).payload == payload


@pytest.mark.parametrize("body, match", [
    (b"[1, 2]", "not a JSON object"),
    (b'{"specversion": "1.0", "type": "a.b", "data_base64": "AA=="}', "data_base64"),
    (b'{"specversion": "1.0", "type": "a.b", "id": {"nested": 1}}', "attribute 'id'.*dict"),
])
def test_bad_structured_events_name_the_topic_and_the_fault(body, match):
    with pytest.raises(DecodeError, match=match) as info:
        decoder().decode("plant/line1", body, {"content-type": STRUCTURED_CONTENT_TYPE})
    assert "plant/line1" in str(info.value)


def test_fast_parse_time_is_parse_time():
    rng = random.Random(3)
    samples = [rng.uniform(-1e9, 4e9) for _ in range(20000)] + [0.0, -0.5, 1_704_067_200.999999]
    samples += [1_795_324_167 + k * 0.000001 for k in range(3000)]  # the same second, cached
    for epoch in samples:
        text = format_time(epoch)
        assert fast_parse_time(text) == parse_time(text), text
    assert fast_parse_time("2026-01-01T00:00:00+01:00") == parse_time("2026-01-01T00:00:00+01:00")


def test_fast_format_time_is_datetimes_text_in_and_out_of_the_kept_second():
    from forge_core.messages.envelope import datetime_time_text
    from forge_core.transport.codec import fast_format_time

    samples = [1_795_324_167 + k * 0.0000005 for k in range(4000)]  # one second, cached; every tie
    samples += [-5.25 - k * 0.0000005 for k in range(4000)]  # a negative second: never cached
    samples += [1_795_324_167.9999995, 1_795_324_168.0, 1_795_324_167.9999994, 1e-7, 0.0, -1e-7]
    rng = random.Random(11)
    samples += [rng.uniform(-1e9, 4e9) for _ in range(5000)]
    for epoch in samples:
        assert fast_format_time(epoch) == datetime_time_text(epoch), epoch


@pytest.mark.parametrize("event, expected", [
    # no datacontenttype, no schemaversion, one extension: the extension is kept, version 1
    ({"specversion": "1.0", "id": "i", "source": "s", "type": "a.b", "time": "2026-01-01T00:00:00.000001Z",
      "tenant": "north", "data": {"x": 1}}, ("a.b", {"x": 1}, 1, {"tenant": "north"})),
    # a numeric schemaversion and a numeric extension from a foreign producer: read as text
    ({"specversion": "1.0", "id": "i", "source": "s", "type": "a.b", "time": "2026-01-01T00:00:00Z",
      "schemaversion": 2, "line": 7, "data": None}, ("a.b", None, 2, {"line": "7"})),
])
def test_structured_events_from_other_producers(event, expected):
    got = decoder().decode("t", orjson.dumps(event), {"content-type": STRUCTURED_CONTENT_TYPE})
    assert (got.type, got.payload, got.schema_version, got.headers) == expected
    assert (got.id, got.source, got.topic) == ("i", "s", "t")


def test_encode_structured_many_writes_the_same_events_as_encode_structured():
    rng = random.Random(5)
    envelopes = []
    for n in range(200):
        envelopes.append(Envelope(
            rng.choice(["pasta.heartbeat", "x.\"quoted\""]), {"n": n, "text": rng.choice(["é", "a\nb", "\u0000"])},
            rng.choice(["gateway", "m\\1", "naïve"]), f"id-{n}", rng.choice([1_704_067_200.5, 1_704_067_201.25]),
            rng.choice([None, "m1", "kéy\""]), rng.choice([1, 3]),
            rng.choice([{}, {}, {"traceparent": "00-aa-bb-01"}])))
    many = encode_structured_many(envelopes)
    assert [orjson.loads(body) for body in many] == [orjson.loads(encode_structured(e)) for e in envelopes]
    got = [decoder().decode("t", body, {"content-type": STRUCTURED_CONTENT_TYPE}) for body in many]
    assert [(g.type, g.payload, g.source, g.id, g.key, g.schema_version, g.headers) for g in got] == [
        (e.type, e.payload, e.source, e.id, e.key, e.schema_version, e.headers) for e in envelopes]
    assert encode_structured_many([]) == []


def test_decode_structured_is_the_fast_path_or_none():
    sent = Envelope("pasta.heartbeat", {"machineId": 1}, "m1", "abc-1", 1_704_067_200.25, "1", 1, {"tenant": "n"})
    got = decoder().decode_structured("t", encode_structured(sent))
    assert got is not None and (got.type, got.payload, got.id, got.headers, got.topic) == (
        sent.type, sent.payload, sent.id, {"tenant": "n"}, "t")
    # made without calling Envelope (codec.py): every field set, equal to the constructor's
    assert type(got) is Envelope and got == dataclasses.replace(sent, topic="t")
    bare = dataclasses.replace(sent, headers={}, key=None)
    got = decoder().decode_structured("t", encode_structured(bare))
    assert got == dataclasses.replace(bare, topic="t") and got.headers is NO_HEADERS  # no extensions: shared, read-only
    for body in (b"not json", b"[1]", b'{"specversion":"1.0","type":"x"}', b'{"type":"x","id":"1","source":"s",'
                 b'"time":"2026-01-01T00:00:00Z","data_base64":"AA=="}', b'{"type":"x","id":"1","source":"s",'
                 b'"time":"2026-01-01T00:00:00Z","tenant":5}'):
        assert decoder().decode_structured("t", body) is None, body


def test_is_structured_reads_the_content_type():
    assert is_structured({"content-type": STRUCTURED_CONTENT_TYPE + "; charset=utf-8"})
    assert not is_structured({"content-type": "application/json"}) and not is_structured({})



def test_a_body_nested_deeper_than_forge_can_re_encode_is_a_decode_error():
    """orjson reads 1024 levels and writes 255: a deeper message could not be bridged, dead-lettered
    onto its topic or traced, so it is refused where it enters."""
    decoder = Decoder(ids=lambda: "id", clock_time=lambda: 0.0)
    shallow = b'{"n": ' + b"[" * 200 + b"]" * 200 + b"}"
    assert decoder.decode("t", shallow, {"ce_type": "x"}).payload["n"]
    deep = b'{"n": ' + b"[" * 600 + b"]" * 600 + b"}"
    with pytest.raises(DecodeError, match="nests deeper"):
        decoder.decode("t", deep, {"ce_type": "x"})
    assert decoder.decode_structured("t", b'{"specversion": "1.0", "data": ' + b"[" * 600 + b"]" * 600 + b"}") is None
