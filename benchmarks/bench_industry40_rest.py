"""Industry 4.0 REST: ``POST /orders`` throughput and p50/p95/p99 at steady rates, Forge vs a bare Starlette app.

    .venv/bin/python benchmarks/bench_industry40_rest.py [--db sqlite,postgres] [--rates 100,333] [--seconds 15]
                                                         [--clients 2] [--connections 16] [--max-seconds 10]

Three servers, each its own process, each one uvicorn on 127.0.0.1 with the runtime's settings
(``log_level=warning, access_log=False, lifespan=off``, h11, asyncio loop):

* **forge**: the example's PMS (``examples/industry40`` manifest trimmed to ``pms``: two
  ``sched.order_scheduler`` replicas, the leader's REST mounted on ``ctx.http``), on the embedded
  profile's SQLite file or on PostgreSQL (``forge_core.testing.PostgresServer``), migrated by the plant.
  Per request: media type, Idempotency-Key and body checks, pydantic validation, one transaction
  (SERIALIZABLE on PostgreSQL) that advances the writer's fence, looks the key up, inserts the order,
  reads every factory's load, assigns the order (order row, assignment row), writes two outbox
  messages and the stored answer; then the outbox is relayed onto the bus (``sched.order_created``,
  ``sched.order_assigned``) and marked published.
* **raw**: a bare Starlette app on the same uvicorn settings doing the same database work in one
  transaction as plain SQL on the pooled connection's DBAPI cursor (as the PMS's own hot path does:
  SQLAlchemy Core's execution path cost more than SQLite running the statement, and with it this side
  was slower than Forge on SQLite, 1,244 against 1,346 req/s: not the best a bare app can do), on the same kind
  of database, the same tables, indexes and triggers (created by the same migration: the raw side gets
  a database the plant migrated first) and on SQLite the same pragmas as Forge's engines (WAL,
  ``synchronous=NORMAL``: no fsync a commit; foreign keys on): key look-up, insert, the same load
  read (the held counts the migration keeps, or the count of held orders on an older schema),
  assignment, stored answer; pydantic validation of the same model shape. It has no fence, no outbox
  and no bus (what Forge adds for failover and messages).
* **floor**: the same Starlette app answering 201 without touching a database: the ceiling of
  these clients, uvicorn and the machine (what no server above can beat here).

Two clients, neither of them the limit (the floor row shows how far above the servers they reach):

1. **steady rates** (``--rates``, open loop): ``--clients`` processes, each sending its share of the
   rate, interleaved, on keep-alive connections it opens as needed (up to ``--connections``), with a
   minimal HTTP/1.1 client on asyncio's protocol API (httpx, used before, cost ~1.8 ms of client
   CPU a request and collapsed past 8 connections; the floor row at 333 req/s shows this one's reach).
   A request's latency counts from when it was due, so a server that falls behind is charged for
   the queue (no coordinated omission); what is not answered ``--drain`` s after the last request
   was due counts as infinitely late. wrk cannot hold a rate (wrk2, which can, is not in Debian),
   hence this client for p50/p95/p99.
2. **max throughput**: ``wrk -t1 -c<connections>`` (Debian's wrk, C) for ``--max-seconds`` with
   ``bench_industry40_rest.lua`` beside this file: a valid body and a unique Idempotency-Key per
   request.

The server's CPU time a request over each phase is printed too (/proc: moved less by the other load
on the machine than the rates; on PostgreSQL the database's own processes are not in it), and how
many orders each run stored. None completes here, so held orders pile up; ``--held N`` starts each
database with N held orders besides. Each placement reads every factory's held count: since
migration sched_0003 the database keeps it (``sched_factory_held``, triggers on ``orders``), so that
read no longer grows with the table; on a schema without that table (a worktree of older code) both
servers count the held orders, as the PMS did then.

Every order carries a unique Idempotency-Key; the factories have room for every order, so each is
assigned. Ratios: Forge / raw throughput, raw / Forge server CPU a request (1.0 = as cheap as the bare
app doing the same database work), Forge / floor.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when run as a script
from bench_industry40_rest_apps import prepare_sqlite_schema, seed_held, serve_forge, serve_raw, stored
from bench_industry40_rest_client import client_main, steady, wrk_max

HERE = Path(__file__).resolve()


# -- orchestration ----------------------------------------------------------------------------------------
def start_server(kind: str, url: str | None, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = work / f"{kind}-{uuid.uuid4().hex[:6]}.url"
    cmd = [sys.executable, str(HERE), "--serve", kind, "--port-file", str(port_file), "--work", str(work)]
    if url:
        cmd += ["--db-url", url]
    log = open(work / f"{kind}.log", "ab")  # noqa: SIM115 - the child's stderr until it ends
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{kind} server did not start; log {work / (kind + '.log')}:\n"
                             + (work / f"{kind}.log").read_text()[-2000:])
        time.sleep(0.1)
    return proc, port_file.read_text()


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(http: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """The steady rates (open loop), then the max-throughput probe (wrk) with the server's CPU a request."""
    out: dict[str, Any] = {"steady": []}
    for rate in args.rates:  # the first on a fresh database: every server gets the same requests
        cpu0 = cpu_seconds(pid)
        out["steady"].append(steady(http, rate, args))
        out["steady"][-1]["cpu_ms"] = (cpu_seconds(pid) - cpu0) * 1e3 / max(1, out["steady"][-1]["answered"])
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    cpu0 = cpu_seconds(pid)
    out["max"] = wrk_max(http, args, deadline)
    out["max"]["cpu_ms"] = (cpu_seconds(pid) - cpu0) * 1e3 / max(1, out["max"]["done"])
    return out


