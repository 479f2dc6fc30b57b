"""Industry 4.0 REST: ``POST /orders`` throughput and p99 at a steady load, Forge vs a bare Starlette app.

    .venv/bin/python benchmarks/bench_industry40_rest.py [--db sqlite,postgres] [--rate 25] [--seconds 20]
                                                         [--concurrency 8] [--max-seconds 10]

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
* **raw**: a bare Starlette app on the same uvicorn settings doing the same database work with
  SQLAlchemy Core in one transaction, on the same kind of database, the same tables and indexes
  (created by the same migration: the raw side gets a database the plant migrated first): key look-up,
  insert, the same load query, assignment, stored answer; pydantic validation of the same model
  shape. It has no fence, no outbox and no bus (what Forge adds for failover and messages).
* **floor**: the same Starlette app answering 201 without touching a database: the ceiling of
  this client, uvicorn and the machine (what no server above can beat here).

The client (its own process, httpx ``AsyncClient`` with a connection pool of ``--concurrency``;
aiohttp is not installed; httpx costs ~1.8 ms of client CPU per request here and collapses past
~8 connections in flight -- 32 gave 6 ms a request -- hence 8; the floor row shows its ceiling)
runs (1) a **steady load**: ``--rate`` requests/s for ``--seconds``, open loop (each request's
latency counted from when it was due, so a server that falls behind is charged for the wait), and
(2) a **max throughput** probe: ``--concurrency`` requests in flight for ``--max-seconds``. Every
order carries a unique Idempotency-Key. Figures: achieved rate, p50/p95/p99, errors; the ratio
Forge / raw for throughput and raw p99 / Forge p99 (1.0 = as fast as the bare app).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
UVICORN = {"log_level": "warning", "access_log": False, "lifespan": "off", "interface": "asgi3"}
BODY = {"product_type": "widget", "quantity": 3}
FACTORIES = {f"factory-{n}": 10_000_000 for n in range(1, 5)}  # room for every order: each one is assigned


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the servers (child processes) --------------------------------------------------------------------
def serve_forge(url: str, port_file: Path, work: Path) -> None:
    from industry40.testing import derive

    from forge_core.runtime import Runtime, load_plant

    directory = derive(work / "forge-plant", keep=("pms",), params={"pms": {"capacities": FACTORIES}},
                       storage={"url": url, "migrate_on_start": True})

    async def main() -> None:
        plugins, manifest = load_plant(directory, env={})
        runtime = Runtime(manifest, plugins, serve_health=False, data_dir=work / "forge-data")
        await runtime.start()
        http_url = next(s.instance.ctx.http.url for s in runtime.supervisors.values()
                        if s.instance is not None and s.instance.ctx.http.url)
        port_file.write_text(http_url)
        try:
            await asyncio.Event().wait()
        finally:
            await runtime.stop()

    _run_until_terminated(main())


def serve_raw(url: str | None, port_file: Path) -> None:
    import sqlalchemy as sa
    import uvicorn
    from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    class Order(BaseModel):  # the same shape and limits as the PMS's request model
        model_config = ConfigDict(extra="forbid", frozen=True)
        product_type: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
        quantity: int = Field(gt=0, le=1_000_000, strict=True)
        deadline: AwareDatetime

    engine = sa.create_engine(url) if url else None
    meta = sa.MetaData()
    if engine is not None:
        meta.reflect(engine, only=["orders", "factories", "factory_assignments"])
        orders, factories, assignments = (meta.tables[n] for n in ("orders", "factories", "factory_assignments"))

    async def post(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "Content-Type"}, 415)
        key = request.headers.get("idempotency-key")
        try:
            order = Order.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, 422)
        if engine is None:
            return JSONResponse({"id": uuid.uuid4().hex, "status": "assigned"}, 201)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            seen = conn.execute(sa.select(orders.c.response).where(orders.c.idempotency_key == key)).first()
            if seen is not None:
                return Response(seen.response, 201, media_type="application/json")
            oid = uuid.uuid4().hex
            conn.execute(orders.insert().values(
                id=oid, product_type=order.product_type, quantity=order.quantity, deadline=order.deadline,
                status="pending", progress=0.0, idempotency_key=key, created_at=now, updated_at=now, completions=0))
            held = dict(conn.execute(sa.select(orders.c.factory_id, sa.func.count()).where(
                orders.c.status.in_(("assigned", "in_progress"))).group_by(orders.c.factory_id)).all())
            free = [(row.capacity - held.get(row.id, 0), row.id) for row in conn.execute(
                sa.select(factories.c.id, factories.c.capacity).where(factories.c.status == "UP"))]
            free = [f for f in free if f[0] > 0]
            view = {"id": oid, "product_type": order.product_type, "quantity": order.quantity,
                    "deadline": order.deadline.isoformat(), "status": "pending", "factory_id": None}
            if free:
                best = min(free, key=lambda f: (-f[0], f[1]))[1]
                conn.execute(orders.update().where(orders.c.id == oid).values(status="assigned", factory_id=best))
                conn.execute(assignments.insert().values(order_id=oid, factory_id=best, assigned_at=now))
                view.update(status="assigned", factory_id=best)
            conn.execute(orders.update().where(orders.c.id == oid).values(response=json.dumps(view)))
        return JSONResponse(view, 201)

    async def main() -> None:
        config = uvicorn.Config(Starlette(routes=[Route("/orders", post, methods=["POST"])]), host="127.0.0.1",
                                port=0, **UVICORN)  # type: ignore[arg-type]
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        port_file.write_text(f"http://127.0.0.1:{port}")
        await task

    _run_until_terminated(main())


def _run_until_terminated(coro: Any) -> None:
    import signal

    async def run() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


def prepare_sqlite_schema(path: Path, work: Path) -> str:
    """A database file the plant's migration made (the raw side uses the same tables and indexes)."""
    from industry40.testing import derive

    from forge_core.testing import TestPlant

    url = f"sqlite:///{path}"
    directory = derive(work / f"schema-{path.stem}", keep=("pms",), params={"pms": {"capacities": FACTORIES}},
                       storage={"url": url, "migrate_on_start": True})
    TestPlant(directory).start().stop()
    return url


