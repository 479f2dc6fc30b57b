"""The structured encoder's joined event (a cached head and one dumps) is the whole event's, exactly."""

from __future__ import annotations

import random

import orjson
import pytest

from forge_core.messages.envelope import Envelope, format_time
from forge_core.transport import codec, encoder
from forge_core.transport.codec import encode_structured


def _whole(envelope: Envelope) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0", "id": envelope.id, "source": envelope.source, "type": envelope.type,
        "time": format_time(envelope.time), "datacontenttype": "application/json",
        "schemaversion": str(envelope.schema_version), "data": envelope.payload}
    if envelope.key is not None:
        event["partitionkey"] = envelope.key
    event.update(envelope.headers)
    return event


def test_the_joined_event_is_the_whole_event_in_and_out_of_the_cached_second() -> None:
    rng = random.Random(7)
    times = [1_795_324_167 + k * 0.0000005 for k in range(3000)]  # one second, cached; every tie
    times += [1_795_324_167.9999995, 1_795_324_168.0, -5.25, -1e-7, 0.0, 1e-7]
    times += [rng.uniform(-1e9, 4e9) for _ in range(2000)]
    for n, epoch in enumerate(times):
        envelope = Envelope(rng.choice(["a.b", 'x."q"']), {"n": n, "s": rng.choice(["é", "a\nb", "\u0000"])},
                            rng.choice(["m1", "m\\2", "naïve"]), f"id-{n}", epoch, rng.choice([None, "k", 'k"é']),
                            rng.choice([1, 2]), rng.choice([{}, {}, {"traceparent": "00-a-b-01"}]))
        body = encode_structured(envelope)
        assert body.startswith(b'{"specversion":"1.0",'), body  # the bus's fast path for a record without headers
        assert orjson.loads(body) == _whole(envelope), epoch


def test_heads_are_kept_per_shape_and_bounded(monkeypatch) -> None:
    monkeypatch.setattr(encoder, "_heads", {})
    for n in range(5):
        encode_structured(Envelope("a.b", n, "m1", f"i{n}", 1.5))
    encode_structured(Envelope("a.b", 0, "m1", "i", 1.5, schema_version=2))
    encode_structured(Envelope("a.b", 0, "m1", "i", 1.5, headers={"tenant": "n"}))  # written whole, no head
    assert set(encoder._heads) == {("m1", "a.b", 1), ("m1", "a.b", 2)}
    monkeypatch.setattr(encoder, "_MAX_HEADS", 3)
    for n in range(10):
        body = encode_structured(Envelope("a.b", n, f"source-{n}", "i", 1.5))
        assert orjson.loads(body)["source"] == f"source-{n}"
    assert len(encoder._heads) <= 3


def test_codec_re_exports_the_split_modules_public_names() -> None:
    assert codec.encode_structured is encoder.encode_structured and codec.encode is encoder.encode
    assert set(codec.__all__) >= {"Decoder", "TypeBinding", "encode_structured_many", "fast_parse_time",
                                  "is_structured"}


def _nested(levels: int) -> object:
    payload: object = 1
    for _ in range(levels):
        payload = [payload]
    return payload


def test_the_kept_second_writes_the_bytes_one_dumps_of_the_dict_wrote() -> None:
    """In the kept second the time, id and data are joined as bytes; the document is byte for byte
    the head joined to ``orjson.dumps({"time", "id", ["partitionkey",] "data"})``, and data that
    nests as deep as orjson refuses inside that dict is refused as before."""
    rng = random.Random(11)
    payloads = [{"n": 1}, "é\u0000😀\"\\", [1.5, None, True], {"k": "x" * 1000}, _nested(252), _nested(253)]
    for n in range(600):
        envelope = Envelope("a.b", payloads[n % len(payloads)], f"m{n % 5}", f'id-"é{n}',
                            1_795_324_167 + rng.random() * 2, rng.choice([None, "k", 'k"é']), 1, {})
        encode_structured(envelope)  # the second kept
        head = encoder._heads[(envelope.source, envelope.type, 1)]
        rest = {"time": format_time(envelope.time), "id": envelope.id}
        if envelope.key is not None:
            rest["partitionkey"] = envelope.key
        rest["data"] = envelope.payload
        assert encode_structured(envelope) == head + orjson.dumps(rest)[1:]
    too_deep = Envelope("a.b", _nested(254), "m1", "i", 1_795_324_167.5, None, 1, {})
    orjson.dumps(too_deep.payload)  # alone orjson writes it
    with pytest.raises(orjson.JSONEncodeError):
        encode_structured(too_deep)
