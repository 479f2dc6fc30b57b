"""Industry 4.0 failover: factory stop -> DOWN verdict -> its orders reassigned, p50/p99 over N failures.

    .venv/bin/python benchmarks/bench_industry40_failover.py [--failures 50] [--check-every 1.0,0.5,0.25]
                                                             [--real 50] [--real-check-every S]
                                                             [--factories 1000]

The real plant (examples/industry40's manifest: four ``industry40.factory`` replicas, two
``sched.order_scheduler`` replicas on SQLite, two ``mms.factory_monitor`` replicas, customers posting
orders over the in-process REST app; chaos off) on the memory bus. Failures one after another: a
factory is told ``stop`` (no more beats) at a seeded random phase against its beat and the monitor's
check; once the monitor's ``forge.status`` DOWN for it is out, it is told ``recover`` and the next
factory (round robin, UP again by then) is stopped. Measured per failure:

* **DOWN after the last beat**: the ``forge.status`` DOWN minus the victim's last heartbeat. The limit
  printed beside it is the best a silence detector can do with the plant's rule (DOWN when silent
  for more than ``min(max_gap, missed_beats x interval)`` = 3 s): a timer set at last beat + 3 s,
  i.e. exactly 3.0 s. The leading monitor sets that timer (it judges silence at the instant a verdict
  falls due, ``FaultDetector.next_verdict``), so ``check_every`` (the risk and report period) no longer
  adds to it; before 5f04f36 it polled and added up to one period.
* **reassignment after the verdict**: the last ``sched.order_assigned`` that moved one of the
  victim's unfinished orders to another factory (or, for orders that found no room, the PMS's
  ``sched.status_report_result`` for the DOWN report) minus the DOWN. Limit beside it: the same
  database work done bare -- one SQLAlchemy transaction on an SQLite file of the same kind that
  moves the same number of orders (update the assignment, insert the new one), timed in this run.

Under virtual time (``TestPlant``) for each ``check_every`` given; the reassignment there is the
plant's own scheduling delay only (handlers take no virtual time). With ``--real N`` once more in
real time (``Runtime`` on a real clock, memory bus, SQLite file, REST/gRPC on ephemeral ports) at
the example's ``check_every``, where the reassignment includes the handlers' and SQLite's wall time.

**Cost of a shorter check_every** (``--factories N``): one ``mms.factory_monitor`` fed N factories'
beats under virtual time, then its ``check()`` (silence verdicts, risk per factory) and its beat
handler timed on the CPU clock: CPU per factory per second at each ``check_every``, beside what
receiving that factory's beats (1/s) costs in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from industry40.testing import derive

from forge_core import Envelope
from forge_core.runtime import Runtime, load_plant
from forge_core.testing import TestPlant

TIMEOUT = 3.0  # the plant's DOWN rule: min(max_gap 3 s, missed_beats 3 x 1 s interval)
DOWN_TARGET = 3.5
MOVE_TARGET = 0.100
FACTORIES = [f"factory-{n}" for n in range(1, 5)]
# customers: every factory holds a few orders, and the others have room to take them
BUSY = {"min_interval": 3.0, "max_interval": 6.0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Tracker:
    """Follows the plant's messages (TestPlant.observed or a Runtime tap): orders held per factory,
    each factory's last beat, DOWN verdicts, and what the PMS did after each verdict."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}  # orderId -> factory holding it
        self.last_beat: dict[str, float] = {}
        self.downs: dict[str, list[float]] = {}
        self.ups: dict[str, list[float]] = {}
        self.assigned: list[tuple[float, str, str]] = []  # (at, orderId, factory)
        self.revoked: list[tuple[float, str, str]] = []  # (at, orderId, factory it was taken from)
        self.results: list[tuple[float, dict[str, Any]]] = []

    def see(self, e: Envelope, at: float) -> None:
        t, p = e.type, e.payload
        if t == "mms.factory_heartbeat":
            self.last_beat[p.get("factoryId") or e.topic.split("/")[1]] = at
        elif t == "forge.status" and e.topic.startswith("forge/status/"):
            factory = e.topic.split("/")[-1]
            if p["status"] == "DOWN":
                self.downs.setdefault(factory, []).append(at)
            elif p["status"] == "UP":
                self.ups.setdefault(factory, []).append(at)
        elif t == "sched.order_assigned":
            self.held[p["orderId"]] = p["factoryId"]
            self.assigned.append((at, p["orderId"], p["factoryId"]))
        elif t in ("sched.order_revoked", "sched.order_completed"):
            if t == "sched.order_revoked":
                self.revoked.append((at, p["orderId"], p["factoryId"]))
            if self.held.get(p["orderId"]) == p["factoryId"]:
                del self.held[p["orderId"]]
        elif t == "sched.status_report_result":
            self.results.append((at, p))

    def holding(self, factory: str) -> set[str]:
        return {o for o, f in self.held.items() if f == factory}