# -- the client (child process) --------------------------------------------------------------------------
async def drive(url: str, rate: float, seconds: float, concurrency: int, max_seconds: float) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    body = json.dumps({**BODY, "deadline": deadline})
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def one(due: float, lat: list[float], errors: list[str]) -> None:
            try:
                r = await client.post("/orders", content=body, headers={
                    "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex})
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:80]}")
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
            lat.append(time.perf_counter() - due)

        for _ in range(50):  # warm-up (connections, caches)
            await one(time.perf_counter(), [], [])
        # (1) steady open-loop load
        lat: list[float] = []
        errors: list[str] = []
        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        sem = asyncio.Semaphore(concurrency)  # no waiters inside httpx's pool (slow); the wait here counts as latency

        async def paced(due: float) -> None:
            async with sem:
                await one(due, lat, errors)

        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(paced(due)))
        await asyncio.gather(*tasks)
        took = time.perf_counter() - start
        out["steady"] = {"sent": n, "took": took, "rate": n / took, "p50": pct(lat, .5), "p95": pct(lat, .95),
                         "p99": pct(lat, .99), "errors": len(errors), "first_error": errors[:1]}
        # (2) max throughput: concurrency requests in flight
        done: list[float] = []
        errors2: list[str] = []
        stop_at = time.perf_counter() + max_seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                await one(time.perf_counter(), done, errors2)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t0
        out["max"] = {"done": len(done), "rate": len(done) / took, "p50": pct(done, .5), "p99": pct(done, .99),
                      "errors": len(errors2), "first_error": errors2[:1]}
    return out


def client_main(args: argparse.Namespace) -> None:
    result = asyncio.run(drive(args.url, args.rate, args.seconds, args.concurrency, args.max_seconds))
    print(json.dumps(result))


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


def run_client(url: str, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE), "--client", "--url", url, "--rate", str(args.rate),
                          "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
                          "--max-seconds", str(args.max_seconds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(args: argparse.Namespace) -> None:
    dbs = args.db.split(",")
    print(f"POST /orders, steady {args.rate:g} req/s for {args.seconds:g} s (open loop) and max throughput with "
          f"{args.concurrency} in flight for {args.max_seconds:g} s; load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-i40-rest-") as tmp:
        work = Path(tmp)
        results: dict[tuple[str, str], dict[str, Any]] = {}
        pg = None
        try:
            for db in dbs:
                for kind in ("floor", "raw", "forge") if db == dbs[0] else ("raw", "forge"):
                    if db == "sqlite":
                        url = f"sqlite:///{work / f'{kind}.db'}"
                        if kind == "raw":
                            url = prepare_sqlite_schema(work / "raw.db", work)
                    else:
                        if pg is None:
                            from forge_core.testing import PostgresServer
                            pg = PostgresServer()
                            pg.start()
                        url = pg.create_database(f"bench_{kind}")
                        if kind == "raw":  # the plant migrates it first: the same tables and indexes
                            proc, _ = start_server("forge", url, work)
                            stop_server(proc)
                    proc, http = start_server(kind, None if kind == "floor" else url, work)
                    try:
                        results[(db, kind)] = run_client(http, args)
                    finally:
                        stop_server(proc)
                    r = results[(db, kind)]
                    s, m = r["steady"], r["max"]
                    print(f"  {db:8} {kind:5}: steady {s['rate']:7.1f} req/s p50 {s['p50'] * 1e3:7.1f} ms p95 "
                          f"{s['p95'] * 1e3:7.1f} ms p99 {s['p99'] * 1e3:7.1f} ms errors {s['errors']}"
                          f"{' ' + str(s['first_error']) if s['errors'] else ''} | max {m['rate']:7.1f} req/s "
                          f"p99 {m['p99'] * 1e3:7.1f} ms errors {m['errors']}", flush=True)
        finally:
            if pg is not None:
                pg.stop()
        print("ratios (1.0 = as fast as the bare Starlette + SQLAlchemy app doing the same database work):")
        for db in dbs:
            raw, forge = results[(db, "raw")], results[(db, "forge")]
            print(f"  {db:8}: max throughput Forge/raw {forge['max']['rate'] / raw['max']['rate']:.2f} "
                  f"({forge['max']['rate']:.0f} vs {raw['max']['rate']:.0f} req/s); steady p99 raw/Forge "
                  f"{raw['steady']['p99'] / forge['steady']['p99']:.2f} ({forge['steady']['p99'] * 1e3:.1f} vs "
                  f"{raw['steady']['p99'] * 1e3:.1f} ms); steady p95 Forge {forge['steady']['p95'] * 1e3:.1f} ms")
            per_node = 5000 / 15
            print(f"            MES target p95 < 2 s at {per_node:.0f} req/s per node: one Forge process sustains "
                  f"{forge['max']['rate']:.0f} req/s = {forge['max']['rate'] / per_node:.2f} of a node's share")
        floor = results.get((dbs[0], "floor"))
        if floor:
            print(f"  floor (no database, same client and uvicorn): max {floor['max']['rate']:.0f} req/s, steady p99 "
                  f"{floor['steady']['p99'] * 1e3:.1f} ms")
    print(f"load average at end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--serve", choices=["forge", "raw", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
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
