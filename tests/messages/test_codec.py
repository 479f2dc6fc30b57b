"""CloudEvents binary mode: attributes in headers, plain JSON body; plain clients typed by bindings."""

from __future__ import annotations

import pytest

from forge_core.errors import DecodeError
from forge_core.messages.codec import Decoder, TypeBinding, encode
from forge_core.messages.envelope import Envelope, IdGenerator


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