def show(db: str, kind: str, r: dict[str, Any], orders: int | None) -> None:
    for s in r["steady"]:
        short = f" (the client sent only {s['send_rate']:.0f}/s)" if s["send_rate"] < 0.97 * s["offered"] else ""
        print(f"  {db:8} {kind:5} steady {s['offered']:5.0f}/s: answered {s['rate']:6.1f}/s p50 {s['p50'] * 1e3:8.1f} "
              f"p95 {s['p95'] * 1e3:8.1f} p99 {s['p99'] * 1e3:8.1f} ms, late {s['late']}, errors {s['errors']}, "
              f"server CPU {s['cpu_ms']:.2f} ms a request"
              f"{' ' + str(s['first_error']) if s['errors'] else ''}{short}", flush=True)
    m = r["max"]
    print(f"  {db:8} {kind:5} max (wrk, {m['done']} requests): {m['rate']:7.1f} req/s p50 {m['p50'] * 1e3:7.1f} "
          f"p99 {m['p99'] * 1e3:7.1f} ms, server CPU {m['cpu_ms']:.2f} ms a request, errors {m['errors']}"
          f"{' ' + str(m['first_error']) if m['errors'] else ''}"
          f"{'' if orders is None else f'; {orders} orders stored by the end'}", flush=True)


def database(db: str, kind: str, work: Path, pg: Any) -> str | None:
    """The database ``kind`` runs on: a fresh SQLite file or PostgreSQL database (raw: migrated by the plant)."""
    if kind == "floor":
        return None
    if db == "sqlite":
        return prepare_sqlite_schema(work / "raw.db", work) if kind == "raw" else f"sqlite:///{work / f'{kind}.db'}"
    url: str = pg.create_database(f"bench_{kind}")
    if kind == "raw":  # the plant migrates it first: the same tables and indexes
        proc, _ = start_server("forge", url, work)
        stop_server(proc)
    return url


