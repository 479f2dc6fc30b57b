"""OEE over a day of 1 s samples for 100 machines: Forge's oee_line.oee beside plain SQL + Python, same rows.

A PostgreSQL database (a throwaway cluster, as the distributed profile stores there) migrated to
oee_line's head gets, per machine, a simulated day (forge_opcua's machine model, seeded): its state
changes in ``events`` and its cumulative GoodCount and TotalCount sampled every second in ``telemetry``
(2 x 86,400 rows per machine, loaded with COPY). Then, alternately, ``--rounds`` times:

(a) Forge: ``oee_line.components.oee.compute_window`` for the day (per machine: ideal cycle time, the
    states and the merged counters from ``TimeSeriesStore``, then ``machine_window``: OEE and the six big
    losses) and ``combine`` for the line;
(b) baseline: what a developer writes without Forge, with psycopg and plain Python (no numpy): one
    query for every machine's states, one for every machine's counters ordered by machine and time;
    run time from the state intervals, parts from the counter increments (a drop is a restart), the
    same A, P, Q and OEE;
(c) baseline: the same, with the counters' increments summed by PostgreSQL (``lag`` per machine and
    counter, each an index range read in time order), as Forge's side reduces them in SQL too
    (``oee_line.storage.window``) -- it does less than Forge (no merge of the counters by time, no
    losses), so it is the floor.

All must give the same figures (checked); the ratios are baseline time / Forge time, the headline one
against the faster baseline.

    python benchmarks/bench_oee_day.py [--machines 100] [--hours 24] [--rounds 3] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from pathlib import Path

import psycopg
from forge_opcua import MachineTiming
from forge_opcua.simulator.model import Machine
from oee_line.components.oee import compute_window
from oee_line.oee import ShiftWindow, combine
from oee_line.settings import OeeParams

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.testing import PostgresServer

MIGRATIONS = Path(__file__).resolve().parents[1] / "examples" / "oee_line" / "src" / "oee_line" / "migrations"
START = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def load(dsn: str, machines: int, seconds: int, seed: int) -> int:
    """Simulate and COPY the rows; returns the number of telemetry rows."""
    rng = random.Random(seed)
    rows = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE telemetry, events")
        for i in range(machines):
            mid = f"M{i:03d}"
            m = Machine(mid, MachineTiming(), 1.0 + (i % 5) * 0.5, random.Random(rng.getrandbits(64)), START)
            states = [(START, m.state, 0)]
            tele = io.StringIO()
            tele.write(f"{mid}\tIdealCycleTime\t{START}\t{m.ideal_cycle_time}\tgood\n")
            for s in range(1, seconds + 1):
                t = START + s
                state = m.state
                m.advance(t)
                if m.state != state:
                    states.append((m.state_since, m.state, m.fault_code))
                tele.write(f"{mid}\tGoodCount\t{t}\t{m.good}\tgood\n{mid}\tTotalCount\t{t}\t{m.total}\tgood\n")
                rows += 2
            with conn.cursor() as cur:
                with cur.copy("COPY telemetry (machine_id, metric, time, value, quality) FROM STDIN") as copy:
                    copy.write(tele.getvalue())
                ev = io.StringIO()
                for (ts, state, fault), nxt in zip(states, [*states[1:], None], strict=True):
                    end = "\\N" if nxt is None else nxt[0]
                    ev.write(f"{mid}\t{state}\t{ts}\t{end}\t\\N\t{{\"fault_code\": {fault}}}\n")
                with cur.copy("COPY events (machine_id, event_type, ts_start, ts_end, duration, payload) "
                              "FROM STDIN") as copy:
                    copy.write(ev.getvalue())
        conn.execute("ANALYZE telemetry")
        conn.execute("ANALYZE events")
    return rows


def forge(engine, machines: list[str], start: float, end: float) -> dict[str, tuple[int, int, float]]:
    from oee_line.storage.store import TimeSeriesStore

    params = OeeParams(machines=machines)
    windows = compute_window(TimeSeriesStore(engine), params, ShiftWindow("day", int(start // 86_400), start, end))
    out = {m: (w.figures.total, w.figures.good, w.figures.oee) for m, w in windows.items()}
    out["line"] = (0, 0, combine(w.figures for w in windows.values()).oee)
    return out


def plain(dsn: str, start: float, end: float, default_cycle: float = 30.0) -> dict[str, tuple[int, int, float]]:
    """The same figures with psycopg and plain Python."""
    with psycopg.connect(dsn) as conn:
        cycles = dict(conn.execute("SELECT DISTINCT ON (machine_id) machine_id, value FROM telemetry "
                                   "WHERE metric = 'IdealCycleTime' ORDER BY machine_id, time DESC").fetchall())
        states: dict[str, list[tuple[float, str]]] = {}
        for mid, ts, kind in conn.execute("SELECT machine_id, ts_start, event_type FROM events "
                                          "WHERE ts_start < %s ORDER BY machine_id, ts_start", (end,)):
            states.setdefault(mid, []).append((ts, kind))
        counts: dict[str, list[int]] = {}
        last: dict[str, list[float]] = {}
        cur = conn.cursor(name="counters")  # server-side: rows stream in, not all at once
        cur.itersize = 20_000
        cur.execute("SELECT machine_id, time, metric, value FROM telemetry WHERE metric IN ('GoodCount', 'TotalCount') "
                    "AND time < %s ORDER BY machine_id, time, metric", (end,))
        for mid, ts, metric, value in cur:
            c = counts.setdefault(mid, [0, 0])  # good, total
            prev = last.setdefault(mid, [-1.0, -1.0, -1.0])  # good, total, seen
            i = 0 if metric == "GoodCount" else 1
            if prev[i] >= 0 and ts >= start:
                c[i] += int(value) if value < prev[i] else int(value - prev[i])
            prev[i] = value
    return _figures(states, counts, cycles, start, end, default_cycle)


def plain_sql(dsn: str, start: float, end: float, default_cycle: float = 30.0) -> dict[str, tuple[int, int, float]]:
    """The same figures with the counters summed by PostgreSQL (lag per counter, a drop is a restart): the
    best a developer without Forge does, as Forge's side now reduces in SQL too."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET jit = off")  # as Forge's statement: compiling cost more than it saved
        cycles = dict(conn.execute("SELECT DISTINCT ON (machine_id) machine_id, value FROM telemetry "
                                   "WHERE metric = 'IdealCycleTime' ORDER BY machine_id, time DESC").fetchall())
        states: dict[str, list[tuple[float, str]]] = {}
        for mid, ts, kind in conn.execute("SELECT machine_id, ts_start, event_type FROM events "
                                          "WHERE ts_start < %s ORDER BY machine_id, ts_start", (end,)):
            states.setdefault(mid, []).append((ts, kind))
        counts: dict[str, list[int]] = {}
        # per machine and counter (LATERAL): an index range read in time order, so lag() needs no sort; one
        # window over all machines (PARTITION BY machine_id, metric) sorted every row first and took 1.3x
        # Forge's time, which does this per machine too
        for mid, metric, parts in conn.execute(
                "SELECT m.id, c.metric, x.parts FROM unnest(%s::text[]) AS m(id) "
                "CROSS JOIN (VALUES ('GoodCount'), ('TotalCount')) AS c(metric) "
                "CROSS JOIN LATERAL (SELECT sum(CASE WHEN value < prev THEN value ELSE value - prev END) AS parts "
                "FROM (SELECT time, value, lag(value) OVER (ORDER BY time) AS prev FROM telemetry "
                "WHERE machine_id = m.id AND metric = c.metric AND time < %s) s "
                "WHERE prev IS NOT NULL AND time >= %s) x", (sorted(states), end, start)):
            counts.setdefault(mid, [0, 0])[0 if metric == "GoodCount" else 1] = int(parts or 0)
    return _figures(states, counts, cycles, start, end, default_cycle)


