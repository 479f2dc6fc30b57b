"""The microsecond digits of a time stamp from two table lookups: the same text as before
(``str(us + 1_000_000)[1:]``) and as ``datetime``'s, on the hot path and in the encoder."""

from __future__ import annotations

import orjson

from forge_core.messages import envelope as envelope_module
from forge_core.messages.envelope import Envelope, datetime_time_text
from forge_core.transport.encoder import encode_structured
from forge_core.transport.timestamps import DIGITS3, fast_format_time


def test_two_lookups_write_every_microsecond_as_zero_padded_six_digits() -> None:
    assert all(DIGITS3[us // 1000] + DIGITS3[us % 1000] == str(us + 1_000_000)[1:] for us in range(1_000_000))


def test_fast_format_time_and_the_encoder_write_format_times_text() -> None:
    second = 1_795_324_167.0
    fast_format_time(second)  # format_time keeps this second: the next ones (and the encoder's) take the lookups
    assert envelope_module._second_text[0] == second
    for us in [*range(0, 1_000_000, 997), 999_999, 1, 10, 100, 1000, 10_000, 100_000]:
        epoch = second + us / 1e6
        assert fast_format_time(epoch) == datetime_time_text(epoch), us
        event = orjson.loads(encode_structured(Envelope("a.b", {}, "m1", "i", epoch, None, 1)))
        assert event["time"] == datetime_time_text(epoch), us
