"""The host_lookback buffer: pruned by age, bounded by count and bytes (drops counted and reported), taken once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from forge_sparkplug.node.lookback import Lookback
from forge_sparkplug.settings import DEFAULT_LOOKBACK, EdgeNodeParams


def body(n: int) -> bytes:
    return f"data-{n:04d}".encode()  # 9 bytes each


def test_what_was_sent_before_the_window_is_pruned_and_take_gives_the_window_oldest_first() -> None:
    buffer = Lookback(window=10.0, max_messages=1000, max_bytes=1 << 20)
    for n in range(30):
        buffer.record(body(n), now=float(n))  # one a second, 0..29
    assert [b for _, b in buffer.items] == [body(n) for n in range(19, 30)], "older than 29 - 10 s: pruned"
    assert buffer.bytes == 11 * 9
    moved = buffer.take(now=35.0)  # the offline STATE seen 6 s after the last: the window is 25..35
    assert moved.bodies == [body(n) for n in range(25, 30)] and moved.dropped == 0
    assert len(buffer) == 0 and buffer.bytes == 0 and buffer.take(now=36.0).bodies == [], "taken once"


def test_the_bound_drops_the_oldest_counts_them_and_reports_them_when_the_window_reached_them() -> None:
    buffer = Lookback(window=100.0, max_messages=5, max_bytes=1 << 20)
    for n in range(8):
        buffer.record(body(n), now=float(n))
    assert [b for _, b in buffer.items] == [body(n) for n in range(3, 8)] and buffer.dropped == 3
    moved = buffer.take(now=8.0)
    assert moved.bodies == [body(n) for n in range(3, 8)]
    assert moved.dropped == 3, "the window reached back past what the bound dropped: reported"
    by_bytes = Lookback(window=100.0, max_messages=1000, max_bytes=4 * 9)
    for n in range(6):
        by_bytes.record(body(n), now=float(n))
    assert len(by_bytes) == 4 and by_bytes.bytes == 36 and by_bytes.dropped == 2
    narrow = Lookback(window=3.0, max_messages=2, max_bytes=1 << 20)
    for n in range(4):
        narrow.record(body(n), now=float(n))  # 0 pruned by age at 3.0 ... 1 dropped for the bound
    assert narrow.take(now=20.0).dropped == 0, "the drops were older than the window: it lost nothing"


def test_forget_removes_those_very_copies_and_window_0_keeps_nothing() -> None:
    buffer = Lookback(window=10.0, max_messages=100, max_bytes=1 << 20)
    bodies = [body(n) for n in range(4)]
    for n, b in enumerate(bodies):
        buffer.record(b, now=float(n))
    buffer.forget(bodies[2:])
    assert [b for _, b in buffer.items] == bodies[:2] and buffer.bytes == 18
    off = Lookback(window=0.0, max_messages=100, max_bytes=1 << 20)
    off.record(body(1), now=1.0)
    assert not off.enabled and len(off) == 0 and off.take(now=2.0).bodies == []


def test_the_window_in_force_follows_the_settings() -> None:
    base = {"group": "g", "node": "n"}
    assert EdgeNodeParams(**base).lookback_window == 0, "no primary host: no host to lose data to"
    assert EdgeNodeParams(**base, primary_host="h").lookback_window == DEFAULT_LOOKBACK
    assert EdgeNodeParams(**base, primary_host="h", host_keepalive=30).lookback_window == 90
    assert EdgeNodeParams(**base, primary_host="h", host_keepalive=30, host_lookback=5).lookback_window == 5
    assert EdgeNodeParams(**base, primary_host="h", host_lookback=0).lookback_window == 0
    assert EdgeNodeParams(**base, primary_host="h", store_and_forward=False).lookback_window == 0


def test_settings_refuse_a_negative_window_and_a_zero_bound_naming_the_field() -> None:
    for bad in (
        {"host_lookback": -1},
        {"host_keepalive": 0},
        {"host_lookback_max_messages": 0},
        {"host_lookback_max_bytes": 0},
    ):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            EdgeNodeParams(group="g", node="n", primary_host="h", **bad)
