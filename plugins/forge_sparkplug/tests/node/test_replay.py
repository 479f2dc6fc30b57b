"""store_window: the primary host's last moments go to the outbox ahead of what it held, unproven copies once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from forge_core.tactics import Outbox

from forge_sparkplug.node.lookback import Lookback
from forge_sparkplug.node.replay import store_window


class Link:
    def __init__(self, pending: list[bytes]) -> None:
        self.pending = pending

    def take(self) -> list[bytes]:
        pending, self.pending = self.pending, []
        return pending


def node(tmp_path: Path, lookback: Lookback, unproven: list[bytes], now: float) -> Any:
    return SimpleNamespace(
        name="edge",
        lookback=lookback,
        link=Link(unproven),
        outbox=Outbox(tmp_path / "outbox.db"),
        params=SimpleNamespace(group="g", node="n"),
        ctx=SimpleNamespace(clock=SimpleNamespace(time=lambda: now)),
        stats={"lookback_stored": 0, "unproven_stored": 0, "lookback_refused": 0},
    )


def test_the_window_goes_ahead_of_what_the_outbox_held_and_unproven_copies_are_stored_once(tmp_path: Path) -> None:
    lookback = Lookback(window=10.0, max_messages=100, max_bytes=1 << 20)
    sent = [f"live-{n}".encode() for n in range(6)]
    for n, body in enumerate(sent):
        lookback.record(body, now=float(n))
    n = node(tmp_path, lookback, unproven=sent[4:], now=8.0)  # 4 and 5 not proven yet
    store_window(n)
    assert [m.body for m in n.outbox.peek(100)] == sent, "the window once each, oldest first"
    assert n.stats == {"lookback_stored": 4, "unproven_stored": 2, "lookback_refused": 0}
    n.outbox.close()


def test_what_the_outbox_held_is_requeued_behind_the_window(tmp_path: Path) -> None:
    lookback = Lookback(window=10.0, max_messages=100, max_bytes=1 << 20)
    for k in range(3):
        lookback.record(f"old-{k}".encode(), now=float(k))
    n = node(tmp_path, lookback, unproven=[], now=5.0)
    for k in range(250):  # stored later (a lost broker connection): newer than the window, more than one batch
        n.outbox.put("g/n", f"new-{k}".encode())
    store_window(n)
    bodies = [m.body for m in n.outbox.peek(1000)]
    assert bodies == [f"old-{k}".encode() for k in range(3)] + [f"new-{k}".encode() for k in range(250)]
    assert n.outbox.depth == 253
    n.outbox.close()