def report(dbs: list[str], results: dict[tuple[str, str], dict[str, Any]]) -> None:
    per_node = 5000 / 15
    floor = results.get((dbs[0], "floor"))
    print("ratios (1.0 = as fast as the bare Starlette + SQLAlchemy app doing the same database work):")
    for db in dbs:
        fm, rm = results[(db, "forge")]["max"], results[(db, "raw")]["max"]
        print(f"  {db:8}: max throughput Forge/raw {fm['rate'] / rm['rate']:.2f} ({fm['rate']:.0f} vs {rm['rate']:.0f} "
              f"req/s); server CPU a request raw/Forge {rm['cpu_ms'] / fm['cpu_ms']:.2f} ({fm['cpu_ms']:.2f} vs "
              f"{rm['cpu_ms']:.2f} ms)" + (f"; Forge/floor {fm['rate'] / floor['max']['rate']:.2f}" if floor else ""))
        for fs, rs in zip(results[(db, "forge")]["steady"], results[(db, "raw")]["steady"], strict=True):
            met = fs["offered"] >= per_node and fs["p95"] < 2 and not fs["late"]
            print(f"            steady {fs['offered']:g}/s: Forge p95 {fs['p95'] * 1e3:.1f} p99 "
                  f"{fs['p99'] * 1e3:.1f} ms, raw p95 {rs['p95'] * 1e3:.1f} p99 {rs['p99'] * 1e3:.1f} ms; "
                  f"server CPU a request raw/Forge {rs['cpu_ms'] / fs['cpu_ms']:.2f} ({fs['cpu_ms']:.2f} vs "
                  f"{rs['cpu_ms']:.2f} ms)"
                  f"{'  <- MES share met' if met else ''}")
        print(f"            MES: p95 < 2 s at {per_node:.0f} req/s per node; Forge's max is "
              f"{fm['rate'] / per_node:.2f} of a node's share")
    if floor:
        print(f"  floor (no database, the same uvicorn and clients): max {floor['max']['rate']:.0f} req/s "
              f"({floor['max']['cpu_ms']:.2f} ms server CPU a request); steady p99 "
              + ", ".join(f"{s['p99'] * 1e3:.1f} ms at {s['offered']:g}/s" for s in floor["steady"]))


def bench(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk (the max-throughput client) is not installed: apt-get install wrk, or "
                         "scripts/setup.sh --servers")
    dbs = args.db.split(",")
    kinds = args.kinds.split(",")
    print(f"POST /orders: steady open loop at {', '.join(f'{r:g}' for r in args.rates)} req/s for {args.seconds:g} s "
          f"each ({args.clients} client processes, up to {args.connections} connections each), then max throughput "
          f"(wrk -t1 -c{args.connections}, {args.max_seconds:g} s); {args.held} orders held at the start; "
          f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-i40-rest-") as tmp:
        work = Path(tmp)
        results: dict[tuple[str, str], dict[str, Any]] = {}
        pg = None
        try:
            for db in dbs:
                if db == "postgres" and pg is None:
                    from forge_core.testing import PostgresServer
                    pg = PostgresServer()
                    pg.start()
                for kind in kinds if db == dbs[0] else [k for k in kinds if k != "floor"]:
                    url = database(db, kind, work, pg)
                    proc, http = start_server(kind, url, work)
                    try:
                        seed_held(url, args.held)
                        results[(db, kind)] = measure(http, proc.pid, args)
                    finally:
                        stop_server(proc)
                    show(db, kind, results[(db, kind)], stored(url))
        finally:
            if pg is not None:
                pg.stop()
        if "forge" in kinds and "raw" in kinds:
            report(dbs, results)
    print(f"load average at end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--kinds", default="floor,raw,forge", help="which servers (default all three)")
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")], default=[100.0, 333.0],
                        help="steady open-loop rates, req/s (default 100,333; 333 = the MES's share of a node)")
    parser.add_argument("--seconds", type=float, default=15.0, help="each steady rate's length")
    parser.add_argument("--clients", type=int, default=2, help="open-loop client processes")
    parser.add_argument("--connections", type=int, default=16,
                        help="wrk's connections; the most each open-loop client process opens")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="how long answers are waited for after the last request was due")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="the wrk probe's length")
    parser.add_argument("--held", type=int, default=0,
                        help="orders the factories already hold when the run starts (default none)")
    parser.add_argument("--serve", choices=["forge", "raw", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--phase", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "forge":
        serve_forge(args.db_url, args.port_file, args.work)
    elif args.serve in ("raw", "floor"):
        serve_raw(args.db_url, args.port_file)
    elif args.client:
        client_main(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
