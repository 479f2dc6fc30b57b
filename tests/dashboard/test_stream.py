"""SSE pushes: one snapshot per interval shared by every page, newest-wins for a slow page,
streams end when the dashboard closes."""

from __future__ import annotations

import asyncio

from forge_core.dashboard.stream import Broadcaster


def test_one_snapshot_per_interval_for_all_pages_and_close_ends_them():
    built = []

    def snapshot():
        built.append(len(built))
        return {"n": len(built)}

    async def scenario():
        b = Broadcaster(snapshot, interval=0.05)
        pages = [b.stream(), b.stream(), b.stream()]
        firsts = [await anext(p) for p in pages]  # the retry line
        frames = [await anext(p) for p in pages]
        assert all(f.startswith(b"event: state\ndata: ") for f in frames)
        await asyncio.sleep(0.2)
        b.close()
        rest = [[f async for f in p] for p in pages]
        return firsts, b.pushes, rest

    firsts, pushes, rest = asyncio.run(scenario())
    assert firsts == [b"retry: 2000\n\n"] * 3
    # three pages, yet snapshots are built per push (plus one per late-joining page), not per page per push
    assert len(built) <= pushes + 2
    assert all(len(r) <= 1 for r in rest)  # a page that did not read holds one frame at most: the newest


def test_no_snapshot_while_no_page_is_open():
    built = []
    b = Broadcaster(lambda: built.append(1) or {}, interval=0.01)

    async def idle():
        await asyncio.sleep(0.1)

    asyncio.run(idle())
    assert built == [] and b.pages == 0


def test_a_failing_snapshot_is_a_frame_saying_so():
    def broken():
        raise KeyError("machines")

    frame = Broadcaster(broken, interval=1).frame()
    assert b"snapshot failed: KeyError" in frame
