"""Failover benchmark: leader death -> the successor's first fenced command.

Run: .venv/bin/python benchmarks/bench_failover.py [--trials 40] [--redis-trials 8] [--no-redis]

Two electors campaign for one lease; the leader is killed (its task cancelled: no release) at a
seeded random instant, and we time until the successor's first command is accepted by a
FencedReceiver. Memory backend under VirtualClock (exact, deterministic), then a real
redis-server in real time (started here). Each figure is printed beside its bound
ttl + retry_every (the lease can outlive its last renewal by ttl; a follower polls every
retry_every). The seed's settings were a 5 s lease renewed every 3 s; its shadow's poll period
is taken as 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
from dataclasses import dataclass

from forge_core import Clock, RealClock, VirtualClock
from forge_core.tactics import FencedReceiver, LeaderElector, LeaseBackend, MemoryLeaseBackend


@dataclass(frozen=True)
class Settings:
    name: str
    ttl: float
    renew_every: float
    retry_every: float

    @property
    def bound(self) -> float:
        return self.ttl + self.retry_every


DEFAULTS = Settings("defaults", 1.0, 0.3, 0.2)
SEED = Settings("seed (5 s lease, 3 s renew)", 5.0, 3.0, 1.0)


async def one_trial(backend: LeaseBackend, clock: Clock, s: Settings, name: str, kill_after: float) -> float:
    receiver = FencedReceiver()
    first_command: dict[str, float] = {}

    def make(holder: str) -> LeaderElector:
        def elected(epoch: int) -> None:
            if receiver.accept(epoch, name) and holder == "shadow":
                first_command.setdefault("t", clock.monotonic())

        return LeaderElector(backend, name, holder, clock, ttl=s.ttl, renew_every=s.renew_every,
                             retry_every=s.retry_every, on_elected=elected)  # fmt: skip

    active, shadow = make("active"), make("shadow")
    ta = asyncio.ensure_future(active.run())
    while not active.is_leader:
        await clock.sleep(0.01)
    ts = asyncio.ensure_future(shadow.run())
    await clock.sleep(kill_after)
    assert active.is_leader, "active lost its lease before the kill"
    killed = clock.monotonic()
    ta.cancel()
    while "t" not in first_command:
        await clock.sleep(0.005)
    ts.cancel()
    await asyncio.gather(ta, ts, return_exceptions=True)
    await shadow.release()
    return first_command["t"] - killed


def report(label: str, s: Settings, figures: list[float]) -> None:
    mean, worst = statistics.fmean(figures), max(figures)
    print(
        f"{label:10} {s.name:30} n={len(figures):3d}  mean {mean:6.3f} s  max {worst:6.3f} s  "
        f"bound {s.bound:5.2f} s  max/bound {worst / s.bound:5.2f}"
    )


def bench_memory(trials: int, seed: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for s in (DEFAULTS, SEED):
        rng = random.Random(seed)
        figures = []
        for i in range(trials):
            clock = VirtualClock()
            try:
                kill_after = rng.uniform(0.5, 3 * s.ttl)
                figures.append(clock.run(one_trial(MemoryLeaseBackend(), clock, s, f"m{i}", kill_after)))
            finally:
                clock.close()
        out[s.name] = figures
        report("memory", s, figures)
    return out


def bench_redis(trials: int, seed: int) -> dict[str, list[float]]:
    from forge_core.tactics import RedisLeaseBackend
    from forge_core.testing import RedisServer

    out: dict[str, list[float]] = {}
    with RedisServer() as server:
        for s in (DEFAULTS, SEED):
            rng = random.Random(seed)
            n = trials if s is DEFAULTS else max(2, trials // 3)

            async def run_all(s: Settings = s, n: int = n, rng: random.Random = rng) -> list[float]:
                backend = RedisLeaseBackend(server.url)
                clock = RealClock()
                try:
                    return [
                        await one_trial(backend, clock, s, f"r{i}", rng.uniform(0.5, 1.5 * s.ttl)) for i in range(n)
                    ]
                finally:
                    await backend.aclose()

            figures = asyncio.run(run_all())
            out[s.name] = figures
            report("redis", s, figures)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--redis-trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    print("time from leader death to the successor's first fenced command")
    mem = bench_memory(args.trials, args.seed)
    red = {} if args.no_redis else bench_redis(args.redis_trials, args.seed)
    worst = max(mem[DEFAULTS.name] + red.get(DEFAULTS.name, []))
    print(f"target: defaults < 1.5 s -> worst {worst:.3f} s: {'MET' if worst < 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
