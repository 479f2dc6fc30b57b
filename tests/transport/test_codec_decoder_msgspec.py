"""decode_structured reads Forge's events through msgspec (the shape in C, ``data`` by orjson);
every body must come out as the orjson-only reader (``decode_structured_dict``) makes it: the same
envelope, or None for the same bodies (decode then dead-letters them with the reason)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator
from forge_core.transport.codec import Decoder, encode_structured, encode_structured_many

FORGE = {"specversion": "1.0", "id": "i-1", "source": "m1", "type": "a.b", "time": "2026-11-22T05:09:27.000250Z",
         "datacontenttype": "application/json", "schemaversion": "1", "data": {"x": 1}}
DEEP = b"[" * 300 + b"]" * 300


def decoder() -> Decoder:
    return Decoder(ids=IdGenerator(seed=1), clock_time=lambda: 0.0)


def both(body: bytes) -> tuple[Envelope | None, Envelope | None]:
    return decoder().decode_structured("t", body), decoder().decode_structured_dict("t", body)


def event(**change: object) -> bytes:
    fields = {**FORGE, **change}
    return json.dumps({k: v for k, v in fields.items() if v is not ...}, separators=(",", ":")).encode()


BODIES = [
    event(),
    event(partitionkey="k"),
    event(partitionkey=None),  # null key: no key, as before
    event(schemaversion="7"),
    event(specversion=1, datacontenttype=["x"]),  # not checked on the fast path, before or now
    event(tenant="north"),  # an extension: the general reader keeps it
    event(type=...),
    event(data=...),
    event(data=None),
    event(datacontenttype=...),
    event(type=""), event(id=""), event(source=""), event(id=5), event(source=None), event(partitionkey=3),
    event(time="yesterday"), event(time=12), event(time="2026-11-22T05:09:27Z"),
    event(time="2026-11-22T05:09:27.٣٣٣٣٣٣Z"),
    event(schemaversion="x"), event(schemaversion=2),
    event(data={"big": 18446744073709551616}),  # beyond 64 bits: orjson reads a float, and so must this
    event(data={"big": -9223372036854775809}),
    event(data={"f": 1e300, "neg": -0.0, "s": "é\u0000😀"}),
    event().replace(b'"data":{"x":1}', b'"data":' + DEEP),  # nests deeper than Forge writes back
    event().replace(b'"data":{"x":1}', b'"data":' + b"[" * 200 + b"]" * 200),
    event().replace(b'"data":{"x":1}', b'"data":{"x":NaN}'),
    event().replace(b'"data":{"x":1}', b'"data":{"x":1e400}'),
    event().replace(b'"data":{"x":1}', b'"data":{"x":"\\ud800"}'),
    event().replace(b'"data":{"x":1}', b'"data":{"x":"\xff"}'),
    event().replace(b'"data":{"x":1}', b'"data":{"x":01}'),
    event().replace(b'"type":"a.b"', b'"type":"a.b","type":"c.d"'),  # a repeated attribute: the last
    event().replace(b'"data":{"x":1}', b'"data":{"x":1},"data":[2]'),
    event() + b" ",
    event() + b" x",
    b"\xef\xbb\xbf" + event(),
    event()[:-1],
    b"[]", b"{}", b"null", b"",
]


@pytest.mark.parametrize("body", BODIES)
def test_msgspec_path_decides_as_the_orjson_reader(body: bytes) -> None:
    fast, reference = both(body)
    assert fast == reference
    if fast is not None:
        assert type(fast.payload) is type(reference.payload)  # a float stays a float
        assert repr(fast.payload) == repr(reference.payload)


def test_forges_own_events_take_the_msgspec_path() -> None:
    sent = [Envelope("a.b", {"x": n}, f"m{n}", f"i-{n}", 1_795_324_167.25 + n * 1e-6, None if n % 2 else "k", 1)
            for n in range(4)]
    bodies = [encode_structured(e) for e in sent] + encode_structured_many(sent)
    reader = decoder()
    for body, envelope in zip(bodies, sent + sent, strict=True):
        got = reader.decode_structured("t", body)
        assert got is not None and got.headers is NO_HEADERS
        assert (got.type, got.payload, got.source, got.id, got.key) == (envelope.type, envelope.payload,
                                                                          envelope.source, envelope.id, envelope.key)
    assert reader.decode_structured("t", bodies[-1]).time == reader.decode_structured_dict("t", bodies[-1]).time


def test_times_of_the_last_millisecond_decide_as_the_orjson_reader() -> None:
    """One reader, its millisecond kept from the first time: a time of that millisecond (good, or
    broken in its last digits) is read, or refused, as a fresh reader of the whole event reads it."""
    reader = decoder()
    times = ["2026-11-22T05:09:27.000250Z", "2026-11-22T05:09:27.000251Z", "2026-11-22T05:09:27.000999Z",
             "2026-11-22T05:09:27.000٣٣٣Z", "2026-11-22T05:09:27.0002x5Z", "2026-11-22T05:09:27.000250z",
             "2026-11-22T05:09:27.000250", "2026-11-22T05:09:27.00025Z", "2026-11-22T05:09:27.0002500Z",
             "2026-11-22T05:09:27.001000Z", "2026-11-22T05:09:27.000001Z", "2026-11-22T05:09:28.000001Z"]
    for time in times:
        fast, reference = reader.decode_structured("t", event(time=time)), decoder().decode_structured_dict(
            "t", event(time=time))
        assert fast == reference, time


JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=8)
ATTRIBUTE = st.one_of(st.just(...), JSON, st.sampled_from(["", "1", "2", "x", FORGE["time"], "2026-11-22T05:09:27.5Z"]))


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from([*FORGE, "partitionkey", "tenant"]), ATTRIBUTE, max_size=3))
def test_any_change_of_attributes_decides_alike(changes: dict[str, object]) -> None:
    fast, reference = both(event(**changes))
    assert fast == reference


@pytest.mark.parametrize("key", [None, "m7"])
def test_forge_events_fit_the_msgspec_shape_itself(key: str | None) -> None:
    """The fast path is taken, not only its outcome matched: an event as Forge writes it (per message
    and by publish_batch) fits ``ForgeEvent``. A shape that no longer fit (a ``ForgeEvent`` defined in a
    module mypyc compiles reads ``Any`` as ``type``) would send every event down the slower general
    path with the same envelopes, which the comparisons above cannot see."""
    from forge_core.transport.decoder import _decode_event

    envelope = Envelope("a.b", {"x": [1, 2]}, "m1", "i-1", 1_764_901_540.25, key, 1, {})
    for body in (encode_structured(envelope), *encode_structured_many([envelope])):
        assert _decode_event(body).id == "i-1"
