"""The trace's time field: TraceRecorder.record writes ``round(time, 6)`` by three float operations when
that is provably the same double, near a half by the exact product (Veltkamp's split) from 2**20 to 2**31,
``round`` itself otherwise; every line (so every digest) must be the one ``round`` gives."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from forge_core.bus import TraceRecorder
from forge_core.bus.stats import _TRACE_OPTIONS
from forge_core.messages.envelope import Envelope


def _times(seed: int) -> list[float]:
    rnd = random.Random(seed)
    times = [0.0, -0.0, -1.5, 1e-7, 5e-7, 4.9999999e-7, 0.0078125, 2.2e9, 2.2e9 - 1e-3, 3e9, 1e300,
             float("inf"), -float("inf"), 1_704_067_200.0, 1_704_067_200.0000005]
    for _ in range(20_000):
        times.append(1_704_067_200.0 + rnd.random() * 86_400 * 365)  # virtual and real time stamps
        times.append(rnd.random() * 10 ** rnd.uniform(-8, 9.4))
        times.append(rnd.randrange(0, 2**40) / 2 ** rnd.randrange(0, 30))  # exact binary fractions
        half = (rnd.randrange(0, 2_200_000_000_000_000) + 0.5) / 1e6  # next to a tie at the 7th digit
        times += [half + u * math.ulp(half) for u in range(-3, 4)]
    return times


def _near_halves(seed: int) -> list[float]:
    """Times where the float product is too close to a half for the fast test: the split's range and its edges."""
    rnd = random.Random(seed)
    times = [2.0**20, math.nextafter(2.0**20, 0.0), 2.0**31, math.nextafter(2.0**31, 0.0), 2.0**20 + 1 / 128,
             2.0**31 - 1 / 128, 2.0**19 + 3 / 128]
    for _ in range(20_000):
        half = (rnd.randrange(2**20 * 10**6, 2**31 * 10**6) + 0.5) / 1e6
        times += [half + u * math.ulp(half) for u in range(-3, 4)]
        times.append(rnd.randrange(2**20, 2**31) + rnd.randrange(128) / 128)  # exact ties at the 7th digit
    return times


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_time_near_a_half_is_rounded_as_round_does(seed: int) -> None:
    recorder = TraceRecorder()
    for time in _near_halves(seed):
        recorder.record("topic", Envelope("t.x", {}, "src", "id", time, None))
        assert recorder._lines[-1] == orjson.dumps([round(time, 6), "topic", "t.x", "src", "id", None, {}],
                                                   option=_TRACE_OPTIONS), repr(time)
        recorder._lines.clear()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_line_holds_round_time_6(seed: int) -> None:
    times = _times(seed)
    recorder = TraceRecorder()
    expected: list[bytes] = []
    for i, time in enumerate(times):
        envelope = Envelope("t.x", {"i": i}, "src", f"id-{i}", time, None)
        recorder.record("topic", envelope)
        expected.append(orjson.dumps([round(time, 6), "topic", "t.x", "src", f"id-{i}", None, {"i": i}],
                                     option=_TRACE_OPTIONS))
        if recorder._lines:  # (emptied into the hash every 256 lines: the digest below compares those)
            assert recorder._lines[-1] == expected[-1], repr(time)
    reference = TraceRecorder()
    reference._hash.update(b"".join(expected))
    assert recorder.digest == reference._hash.hexdigest()


def test_a_nan_time_is_written_as_round_writes_it() -> None:
    recorder = TraceRecorder()
    recorder.record("topic", Envelope("t.x", {}, "src", "id-1", float("nan"), None))
    assert recorder._lines[-1] == orjson.dumps([round(float("nan"), 6), "topic", "t.x", "src", "id-1", None, {}],
                                               option=_TRACE_OPTIONS)


class _Key(str):
    pass


def test_a_line_is_the_same_whatever_its_keys() -> None:
    # str keys take orjson's str-key path, others (ints, a str subclass, nested) the option that writes them:
    # every line is what _TRACE_OPTIONS writes, sorted alike
    payloads = [{"b": 1, "a": {"é": [1.5, None], "Z": "x"}}, {2: "two", 1: "one"}, {_Key("k"): 1, "j": 2},
                {"outer": {3: {"x": 1}}}, {"list": [{"b": 1, "a": 2}, {True: 1}]}, {}]
    recorder = TraceRecorder()
    for i, payload in enumerate(payloads):
        recorder.record("topic", Envelope("t.x", payload, "src", f"id-{i}", 1.25, "k"))
        assert recorder._lines[-1] == orjson.dumps([1.25, "topic", "t.x", "src", f"id-{i}", "k", payload],
                                                   option=_TRACE_OPTIONS), payload