def _figures(states: dict[str, list[tuple[float, str]]], counts: dict[str, list[int]], cycles: dict[str, float],
             start: float, end: float, default_cycle: float) -> dict[str, tuple[int, int, float]]:
    out: dict[str, tuple[int, int, float]] = {}
    planned_all = productive_all = 0.0
    for mid, spans in states.items():
        run = 0.0
        first = max(start, spans[0][0])
        for (t0, kind), (t1, _) in zip(spans, [*spans[1:], (end, "")], strict=True):
            if kind == "running":
                run += max(0.0, min(t1, end) - max(t0, start))
        good, total = counts.get(mid, [0, 0])
        planned = end - first
        productive = cycles.get(mid, default_cycle) * good
        out[mid] = (total, good, productive / planned if planned > 0 else 0.0)
        planned_all += planned
        productive_all += productive
    out["line"] = (0, 0, productive_all / planned_all if planned_all else 0.0)
    return out


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url", help="a PostgreSQL SQLAlchemy URL (default: a throwaway cluster)")
    args = ap.parse_args()
    server = None
    url = args.url
    if url is None:
        server = PostgresServer().start()
        url = server.url
    try:
        engine = create_engine_from_url(url)
        registry = MigrationRegistry(include_core=False)
        registry.add("oee_line", MIGRATIONS, plugin="forge-example-oee-line")
        upgrade(engine, registry)
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        seconds = int(args.hours * 3600)
        t0 = time.perf_counter()
        rows = load(dsn, args.machines, seconds, args.seed)
        print(f"loaded {rows:,} telemetry rows ({args.machines} machines x {seconds:,} s x 2 counters) in "
              f"{time.perf_counter() - t0:.1f} s; load {loadavg()}")
        machines = [f"M{i:03d}" for i in range(args.machines)]
        end = START + seconds
        f_times, p_times, s_times = [], [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            got = forge(engine, machines, START, end)
            f_times.append(time.perf_counter() - t)
            for name, fn, times in (("plain", plain, p_times), ("plain_sql", plain_sql, s_times)):
                t = time.perf_counter()
                want = fn(dsn, START, end)
                times.append(time.perf_counter() - t)
                bad = [m for m in want if got[m][:2] != want[m][:2] or abs(got[m][2] - want[m][2]) > 1e-9]
                if bad:
                    raise SystemExit(f"figures differ for {bad[:5]}: forge {[got[m] for m in bad[:3]]}, "
                                     f"{name} {[want[m] for m in bad[:3]]}")
            print(f"round {r + 1}: forge {f_times[-1]:.2f} s, plain SQL+Python {p_times[-1]:.2f} s, counters "
                  f"summed in SQL {s_times[-1]:.2f} s, line OEE {got['line'][2]:.4f} (equal); load {loadavg()}")
        fm, pm, sm = statistics.median(f_times), statistics.median(p_times), statistics.median(s_times)
        print(f"OEE of a {args.hours:g} h day, {args.machines} machines, 1 s samples: forge {min(f_times):.2f}-"
              f"{max(f_times):.2f} s (median {fm:.2f}), plain {min(p_times):.2f}-{max(p_times):.2f} s (median "
              f"{pm:.2f}), counters summed in SQL {min(s_times):.2f}-{max(s_times):.2f} s (median {sm:.2f}); "
              f"plain/forge = {pm / fm:.2f}, summed-in-SQL/forge = {sm / fm:.2f}, best baseline/forge = "
              f"{min(pm, sm) / fm:.2f}; load {loadavg()}")
        engine.dispose()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
