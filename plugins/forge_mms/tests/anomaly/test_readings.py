"""What the schema lets through but the rules cannot judge is refused, naming the field."""

from __future__ import annotations

import math

import pytest

from forge_mms.anomaly import MalformedReading, parse_reading
from forge_mms.settings import DEFAULT_KINDS

GOOD = {"sensor_id": "temp-1", "kind": "temperature", "location": "line-1", "seq": 42, "value": 71.3, "unit": "C",
        "timestamp": "2026-12-02T14:00:00.123Z", "anomaly": "spike"}


def test_a_reading():
    r = parse_reading(GOOD, DEFAULT_KINDS)
    assert (r.sensor_id, r.kind, r.seq, r.value, r.unit, r.anomaly) == ("temp-1", "temperature", 42, 71.3, "C", "spike")
    assert math.isclose(r.ts, 1796220000.123)
    assert parse_reading({**GOOD, "timestamp": "2026-12-02T14:00:00.123"}, DEFAULT_KINDS).ts == r.ts, "naive is UTC"


def test_a_parsed_reading_is_the_frozen_dataclass_its_fields_make():
    """parse_reading fills a Reading by its slots (on a _Filling), not its frozen __init__: the same object, field
    for field (every field of the dataclass: a field added to Reading and not filled by parse_reading is an unset
    slot, and asdict fails here), equal, hashed alike, frozen, copied and replaced alike."""
    import copy
    import dataclasses
    import pickle

    from forge_mms.anomaly.readings import Reading

    built = parse_reading(GOOD, DEFAULT_KINDS)
    values = dataclasses.asdict(built)
    made = Reading(**values)
    assert type(built) is Reading and built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert [f.name for f in dataclasses.fields(Reading)] == list(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.value = 1.0  # type: ignore[misc]
    assert dataclasses.replace(built, seq=7) == Reading(**{**values, "seq": 7})
    assert pickle.loads(pickle.dumps(built)) == made and copy.deepcopy(built) == made
    r = parse_reading(GOOD, DEFAULT_KINDS)
    assert r == Reading("temp-1", "temperature", "line-1", 42, 71.3, "C", r.ts, GOOD["timestamp"], "spike")


@pytest.mark.parametrize(("change", "pointer", "says"), [
    ({"value": math.nan}, "/value", "not a finite number"), ({"value": math.inf}, "/value", "not a finite number"),
    ({"value": True}, "/value", "not a finite number"), ({"kind": "pressure"}, "/kind", "unknown kind 'pressure'"),
    ({"unit": "F"}, "/unit", "'F' is not the unit of temperature"), ({"seq": 0}, "/seq", "not a positive integer"),
    ({"timestamp": "noon"}, "/timestamp", "not an RFC 3339 time"), ({"seq": None}, "/seq", "not a positive")])
def test_malformed(change, pointer, says):
    with pytest.raises(MalformedReading, match=says) as caught:
        parse_reading({**GOOD, **change}, DEFAULT_KINDS)
    assert caught.value.pointer == pointer


def test_missing_field():
    with pytest.raises(MalformedReading) as caught:
        parse_reading({k: v for k, v in GOOD.items() if k != "value"}, DEFAULT_KINDS)
    assert caught.value.pointer == "/value"


def _by_datetime(text):
    from datetime import UTC, datetime

    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def test_parse_timestamp_by_a_cached_second_equals_datetimes():
    import random

    from forge_core import format_time

    from forge_mms.anomaly.readings import parse_timestamp

    rng = random.Random(3)
    times = [1.7e9 + rng.random() * 86400 * 400 for _ in range(5_000)] + [1.7e9 + i * 0.1 for i in range(5_000)]
    texts = [format_time(t) for t in times] * 2  # the 0.1 s steps: ten to a second, nine by the kept second
    texts += ["1969-12-31T23:59:59.999999Z", "2026-12-02T14:00:00.000000Z", "2026-12-02T14:00:00.999999Z"] * 2
    assert [parse_timestamp(t) for t in texts] == [_by_datetime(t) for t in texts]


def test_parse_timestamp_of_other_shapes_and_bad_digits():
    from forge_mms.anomaly.readings import parse_timestamp

    parse_timestamp("2026-12-02T14:00:00.500000Z")  # its second and its minute cached
    for text in ["2026-12-02T14:00:00.5Z", "2026-12-02T14:00:00.500000+01:00", "2026-12-02 14:00:00.250000Z",
                 "2026-12-02T14:00:00.123456", "2026-12-02T14:00:00Z", "2026-12-02T14:00:59.000001Z",
                 "2026-12-02T14:00:07.000000Z"]:
        assert parse_timestamp(text) == _by_datetime(text), text
    for bad in ["2026-12-02T14:00:00.12345xZ", "2026-12-02T14:00:00.١٢٣٤٥٦Z", "2026-12-02T14:00:00.-12345Z",
                "2026-12-02T14:00:60.000000Z", "2026-12-02T14:00:6x.000000Z", "2026-12-02T14:00:١٢.000000Z",
                "2026-12-02T14:00:+1.000000Z", "2026-12-02T14:00:01.12345xZ"]:
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_parse_reading_times_as_parse_timestamp_through_its_inline_fast_path():
    """parse_reading reads a timestamp of the second parsed last itself (parse_timestamp's fast path, inline):
    the same float, and the same refusals, cached second or not."""
    import random

    from forge_core import format_time

    from forge_mms.anomaly.readings import parse_timestamp

    rng = random.Random(5)
    times = sorted(1.7e9 + rng.random() * 600 for _ in range(2_000))
    texts = [format_time(t) for t in times] + ["2026-12-02T14:00:00.5Z", "2026-12-02T14:00:00.500000+01:00",
                                               "2026-12-02T14:00:00.123456", "2026-12-02T14:00:00.500001Z"]
    assert [parse_reading({**GOOD, "timestamp": t}, DEFAULT_KINDS).ts for t in texts] == [
        parse_timestamp(t) for t in texts] == [_by_datetime(t) for t in texts]
    for bad in ["2026-12-02T14:00:00.12345xZ", "2026-12-02T14:00:00.١٢٣٤٥٦Z", "2026-12-02T14:00:00.-12345Z",
                "2026-12-02T14:00:00.+12345Z", "2026-12-02T14:00:60.000000Z", "2026-12-02T14:00:00.500000ZZ"]:
        parse_reading({**GOOD, "timestamp": "2026-12-02T14:00:00.500000Z"}, DEFAULT_KINDS)  # its second cached
        with pytest.raises(MalformedReading, match="not an RFC 3339 time") as caught:
            parse_reading({**GOOD, "timestamp": bad}, DEFAULT_KINDS)
        assert caught.value.pointer == "/timestamp"
