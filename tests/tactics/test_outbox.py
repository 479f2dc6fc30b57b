from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forge_core.tactics.outbox import Outbox, OutboxFull


def test_commits_wait_for_the_disk_except_under_a_virtual_clock(tmp_path: Path) -> None:
    from forge_core import VirtualClock

    with Outbox(tmp_path / "real.db") as real:
        assert real._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    clock = VirtualClock()
    try:
        with Outbox(tmp_path / "virtual.db", clock=clock) as simulated:
            assert simulated._db.execute("PRAGMA synchronous").fetchone() == (0,)  # OFF
    finally:
        clock.loop.close()


def test_put_peek_ack_and_sizes(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        s1 = box.put("plant/m1/beat", b"abc", {"k": "v"})
        s2 = box.put("plant/m1/beat", b"defg")
        assert s2 > s1 and box.depth == 2 and box.queued == 2
        msgs = box.peek(10)
        assert [m.body for m in msgs] == [b"abc", b"defg"] and msgs[0].headers == {"k": "v"}
        expected = len("plant/m1/beat") * 2 + 3 + 4 + len('{"k":"v"}') + len("{}")
        assert box.bytes == expected
        assert box.ack(s1) and not box.ack(s1)
        assert box.depth == 1


def test_replay_in_order_stops_at_first_failure(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        for i in range(10):
            box.put("t", str(i).encode())
        sent: list[bytes] = []

        async def flaky_send(topic: str, body: bytes, headers: dict) -> None:
            if body == b"4":
                raise ConnectionError("broker gone")
            sent.append(body)

        assert asyncio.run(box.replay(flaky_send)) == 4
        assert sent == [b"0", b"1", b"2", b"3"] and box.depth == 6
        assert [m.body for m in box.peek(1)] == [b"4"]

        async def send(topic: str, body: bytes, headers: dict) -> None:
            sent.append(body)

        assert asyncio.run(box.replay(send, batch=3)) == 6
        assert sent == [str(i).encode() for i in range(10)] and box.depth == 0 and box.replayed == 10


def test_full_raises_with_sizes_and_watermark(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_bytes=100, high_watermark=0.5) as box:
        box.put("t", b"x" * 40)
        assert not box.above_high_watermark
        box.put("t", b"x" * 20)
        assert box.above_high_watermark
        with pytest.raises(OutboxFull, match=r"cannot queue 42 bytes for 't': 66 of 100 bytes used by 2 messages"):
            box.put("t", b"x" * 39)
        assert box.depth == 2


def test_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        seqs = [box.put("t", bytes([i])) for i in range(5)]
        box.ack(seqs[0])
    with Outbox(path) as box:
        assert box.depth == 4 and box.bytes == 4 * (1 + 1 + 2)  # topic + body + '{}'
        assert [m.seq for m in box.peek(10)] == seqs[1:]
        assert box.put("t", b"z") > seqs[-1], "sequence numbers never go back"


WRITER = textwrap.dedent(
    """
    import sys
    from forge_core.tactics.outbox import Outbox
    box = Outbox(sys.argv[1])
    i = 0
    while True:
        seq = box.put("plant/line", b"m%d" % i * 50, {"i": i})
        print(seq, i, flush=True)
        i += 1
    """
)


def test_nothing_acknowledged_is_lost_when_sigkilled(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged: list[tuple[int, int]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seq, i = map(int, line.split())
        acknowledged.append((seq, i))
        if len(acknowledged) >= 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Outbox(path) as box:
        stored = box.peek(1_000_000)
    stored_by_seq = {m.seq: m.headers["i"] for m in stored}
    for seq, i in acknowledged:
        assert stored_by_seq.get(seq) == i, f"acknowledged message {seq} lost"
    seqs = [m.seq for m in stored]
    assert seqs == sorted(seqs) and [m.headers["i"] for m in stored] == list(range(len(stored)))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.binary(max_size=20)),
        st.tuples(st.just("replay"), st.integers(0, 5)),  # deliver n, then the broker fails
        st.tuples(st.just("crash"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_property_nothing_lost_order_kept_across_crashes(tmp_path_factory, ops) -> None:
    path = tmp_path_factory.mktemp("ob") / "o.db"
    box = Outbox(path)
    put: list[bytes] = []
    delivered: list[bytes] = []
    try:
        for kind, arg in ops:
            if kind == "put":
                box.put("t", arg)
                put.append(arg)
            elif kind == "crash":
                box.close()
                box = Outbox(path)
            else:
                budget = [arg]

                async def send(topic: str, body: bytes, headers: dict, budget=budget) -> None:
                    if budget[0] <= 0:
                        raise ConnectionError("down")
                    budget[0] -= 1
                    delivered.append(body)

                asyncio.run(box.replay(send))
        remaining = [m.body for m in box.peek(10_000)]
    finally:
        box.close()
    assert delivered + remaining == put


def test_ack_many_removes_the_given_messages_in_one_transaction(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    seqs = [box.put("t", f"m{k}".encode()) for k in range(5)]
    assert box.ack_many([seqs[0], seqs[1], seqs[3], 999]) == 3, "999 was never queued"
    assert [m.body for m in box.peek()] == [b"m2", b"m4"]
    assert box.depth == 2 and box.bytes == 2 * (len("t") + 2 + len("{}"))
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [m.body for m in again.peek()] == [b"m2", b"m4"], "the removal was committed"
    again.close()
