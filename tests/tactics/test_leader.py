"""Leader election, fencing and handover on the memory backend under virtual time."""

from __future__ import annotations

import asyncio

import pytest

from forge_core.clock import VirtualClock
from forge_core.tactics.leader import (
    FencedReceiver,
    LeaderElector,
    MemoryLeaseBackend,
    MemoryStateStore,
    NotLeader,
    StaleEpoch,
)


class Recorder:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.events: list[tuple[float, str, str, int]] = []

    def elector(self, backend, holder: str, **kw) -> LeaderElector:
        return LeaderElector(
            backend, "sched", holder, self.clock,
            on_elected=lambda e: self.events.append((self.clock.monotonic(), "elected", holder, e)),
            on_deposed=lambda e: self.events.append((self.clock.monotonic(), "deposed", holder, e)),
            **kw,
        )  # fmt: skip


def test_single_elector_wins_and_keeps_lease(vclock: VirtualClock) -> None:
    rec = Recorder(vclock)
    el = rec.elector(MemoryLeaseBackend(), "a")

    async def main() -> None:
        task = asyncio.ensure_future(el.run())
        await asyncio.sleep(30.0)
        assert el.is_leader and el.epoch == 1 and el.fence() == 1
        task.cancel()

    vclock.run(main())
    assert [e[1] for e in rec.events] == ["elected"]
    assert not el.is_leader, "a cancelled (crashed) elector stops acting"


def test_killed_leader_is_replaced_within_ttl_plus_retry(vclock: VirtualClock) -> None:
    rec = Recorder(vclock)
    backend = MemoryLeaseBackend()
    a, b = rec.elector(backend, "a"), rec.elector(backend, "b")

    async def main() -> float:
        ta = asyncio.ensure_future(a.run())
        await asyncio.sleep(0.01)
        tb = asyncio.ensure_future(b.run())
        await asyncio.sleep(5.0)
        assert a.is_leader and not b.is_leader
        killed = vclock.monotonic()
        ta.cancel()
        await asyncio.sleep(3.0)
        tb.cancel()
        return killed

    killed = vclock.run(main())
    elected_b = [t for t, kind, who, _ in rec.events if kind == "elected" and who == "b"]
    assert elected_b and elected_b[0] - killed <= 1.0 + 0.2 + 1e-6
    assert b.epoch == 2


def test_release_hands_over_at_once(vclock: VirtualClock) -> None:
    rec = Recorder(vclock)
    backend = MemoryLeaseBackend()
    a, b = rec.elector(backend, "a"), rec.elector(backend, "b")

    async def main() -> float:
        ta = asyncio.ensure_future(a.run())
        await asyncio.sleep(0.01)
        tb = asyncio.ensure_future(b.run())
        await asyncio.sleep(2.0)
        released = vclock.monotonic()
        await a.release()
        await asyncio.sleep(1.0)
        tb.cancel()
        ta.cancel()
        return released

    released = vclock.run(main())
    elected_b = next(t for t, kind, who, _ in rec.events if kind == "elected" and who == "b")
    assert elected_b - released <= 0.2 + 1e-6
    assert ("deposed", "a") in [(k, w) for _, k, w, _ in rec.events]
    with pytest.raises(NotLeader, match="'a' does not hold lease 'sched'"):
        a.fence()


