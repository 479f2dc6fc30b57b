"""store_window: the primary host's last moments go to the outbox ahead of what it held, unproven copies once;
replay_stored: the outbox sent in order, historical, removed a page at a time only once written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from forge_core.tactics import Outbox

from forge_sparkplug.codec.payload import decode
from forge_sparkplug.node.lookback import Lookback
from forge_sparkplug.node.replay import PAGE, replay_stored, store_window


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


# -- replay_stored: a page at a time, one wait, one delete transaction ------------------------------------------
class Client:
    """The paho bridge's surface replay_stored uses: publish (handed to paho), publish_written (waits), probe."""

    def __init__(self, refuse_at: int | None = None, written: bool = True) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.refuse_at, self.written, self.waits = refuse_at, written, 0

    def publish(self, topic: str, body: bytes) -> int | None:
        if self.refuse_at is not None and len(self.sent) >= self.refuse_at:
            return None  # the connection went: paho refuses
        self.sent.append((topic, body))
        return len(self.sent)

    async def publish_written(self, topic: str, body: bytes) -> bool:
        self.waits += 1
        return self.publish(topic, body) is not None and self.written

    async def probe(self, timeout: float = 5.0) -> bool:
        return True


def replaying(tmp_path: Path, client: Client, rows: int) -> Any:
    from forge_sparkplug.node.metrics import MetricTable
    from forge_sparkplug.node.session import Seq
    from forge_sparkplug.settings import DeviceSpec, MetricSpec

    table = MetricTable(
        [], {"M1": DeviceSpec(metrics=[MetricSpec(name="Good", datatype="UInt32")])}, aliases=True, now_ms=0
    )
    outbox = Outbox(tmp_path / "replay.db")
    for k in range(rows):
        outbox.put("g/n", json.dumps({"d": "M1", "m": [["Good", k, 1000 + k]]}).encode())
    return SimpleNamespace(
        outbox=outbox,
        client=client,
        table=table,
        seq=Seq(),
        in_session=True,
        confirmed=True,
        topic="spBv1.0/g/{verb}/n",
        params=SimpleNamespace(link_proof=0.0),
        broker=SimpleNamespace(keepalive=5),
        lookback=Lookback(window=0.0, max_messages=10, max_bytes=1 << 20),
        ctx=SimpleNamespace(clock=SimpleNamespace(time=lambda: 5.0)),
        stats={"replayed": 0},
    )


def test_replay_sends_every_row_in_order_as_historical_and_empties_the_outbox_page_by_page(tmp_path: Path) -> None:
    rows = PAGE + 120  # two pages
    client = Client()
    n = replaying(tmp_path, client, rows)
    asyncio.run(replay_stored(n))
    got = [decode(body, datatype_of=n.table.datatype_of()) for _, body in client.sent]
    assert [p.metrics[0].value for p in got] == list(range(rows)), "every row once, in order"
    assert all(p.metrics[0].is_historical for p in got)
    assert [p.seq for p in got] == [k % 256 for k in range(rows)], "seq counts on, wrapping"
    assert {topic for topic, _ in client.sent} == {"spBv1.0/g/DDATA/n/M1"}
    assert client.waits == 2, "one wait for paho's socket per page, not per row"
    assert n.outbox.depth == 0 and n.stats["replayed"] == rows
    n.outbox.close()


def test_a_page_not_all_written_stays_stored_whole(tmp_path: Path) -> None:
    for client in (Client(refuse_at=7), Client(written=False)):  # refused mid-page; the last never written
        n = replaying(tmp_path / str(id(client)), client, 20)
        asyncio.run(replay_stored(n))
        assert n.outbox.depth == 20, "nothing removed: the next session sends the page again (historical)"
        assert [json.loads(m.body)["m"][0][1] for m in n.outbox.peek(100)] == list(range(20))
        assert n.stats["replayed"] == 0
        n.outbox.close()
