"""TimeText: a reading's timestamp text equals forge_core.format_time's, whatever the time."""

from __future__ import annotations

import random

from sensor_monitoring.timetext import TimeText

from forge_core import format_time


def test_the_text_is_format_times_for_random_and_sorted_times():
    rng = random.Random(17)
    times = sorted(1.7e9 + rng.random() * 86400 * 800 for _ in range(20_000))
    times += [1.7e9 + i * 0.1 for i in range(20_000)]  # the same second many times in a row
    text = TimeText()
    assert [text(t) for t in times] == [format_time(t) for t in times]


def test_microseconds_round_half_to_even_and_carry_into_the_next_second():
    text = TimeText()
    for second in (0, 1, 59, 86_399, 1_767_225_599, 1_800_000_000):  # a minute's, a day's, a year's last second
        for frac in (0.0, 0.0000005, 0.0000015, 0.4999995, 0.5, 0.9999994999, 0.9999995, 0.9999999999):
            t = second + frac
            assert text(t) == format_time(t), t
    assert text(1_767_225_599.9999999) == "2026-01-01T00:00:00.000000Z", "carried into the next year"


def test_times_going_back_and_before_1970():
    text = TimeText()
    for t in (1_800_000_000.25, 1_700_000_000.75, 1_800_000_000.5, 12.0, -0.25, -86_400.0000004):
        assert text(t) == format_time(t), t