class HangingBackend(MemoryLeaseBackend):
    """Calls from ``stalled`` hang for ``hang`` seconds (a network stall or a long GC pause)."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = 0.0
        self.stalled = "a"

    async def renew(self, name, holder, *args, **kw):
        if self.hang and holder == self.stalled:
            await asyncio.sleep(self.hang)
        return await super().renew(name, holder, *args, **kw)

    async def try_acquire(self, name, holder, *args, **kw):
        if self.hang and holder == self.stalled:
            await asyncio.sleep(self.hang)
        return await super().try_acquire(name, holder, *args, **kw)


def test_leader_deposes_itself_before_lease_can_be_taken(vclock: VirtualClock) -> None:
    rec = Recorder(vclock)
    backend = HangingBackend()
    a, b = rec.elector(backend, "a"), rec.elector(backend, "b")

    async def main() -> None:
        ta = asyncio.ensure_future(a.run())
        await asyncio.sleep(0.01)
        tb = asyncio.ensure_future(b.run())
        await asyncio.sleep(2.0)
        backend.hang = 10.0
        await asyncio.sleep(3.0)
        tb.cancel()
        ta.cancel()

    vclock.run(main())
    deposed_a = next(t for t, k, w, _ in rec.events if k == "deposed" and w == "a")
    elected_b = next(t for t, k, w, _ in rec.events if k == "elected" and w == "b")
    assert deposed_a < elected_b
    assert elected_b - deposed_a >= a.safety_margin - 1e-9
    assert b.epoch == 2


def test_settings_checked() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"renew_every .* below ttl - safety_margin"):
        LeaderElector(MemoryLeaseBackend(), "x", "a", clock, ttl=1.0, renew_every=0.95)
    clock.close()


def test_fenced_receiver_drops_stale_epochs() -> None:
    rx = FencedReceiver()
    assert rx.accept(1) and rx.accept(2) and rx.accept(2)
    assert not rx.accept(1)
    assert rx.accept(1, lease="other")
    assert rx.rejected == 1 and rx.accepted == 4


def test_memory_backend_contract() -> None:
    async def main() -> None:
        b = MemoryLeaseBackend()
        la = await b.try_acquire("l", "a", 1.0, now=0.0)
        assert la is not None and la.epoch == 1
        assert await b.try_acquire("l", "b", 1.0, now=0.5) is None
        assert (await b.try_acquire("l", "a", 1.0, now=0.5)).epoch == 1  # idempotent re-acquire
        assert await b.renew("l", "a", 2, 1.0, now=0.6) is None  # wrong epoch
        assert (await b.renew("l", "a", 1, 1.0, now=0.6)).expires_at == 1.6
        assert await b.renew("l", "a", 1, 1.0, now=1.6) is None  # expired
        lb = await b.try_acquire("l", "b", 1.0, now=1.7)
        assert lb is not None and lb.epoch == 2
        await b.release("l", "a", 1)  # not the holder: no effect
        assert (await b.current("l", now=1.8)).holder == "b"
        await b.release("l", "b", 2)
        assert await b.current("l", now=1.8) is None
        assert (await b.try_acquire("l", "a", 1.0, now=1.9)).epoch == 3

    asyncio.run(main())


def test_handover_through_fenced_state_store(vclock: VirtualClock) -> None:
    backend, store = MemoryLeaseBackend(), MemoryStateStore()
    loaded: dict[str, object] = {}

    def make(holder: str) -> LeaderElector:
        async def elected(epoch: int) -> None:
            loaded[holder] = await store.load("plan")
            await store.save("plan", {"owner": holder, "jobs": [1, 2, 3]}, epoch=epoch)

        return LeaderElector(backend, "sched", holder, vclock, on_elected=elected)

    a, b = make("a"), make("b")

    async def main() -> None:
        ta = asyncio.ensure_future(a.run())
        await asyncio.sleep(0.01)
        tb = asyncio.ensure_future(b.run())
        await asyncio.sleep(1.0)
        ta.cancel()
        await asyncio.sleep(2.0)
        tb.cancel()
        with pytest.raises(StaleEpoch, match="epoch 1 refused, epoch 2 already wrote it"):
            await store.save("plan", {"owner": "a"}, epoch=1)

    vclock.run(main())
    assert loaded == {"a": None, "b": {"owner": "a", "jobs": [1, 2, 3]}}


def test_valid_until_time_is_when_the_term_ends_not_when_it_was_noticed(vclock: VirtualClock) -> None:
    """A term's true end is its validity's end: a crashed (or starved) elector's term ended then,
    however late anyone asks. Terms in a scheduler's report are cut there."""
    el = LeaderElector(MemoryLeaseBackend(), "sched", "a", vclock, ttl=5.0, renew_every=3.0, retry_every=1.0)

    started = vclock.time()

    async def main() -> tuple[float, float, float]:
        task = asyncio.ensure_future(el.run())
        await asyncio.sleep(0.5)
        assert el.is_leader
        while_leading = el.valid_until_time - vclock.time()
        await asyncio.sleep(3.0)  # renewed at 3.0 s: validity moves on
        crashed_at = vclock.time()
        task.cancel()
        await asyncio.sleep(20.0)
        return while_leading, crashed_at, el.valid_until_time

    while_leading, crashed_at, ended = vclock.run(main())
    assert while_leading == pytest.approx(5.0 - 0.5 - 0.5)  # elected at 0: ttl - margin - 0.5 s since
    assert crashed_at < ended <= crashed_at + 5.0 - 0.5 < vclock.time() - 15.0
    assert ended - started == pytest.approx(3.0 + 5.0 - 0.5)  # the last renewal (at 3 s) + ttl - margin


def test_memory_state_store_keeps_a_json_copy_as_the_sql_store_would() -> None:
    store = MemoryStateStore()
    value = {"jobs": [1, 2], "by_machine": {1: "A"}}

    async def main() -> None:
        await store.save("plan", value, epoch=1)
        value["jobs"].append(3)  # the caller's later change is not the stored state
        assert await store.load("plan") == {"jobs": [1, 2], "by_machine": {"1": "A"}}
        loaded = await store.load("plan")
        loaded["jobs"].clear()  # nor is a loader's change
        assert (await store.load("plan"))["jobs"] == [1, 2]
        with pytest.raises(TypeError):
            await store.save("plan", {"jobs": {1, 2}}, epoch=2)  # what JSON cannot hold is refused
        assert await store.epoch_of("plan") == 1
        with pytest.raises(StaleEpoch):
            await store.save("plan", {}, epoch=0)

    asyncio.run(main())


def test_memory_backend_calls_run_without_a_timeout(vclock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory backend answers at once: campaigns and renewals set no timeout timer; a subclass
    (which may wait, as HangingBackend does) gets its timeout back."""
    from forge_core.tactics.leader import elector as elector_module

    timeouts: list[float] = []
    real_timeout = asyncio.timeout

    def counting_timeout(delay: float | None):
        timeouts.append(delay or 0.0)
        return real_timeout(delay)

    monkeypatch.setattr(elector_module.asyncio, "timeout", counting_timeout)
    rec = Recorder(vclock)
    backend = MemoryLeaseBackend()
    a, b = rec.elector(backend, "a"), rec.elector(backend, "b")

    async def main(*electors: LeaderElector) -> None:
        tasks = [asyncio.ensure_future(e.run()) for e in electors]
        await asyncio.sleep(5.0)
        for task in tasks:
            task.cancel()

    vclock.run(main(a, b))
    assert a.is_leader or b.is_leader or rec.events  # someone was elected and renewed meanwhile
    assert [k for _, k, _, _ in rec.events].count("elected") == 1
    assert timeouts == []
    vclock.run(main(rec.elector(HangingBackend(), "c")))
    assert timeouts  # the subclass's calls are bounded again