def measure(track: Tracker, victim: str, orders: set[str], down: float) -> tuple[float, float | None, int]:
    """(DOWN after last beat, reassignment after DOWN or None without orders, orders given a new factory).

    Reassigned = every order the victim held was taken from it (``sched.order_revoked``: moved, or
    pending for lack of room elsewhere) and those placed at once are ``sched.order_assigned`` to
    another factory; the time is the last of these messages of the PMS's pass for the verdict. An
    order that waits pending for capacity and is placed by a later pass is not counted as part of
    the failover (it is the lack of room, not the failover, that delays it)."""
    after_beat = down - track.last_beat[victim]
    if not orders:
        return after_beat, None, 0
    revokes = [at for at, order, factory in track.revoked if order in orders and factory == victim and at >= down]
    if not revokes:
        return after_beat, None, 0
    last = max(revokes)
    moves = [at for at, order, factory in track.assigned
             if order in orders and factory != victim and down <= at <= last + 0.2]
    return after_beat, max([last, *moves]) - down, len(moves)


# -- virtual time -----------------------------------------------------------------------------------
def run_virtual(check_every: float, failures: int, seed: int, work: Path) -> dict[str, list[float]]:
    directory = derive(work / f"virtual-{check_every}", drop=("chaos",),
                       params={"clients": BUSY, "mms": {"check_every": check_every}})
    plant = TestPlant(directory, seed=seed).start()
    track = Tracker()
    seen = 0

    def sync() -> None:
        nonlocal seen
        for e in plant.observed[seen:]:
            track.see(e, e.time)
        seen = len(plant.observed)

    rnd = random.Random(seed)
    rows: dict[str, list[float]] = {"down": [], "move": [], "moved": [], "held": []}
    try:
        plant.advance(30)
        for i in range(failures):
            victim = FACTORIES[i % len(FACTORIES)]
            plant.advance(rnd.uniform(0.0, 1.0))  # the stop's phase against the beat and the check
            sync()
            orders = track.holding(victim)
            n_downs = len(track.downs.get(victim, []))
            plant.publish(f"factory/{victim}/mode", "industry40.factory_mode", {"factoryId": victim, "mode": "stop"})

            def is_down(victim: str = victim, n_downs: int = n_downs) -> bool:
                sync()
                return len(track.downs.get(victim, [])) > n_downs

            plant.run_until(is_down, timeout=10, step=0.05)
            plant.advance(1.0)  # the verdict's scheduling pass and its messages
            sync()
            after_beat, move, moved = measure(track, victim, orders, track.downs[victim][-1])
            rows["down"].append(after_beat)
            if move is not None:
                rows["move"].append(move)
                rows["moved"].append(moved)
                rows["held"].append(len(orders))
            plant.publish(f"factory/{victim}/mode", "industry40.factory_mode", {"factoryId": victim, "mode": "recover"})
        failed = [(c.name, c.detail) for c in plant.stop().checks if not c.passed]
        if failed:
            print(f"  WARNING: the run's checks failed: {failed}")
    finally:
        plant.stop()
    return rows


