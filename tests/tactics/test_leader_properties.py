"""Property tests of election and fencing under virtual time, with random faults."""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forge_core.clock import VirtualClock
from forge_core.tactics.leader import FencedReceiver, LeaderElector, MemoryLeaseBackend

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class StallableBackend(MemoryLeaseBackend):
    """Memory backend where a 'paused' node's calls hang until its pause ends."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.paused_until: dict[str, float] = {}

    async def _stall(self, holder: str) -> None:
        until = self.paused_until.get(holder, 0.0)
        if until > self.clock.monotonic():
            await asyncio.sleep(until - self.clock.monotonic())

    async def try_acquire(self, name, holder, ttl, now):
        await self._stall(holder)
        return await super().try_acquire(name, holder, ttl, self.clock.time())

    async def renew(self, name, holder, epoch, ttl, now):
        await self._stall(holder)
        return await super().renew(name, holder, epoch, ttl, self.clock.time())


class FreezableClock:
    """A node's view of the shared virtual clock: while frozen its sleeps do not end (a GC or
    SIGSTOP pause), so its elector and worker both wake late, possibly believing they lead."""

    def __init__(self, clock: VirtualClock, cluster: Cluster, name: str) -> None:
        self._clock, self._cluster, self._name = clock, cluster, name

    def time(self) -> float:
        return self._clock.time()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def call_later(self, delay, callback, *args):
        return self._clock.call_later(delay, callback, *args)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        until = self._cluster.backend.paused_until.get(self._name, 0.0)
        while until > self._clock.monotonic():
            await asyncio.sleep(until - self._clock.monotonic())
            until = self._cluster.backend.paused_until.get(self._name, 0.0)


class Node:
    """An elector plus a worker that sends fenced commands while it believes it leads."""

    def __init__(self, name: str, cluster: Cluster) -> None:
        self.name = name
        self.cluster = cluster
        self.clock = FreezableClock(cluster.clock, cluster, name)
        self.elector = LeaderElector(
            cluster.backend, "sched", name, self.clock,
            on_elected=lambda e: cluster.elections.append((cluster.clock.monotonic(), name, e)),
        )  # fmt: skip
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self.elector.run()), asyncio.ensure_future(self.work())]

    def kill(self) -> None:
        for t in self.tasks:
            t.cancel()
        self.tasks = []

    async def work(self) -> None:
        c = self.cluster
        while True:
            if self.elector.is_leader:
                epoch = self.elector.fence()
                c.acts.append((c.clock.monotonic(), self.name, epoch))
                # The command travels with a random delay: stale commands can arrive late.
                delay = c.rng.uniform(0.0, 1.5)
                c.clock.call_later(delay, c.deliver, self.name, epoch)
            await self.clock.sleep(0.05)


class Cluster:
    def __init__(self, clock: VirtualClock, n: int, seed: int) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.backend = StallableBackend(clock)
        self.receiver = FencedReceiver()
        self.elections: list[tuple[float, str, int]] = []
        self.acts: list[tuple[float, str, int]] = []
        self.applied: list[int] = []
        self.max_leaders = 0
        self.nodes = [Node(f"n{i}", self) for i in range(n)]

    def deliver(self, name: str, epoch: int) -> None:
        if self.receiver.accept(epoch, "sched"):
            self.applied.append(epoch)

    async def watch(self) -> None:
        while True:
            self.max_leaders = max(self.max_leaders, sum(n.elector.is_leader for n in self.nodes))
            await asyncio.sleep(0.01)


faults = st.lists(
    st.tuples(
        st.floats(0.1, 3.0),  # wait before the fault
        st.sampled_from(["kill", "pause", "restart"]),
        st.integers(0, 3),  # node
        st.floats(0.1, 3.0),  # pause length
    ),
    max_size=8,
)


@SETTINGS
@given(n=st.integers(2, 4), schedule=faults, seed=st.integers(0, 2**16))
def test_no_two_holders_share_an_epoch_and_epochs_rise(n: int, schedule, seed: int) -> None:
    clock = VirtualClock()
    cluster = Cluster(clock, n, seed)

    async def main() -> None:
        watcher = asyncio.ensure_future(cluster.watch())
        for node in cluster.nodes:
            node.start()
        for wait, kind, idx, length in schedule:
            await asyncio.sleep(wait)
            node = cluster.nodes[idx % n]
            if kind == "kill":
                node.kill()
            elif kind == "restart":
                node.kill()
                node.start()
            else:
                cluster.backend.paused_until[node.name] = clock.monotonic() + length
        await asyncio.sleep(3.0)
        for node in cluster.nodes:
            node.kill()
        watcher.cancel()
        await asyncio.sleep(2.0)  # let in-flight commands land

    try:
        clock.run(main())
    finally:
        clock.close()

    # (a) one holder per epoch, in elections and in acts; epochs never go down over time.
    holders: dict[int, set[str]] = {}
    for _, who, epoch in cluster.elections + cluster.acts:
        holders.setdefault(epoch, set()).add(who)
    assert all(len(h) == 1 for h in holders.values()), holders
    epochs_in_time = [e for _, _, e in sorted(cluster.acts)]
    assert epochs_in_time == sorted(epochs_in_time)
    assert cluster.max_leaders <= 1
    # (b) the fenced receiver never applied a command older than one it had applied.
    assert cluster.applied == sorted(cluster.applied)
    assert cluster.receiver.accepted == len(cluster.applied)


@SETTINGS
@given(
    ttl=st.floats(0.5, 5.0),
    renew_frac=st.floats(0.1, 0.8),
    retry_every=st.floats(0.05, 1.0),
    followers=st.integers(1, 3),
    run_for=st.floats(0.0, 10.0),
)
def test_successor_elected_within_ttl_plus_retry(ttl, renew_frac, retry_every, followers, run_for) -> None:
    # (c) kill the leader without release: a successor is elected within ttl + retry_every.
    clock = VirtualClock()
    backend = MemoryLeaseBackend()
    elected: list[tuple[float, str]] = []

    def make(name: str) -> LeaderElector:
        return LeaderElector(
            backend, "sched", name, clock, ttl=ttl, renew_every=renew_frac * ttl * 0.9,
            retry_every=retry_every, on_elected=lambda e: elected.append((clock.monotonic(), name)),
        )  # fmt: skip

    leader = make("leader")
    others = [make(f"f{i}") for i in range(followers)]

    async def main() -> float:
        lt = asyncio.ensure_future(leader.run())
        await asyncio.sleep(0.001)
        tasks = [asyncio.ensure_future(o.run()) for o in others]
        await asyncio.sleep(run_for)
        assert leader.is_leader
        killed = clock.monotonic()
        lt.cancel()
        await asyncio.sleep(ttl + retry_every + 1.0)
        for t in tasks:
            t.cancel()
        await asyncio.sleep(0.01)
        return killed

    try:
        killed = clock.run(main())
    finally:
        clock.close()
    successors = [t for t, who in elected if who != "leader"]
    assert successors, "nobody took over"
    assert successors[0] - killed <= ttl + retry_every + 1e-6
