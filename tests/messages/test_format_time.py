"""``format_time`` keeps its second's text: the same text as ``datetime`` for every input, in any order."""

from __future__ import annotations

import math
import random
import struct

import pytest

from forge_core.messages import envelope
from forge_core.messages.envelope import datetime_time_text, format_time


def _next_up(value: float) -> float:
    return math.nextafter(value, math.inf)


def _next_down(value: float) -> float:
    return math.nextafter(value, -math.inf)


def _edges() -> list[float]:
    """Second boundaries and half-microsecond ties, a few ulps either side, today and far away."""
    times: list[float] = [0.0, -0.0, 1e-7, 4.9e-7, 5e-7, 5.1e-7, 0.9999995, 0.99999949, 0.9999996]
    for second in (1.0, 59.0, 86_399.0, 951_782_399.0, 1_795_324_167.0, 4_102_444_799.0, 253_402_300_798.0):
        for offset in (0.0, 1e-6, 5e-7, 1.5e-6, 0.5, 0.9999994, 0.9999995, 0.9999996, 0.999999, 0.9999999):
            value = second + offset
            times += [value, _next_up(value), _next_down(value), _next_up(_next_up(value)),
                      _next_down(_next_down(value))]
    return times


def test_every_edge_in_order_and_shuffled_gives_datetimes_text() -> None:
    times = _edges()
    for value in [*times, *random.Random(7).sample(times, len(times))]:
        assert format_time(value) == datetime_time_text(value), repr(value)


def test_every_microsecond_of_a_kept_second_and_its_ties() -> None:
    second = 1_795_324_167.0
    format_time(second)
    assert envelope._second_text[0] == second
    for micro in range(0, 1_000_000, 7):
        for value in (second + micro / 1e6, second + (micro + 0.5) / 1e6):
            assert format_time(value) == datetime_time_text(value), repr(value)


def test_random_times_including_runs_of_one_second() -> None:
    rng = random.Random(11)
    for _ in range(20_000):
        base = rng.uniform(0, 4_102_444_800)
        for value in (base, base + rng.random() * 1e-3, float(int(base)) + rng.random()):
            assert format_time(value) == datetime_time_text(value), repr(value)


def test_random_doubles_bit_for_bit() -> None:
    rng = random.Random(3)
    checked = 0
    while checked < 20_000:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        try:
            expected = datetime_time_text(value)
        except (ValueError, OverflowError, OSError) as exc:
            with pytest.raises(type(exc)):
                format_time(value)
            continue
        assert format_time(value) == expected, repr(value)
        checked += 1


def test_before_1970_is_datetimes_and_not_kept() -> None:
    format_time(1_795_324_167.25)
    kept = envelope._second_text
    for value in (-0.5, -1e-7, -1.0, -1.0000005, -86_400.9999995, -2_208_988_800.123456, -62_135_596_800.0):
        assert format_time(value) == datetime_time_text(value), repr(value)
    assert envelope._second_text == kept


def test_far_dates_and_what_datetime_refuses() -> None:
    for value in (253_402_300_799.0, 253_402_300_799.5, _next_down(253_402_300_800.0)):  # 9999's last second
        assert format_time(value) == datetime_time_text(value), repr(value)
    for value in (253_402_300_800.0, 1e20, math.inf, -math.inf, math.nan):
        with pytest.raises((ValueError, OverflowError)) as raised:
            format_time(value)
        with pytest.raises(raised.type):
            datetime_time_text(value)


def test_a_rounding_carry_keeps_the_next_seconds_text() -> None:
    value = 1_795_324_167.9999997  # rounds to ...:28.000000
    assert format_time(value) == datetime_time_text(value) == datetime_time_text(1_795_324_168.0)
    assert envelope._second_text[0] == 1_795_324_168.0
    assert format_time(1_795_324_168.25) == datetime_time_text(1_795_324_168.25)


def test_integers_and_the_envelopes_text() -> None:
    assert format_time(1_795_324_167) == datetime_time_text(1_795_324_167)
    env = envelope.Envelope("a.b", {}, time=1_795_324_167.125)
    assert env.time_iso == "2026-11-22T05:09:27.125000Z" == env.to_dict()["time"]