# -- real time ----------------------------------------------------------------------------------------
async def run_real(failures: int, seed: int, work: Path, check_every: float | None) -> dict[str, list[float]]:
    params: dict[str, dict[str, Any]] = {"clients": BUSY}
    if check_every is not None:
        params["mms"] = {"check_every": check_every}
    directory = derive(work / "real", drop=("chaos",), params=params)
    plugins, manifest = load_plant(directory, env={})
    track = Tracker()
    changed = asyncio.Event()

    async def tap(topic: str, message: Any) -> None:
        if type(message) is Envelope:
            track.see(message, time.time())
            if message.type == "forge.status":
                changed.set()

    runtime = Runtime(manifest, plugins, seed=seed, serve_health=False, tap=tap, data_dir=work / "real-data")
    await runtime.start()
    rnd = random.Random(seed)
    rows: dict[str, list[float]] = {"down": [], "move": [], "moved": [], "held": []}
    bus = runtime.bus
    assert bus is not None
    try:
        await asyncio.sleep(20)
        for i in range(failures):
            victim = FACTORIES[i % len(FACTORIES)]
            deadline = time.monotonic() + 15
            while victim not in track.ups or (track.downs.get(victim)
                                              and track.ups[victim][-1] < track.downs[victim][-1]):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{victim} never came back UP")
                await asyncio.sleep(0.1)  # UP again after the previous round's recover
            await asyncio.sleep(rnd.uniform(0.0, 1.0))
            orders = track.holding(victim)
            n_downs = len(track.downs.get(victim, []))
            await bus.publish(f"factory/{victim}/mode", "industry40.factory_mode",
                              {"factoryId": victim, "mode": "stop"}, source="bench")
            deadline = time.monotonic() + 15
            while len(track.downs.get(victim, [])) <= n_downs:
                changed.clear()
                if time.monotonic() > deadline:
                    raise SystemExit(f"no DOWN for {victim} within 15 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 1.0)
            await asyncio.sleep(0.5)  # the verdict's scheduling pass and its messages
            after_beat, move, moved = measure(track, victim, orders, track.downs[victim][-1])
            rows["down"].append(after_beat)
            if move is not None:
                rows["move"].append(move)
                rows["moved"].append(moved)
                rows["held"].append(len(orders))
            print(f"  real {i + 1:3d} {victim}: DOWN {after_beat:5.3f} s after the last beat, "
                  f"{moved} order(s) moved in {move * 1e3 if move is not None else float('nan'):6.1f} ms", flush=True)
            await bus.publish(f"factory/{victim}/mode", "industry40.factory_mode",
                              {"factoryId": victim, "mode": "recover"}, source="bench")
    finally:
        summary = await runtime.stop()
        failed = [(c.name, c.detail) for c in summary.checks if not c.passed]
        if failed:
            print(f"  WARNING: the run's checks failed: {failed}")
    return rows


# -- the bare database work (the reassignment's limit) -----------------------------------------------
def bare_move(path: Path, counts: list[float], rounds: int = 200) -> list[float]:
    """One SQLAlchemy transaction per move of k orders from one factory to others on an SQLite file,
    with the journal the plant's engine gives SQLite (WAL, synchronous=NORMAL: no fsync per commit),
    so the bare side is not handicapped by a rollback journal's fsyncs."""
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _journal(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    meta = sa.MetaData()
    orders = sa.Table("orders", meta, sa.Column("id", sa.String(64), primary_key=True),
                      sa.Column("status", sa.String(16), nullable=False))
    assign = sa.Table("factory_assignments", meta, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("order_id", sa.String(64), nullable=False),
                      sa.Column("factory_id", sa.String(64), nullable=False),
                      sa.Column("assigned_at", sa.Float, nullable=False),
                      sa.Column("released_at", sa.Float))
    meta.create_all(engine)
    k = max(1, round(statistics.median(counts))) if counts else 5  # the orders a failed factory held
    samples: list[float] = []
    with engine.begin() as conn:
        conn.execute(orders.insert(), [{"id": f"o{i}", "status": "assigned"} for i in range(k)])
        conn.execute(assign.insert(), [{"order_id": f"o{i}", "factory_id": "f0", "assigned_at": 0.0} for i in range(k)])
    for r in range(rounds):
        source, target = f"f{r}", f"f{r + 1}"
        t0 = time.perf_counter()
        with engine.begin() as conn:
            ids = [row.order_id for row in conn.execute(sa.select(assign.c.order_id).where(
                assign.c.factory_id == source, assign.c.released_at.is_(None)))]
            conn.execute(assign.update().where(assign.c.factory_id == source, assign.c.released_at.is_(None))
                         .values(released_at=time.time()))
            conn.execute(assign.insert(), [{"order_id": o, "factory_id": target, "assigned_at": time.time()}
                                           for o in ids])
            conn.execute(orders.update().where(orders.c.id.in_(ids)).values(status="assigned"))
        samples.append(time.perf_counter() - t0)
    engine.dispose()
    return samples


# -- the cost of checking more often -------------------------------------------------------------------
def check_cost(factories: int, seed: int, work: Path, periods: list[float]) -> None:
    # the PMS too, so the monitor's reports (a discovered factory is reported UP) are answered
    # beats not written (inline SQLite under virtual time would dominate the handler; a real clock offloads it)
    directory = derive(work / "cost", keep=("mms", "pms"), params={"mms": {"check_every": 3600.0,
                                                                            "record_beats": False}})
    plant = TestPlant(directory, seed=seed, record_trace=False).start()
    try:
        ids = [f"f{i}" for i in range(factories)]

        async def beats(second: int) -> None:
            for f in ids:
                await bus.publish(f"factory/{f}/heartbeat", "mms.factory_heartbeat", {
                    "factoryId": f, "timestamp": second, "metrics": {"cpu": 1, "memory": 2, "errors": 0}},
                    source="bench")

        bus = plant.runtime.bus
        for second in range(60):  # a minute of beats from every factory (risk needs >= 30 for its slope)
            plant._run(beats(second))  # on the plant's loop (TestPlant's runner)
            plant.advance(1.0)
        leader = next(plant.component(f"mms-{i}") for i in range(2) if plant.component(f"mms-{i}").leading)
        last = plant.sent("factory/+/heartbeat")[-factories:]

        async def timed(n: int) -> tuple[float, float]:
            t0 = time.process_time()
            for e in last:  # one more beat of every factory, straight into the handler
                if (rest := leader.on_beat(e)) is not None:  # a sync handler: a coroutine only for a flush or a change
                    await rest
            handled = time.process_time() - t0
            t0 = time.process_time()
            for _ in range(n):
                await leader.check()
            per_check = (time.process_time() - t0) / n
            now = plant.clock.time()
            t0 = time.process_time()
            for _ in range(n):
                leader.faults.evaluate(now)  # the silence verdicts alone (what check_every is for)
            return handled, per_check, (time.process_time() - t0) / n

        # one interval after the last beats (no gap, no status change: the handler's ordinary path)
        handled, per_check, per_verdicts = plant._run(timed(20))
    finally:
        plant.stop()
    per_beat = handled / factories
    print(f"cost of the checks, {factories} factories beating at 1 s, one replica's check() on the CPU clock "
          f"(silence verdicts + risk over each factory's window); uptime: {os.getloadavg()[0]:.1f}")
    print(f"  one check: {per_check * 1e3:.2f} ms = {per_check / factories * 1e6:.1f} us per factory; "
          f"of which the silence verdicts {per_verdicts / factories * 1e6:.2f} us (the rest: risk); the monitor's "
          f"handler for one beat: {per_beat * 1e6:.1f} us")
    print(f"  {'check_every':>11} {'CPU per factory':>16} {'x its beats':>12} {'% core / 1,000 factories':>25}")
    for period in periods:
        per_factory = per_check / factories / period  # s of CPU per s, per factory
        print(f"  {period:11.2f} {per_factory * 1e6:13.1f} us/s {per_factory / per_beat:12.2f} "
              f"{per_factory * 1000 * 100:24.2f}%")


def report(label: str, rows: dict[str, list[float]], bare: list[float]) -> None:
    down, move = rows["down"], rows["move"]
    moved, held = statistics.median(rows["moved"] or [0]), statistics.median(rows["held"] or [0])
    print(f"{label}: {len(down)} failures, {len(move)} with orders to move (median {held:g} held, {moved:g} placed "
          f"elsewhere at once)")
    print(f"  DOWN after the last beat   p50 {pct(down, .5):6.3f} s  p99 {pct(down, .99):6.3f} s  "
          f"max {max(down):6.3f} s"
          f"  | limit (timer at last beat + {TIMEOUT:g} s) {TIMEOUT:.3f} s: ratio p99 {pct(down, .99) / TIMEOUT:.2f}"
          f"  | target {DOWN_TARGET} s: {'met' if pct(down, .99) <= DOWN_TARGET else 'MISSED'}")
    if move:
        bare_p99 = pct(bare, .99)
        print(f"  reassigned after DOWN      p50 {pct(move, .5) * 1e3:6.1f} ms p99 {pct(move, .99) * 1e3:6.1f} ms"
              f"  | bare SQL move p50 {pct(bare, .5) * 1e3:.2f} ms p99 {bare_p99 * 1e3:.2f} ms: ratio p99 "
              f"{pct(move, .99) / bare_p99:.1f}  | target {MOVE_TARGET * 1e3:g} ms: "
              f"{'met' if pct(move, .99) <= MOVE_TARGET else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=50, help="failures per virtual-time run (0: skip)")
    parser.add_argument("--check-every", default="1.0,0.5,0.25", help="the monitor's check_every values (virtual)")
    parser.add_argument("--real", type=int, default=50, help="failures in the real-time run (0: skip)")
    parser.add_argument("--real-check-every", type=float, default=None,
                        help="the monitor's check_every in the real-time run (default: the example's)")
    parser.add_argument("--factories", type=int, default=1000, help="factories for the check cost (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    periods = [float(x) for x in args.check_every.split(",")]
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-i40-failover-") as tmp:
        work = Path(tmp)
        virtual = {p: run_virtual(p, args.failures, args.seed, work) for p in periods} if args.failures else {}
        real = asyncio.run(run_real(args.real, args.seed, work, args.real_check_every)) if args.real else None
        held = [m for rows in [*virtual.values(), *([real] if real else [])] for m in rows["held"]]
        bare = bare_move(work / "bare.db", held)
        for period, rows in virtual.items():
            report(f"virtual time, check_every {period:g} s (bound: the timeout, {TIMEOUT:g} s, at any period)",
                   rows, bare)
        if real is not None:
            which = f"{args.real_check_every:g} s" if args.real_check_every else "the example's"
            report(f"real time, memory bus, SQLite, check_every {which}", real, bare)
        if args.factories:
            check_cost(args.factories, args.seed, work, periods)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
