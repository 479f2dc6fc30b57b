"""A consumed event's time kept as its checked text and parsed when read (TimeTextEnvelope): the same
value, equality, repr, pickling and copies as an envelope parsed at decode; a bad time still refused
at decode."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random

import orjson
import pytest

from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator, format_time, parse_time
from forge_core.transport import timestamps
from forge_core.transport.codec import Decoder, encode_structured, encode_structured_many
from forge_core.transport.timestamps import TimeTextEnvelope, fast_parse_time

START = 1_764_901_540.25


def decoder() -> Decoder:
    return Decoder(ids=IdGenerator(seed=1), clock_time=lambda: 0.0)


def sent(n: int, time: float = START) -> Envelope:
    return Envelope("a.b", {"x": n}, f"m{n}", f"i-{n}", time + n * 1e-6, "k" if n % 2 else None, 1, NO_HEADERS, "t")


def lazy(n: int = 1) -> Envelope:
    """A decoded envelope whose time is still text (the second of a second: the first parses it)."""
    reader = decoder()
    reader.decode_structured("t", encode_structured(sent(0)))
    got = reader.decode_structured("t", encode_structured(sent(n)))
    assert type(got) is TimeTextEnvelope and isinstance(got, Envelope)
    return got


def test_time_is_parsed_when_read_to_the_eager_value_and_the_object_becomes_an_envelope() -> None:
    got = lazy(3)
    text = format_time(sent(3).time)
    assert got.text == text  # the slot holds the text until read
    assert got.time == parse_time(text) == sent(3).time
    assert type(got) is Envelope and got.time == sent(3).time  # a plain slot read from here on
    assert got.time_iso == text and got.to_dict()["time"] == text


def test_every_microsecond_pattern_and_second_reads_as_parse_time() -> None:
    rng = random.Random(5)
    reader = decoder()
    times = sorted(START + rng.randrange(0, 5_000_000) / 1e6 for _ in range(3000))  # a stream: seconds in order
    times += [float(int(START)) + k for k in range(3)] + [START + 0.999999]
    lazies = 0
    for n, epoch in enumerate(times):
        got = reader.decode_structured("t", encode_structured(sent(n, epoch - n * 1e-6)))
        assert got is not None
        lazies += type(got) is TimeTextEnvelope
        text = format_time(epoch)
        assert got.time == parse_time(text) == fast_parse_time(text), text
    assert lazies > 2500  # most in a second already parsed: left as text


def test_equality_both_ways_and_between_two_unread() -> None:
    assert lazy(1) == sent(1) and sent(1) == lazy(1)
    assert lazy(1) == lazy(1)
    assert lazy(1) != sent(3) and sent(3) != lazy(1) and lazy(1) != lazy(3)
    assert (lazy(1) != sent(1)) is False
    later = dataclasses.replace(sent(1), time=sent(1).time + 1e-6)
    assert lazy(1) != later and later != lazy(1)  # the time itself is compared
    assert lazy(1) != "not an envelope"
    with pytest.raises(TypeError):
        hash(lazy(1))  # as an Envelope: unhashable


def test_repr_pickle_copies_and_dataclass_helpers_give_a_plain_envelope() -> None:
    assert repr(lazy(1)) == repr(sent(1))
    for made in (pickle.loads(pickle.dumps(lazy(1))), pickle.loads(pickle.dumps(lazy(1), protocol=2)),
                 copy.copy(lazy(1)), copy.deepcopy(lazy(1)), dataclasses.replace(lazy(1), topic="t")):
        assert type(made) is Envelope and made == sent(1), made
    assert dataclasses.asdict(lazy(1)) == dataclasses.asdict(sent(1))
    assert orjson.dumps(lazy(1)) == orjson.dumps(sent(1))  # orjson reads a dataclass's fields by name
    assert dataclasses.astuple(lazy(1)) == dataclasses.astuple(sent(1))
    assert dataclasses.fields(lazy(1)) == dataclasses.fields(Envelope) and dataclasses.is_dataclass(lazy(1))


def test_writing_the_time_stores_the_float_without_a_parse() -> None:
    got = lazy(1)
    got.time = 5.5
    assert type(got) is Envelope and got.time == 5.5 and got == dataclasses.replace(sent(1), time=5.5)


def test_a_batchs_shared_time_is_parsed_once_after_its_first_record() -> None:
    batch = [dataclasses.replace(sent(n), time=START + 0.5) for n in range(5)]
    reader = decoder()
    reader.decode_structured("t", encode_structured(sent(0)))  # the second cached
    got = [reader.decode_structured("t", body) for body in encode_structured_many(batch)]
    assert [type(g) for g in got] == [TimeTextEnvelope] + [Envelope] * 4
    assert got == batch


@pytest.mark.parametrize("text", [
    "2025-12-05T02:25:40.25000xZ", "2025-12-05T02:25:40.250000z",
    "2025-12-05T02:25:40.\u0662\u0665\u0660\u0660\u0660\u0660Z", "2025-12-05T02:25:40.250000+",
    "2025-12-05T02:25:40.+25000Z",
    "2025-12-05T02:25:40.25_000Z", "2025-12-05T02:25:40. 25000Z", "2025-12-05T02:25:40.250000Z ",
    "2025-13-05T02:25:40.250000Z", "yesterday", ""])
def test_a_bad_time_in_the_cached_second_is_still_refused_at_decode(text: str) -> None:
    reader = decoder()
    assert reader.decode_structured("t", encode_structured(sent(0))) == sent(0)  # caches the second
    assert timestamps._parse_cache[0] == "2025-12-05T02:25:40."
    body = encode_structured(sent(1)).replace(format_time(sent(1).time).encode(), text.encode())
    assert text.encode() in body
    assert reader.decode_structured("t", body) is None  # the general path then names the bad time
