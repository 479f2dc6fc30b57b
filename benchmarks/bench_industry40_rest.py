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
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
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
    if engine is not None and engine.dialect.name == "sqlite":  # the pragmas Forge's engines get (a bare app's best)
        @sa.event.listens_for(engine, "connect")
        def pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            for pragma in ("foreign_keys=ON", "busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()
    if engine is not None:
        # Plain SQL on the pooled connection's DBAPI cursor, inside SQLAlchemy's transaction: what an expert
        # writes for a hot path (and what the PMS's own hot path does, forge_sched.orders.plain), not
        # SQLAlchemy Core's execution path, which costs more CPU than SQLite running a one-row statement.
        sqlite = engine.dialect.name == "sqlite"
        params = re.compile(r"(?<!:):(\w+)")

        def sql(text: str) -> str:  # written with :name (sqlite3's named style), %(name)s for psycopg
            return text if sqlite else params.sub(r"%(\1)s", text)

        orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
        # timestamps bound as SQLAlchemy's DateTime writes them (SQLite: its string format), so both
        # servers' rows read back alike
        stamp = orders.c.created_at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect) or (lambda v: v)
        seen_q = sql("SELECT response FROM orders WHERE idempotency_key = :key")
        insert_q = sql("INSERT INTO orders (id, product_type, quantity, deadline, status, progress, idempotency_key, "
                       "created_at, updated_at, completions) VALUES (:id, :product_type, :quantity, :deadline, "
                       "'pending', 0.0, :key, :now, :now, 0)")
        if sa.inspect(engine).has_table("sched_factory_held"):  # the count the migration keeps (sched_0003)
            held_q = sql("SELECT factory_id, held FROM sched_factory_held")
        else:  # the schema before it: count the held orders
            held_q = sql("SELECT factory_id, count(*) FROM orders WHERE status IN ('assigned', 'in_progress') "
                         "GROUP BY factory_id")
        up_q = sql("SELECT id, capacity FROM factories WHERE status = 'UP'")
        assign_q = sql("UPDATE orders SET status = 'assigned', factory_id = :factory WHERE id = :id")
        hold_q = sql("INSERT INTO factory_assignments (order_id, factory_id, assigned_at) VALUES (:id, :factory, :now)")
        answer_q = sql("UPDATE orders SET response = :response WHERE id = :id")

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
        now = stamp(datetime.now(UTC))
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(seen_q, {"key": key})
            seen = cursor.fetchone()
            if seen is not None:
                return Response(seen[0], 201, media_type="application/json")
            oid = uuid.uuid4().hex
            cursor.execute(insert_q, {"id": oid, "product_type": order.product_type, "quantity": order.quantity,
                                      "deadline": stamp(order.deadline), "key": key, "now": now})
            cursor.execute(held_q)
            held: dict[str, int] = dict(cursor.fetchall())
            cursor.execute(up_q)
            free = [(capacity - held.get(fid, 0), fid) for fid, capacity in cursor.fetchall()]
            free = [f for f in free if f[0] > 0]
            view = {"id": oid, "product_type": order.product_type, "quantity": order.quantity,
                    "deadline": order.deadline.isoformat(), "status": "pending", "factory_id": None}
            if free:
                best = min(free, key=lambda f: (-f[0], f[1]))[1]
                cursor.execute(assign_q, {"id": oid, "factory": best})
                cursor.execute(hold_q, {"id": oid, "factory": best, "now": now})
                view.update(status="assigned", factory_id=best)
            cursor.execute(answer_q, {"id": oid, "response": json.dumps(view)})
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


# -- the clients ----------------------------------------------------------------------------------------
def wrk_max(url: str, args: argparse.Namespace, deadline: str) -> dict[str, Any]:
    """Max throughput: wrk (C, one thread) keeps ``--connections`` requests in flight for ``--max-seconds``;
    the Lua script gives each request a valid body and its own Idempotency-Key."""
    out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.max_seconds:g}s", "--timeout", "30s",
                          "-s", str(HERE.with_suffix(".lua")), url, "--", deadline],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    took = r["duration_us"] / 1e6
    return {"done": r["requests"], "rate": r["requests"] / took, "p50": r["p50_us"] / 1e6, "p99": r["p99_us"] / 1e6,
            "errors": sum(r["errors"].values()), "first_error": [r["errors"]] if any(r["errors"].values()) else []}


class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time: the status of each answer
    (the body is read by its Content-Length and dropped)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15:stop if stop > 0 else len(head)])
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        del self.buf[:end + 4 + length]
        if not self.waiter.done():  # else cancelled: not answered in time
            self.waiter.set_result(status)
        self.waiter = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # e.g. uvicorn's keep-alive timeout on an idle connection
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiter is None
        if self.closed:
            raise ConnectionError("closed by the server")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


async def open_loop(url: str, rate: float, seconds: float, phase: float, connections: int,
                    drain: float) -> dict[str, Any]:
    """Requests due every ``1/rate`` s from ``start + phase`` for ``seconds``, where ``start`` is a wall-clock
    time read from stdin once this process said ``ready`` (warmed up; the parent gives every client
    process the same start once all are ready), each on a free connection (up to ``connections``,
    opened as needed; beyond them a request waits, and the wait counts). Latency is counted from when a
    request was due; what is not answered ``drain`` s after the last one was due counts as infinitely late."""
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    body = json.dumps({**BODY, "deadline": deadline}).encode()
    head = (f"POST /orders HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nIdempotency-Key: ").encode()
    prefix = uuid.uuid4().hex[:12]
    idle: list[_Http] = []
    waiting: collections.deque[asyncio.Future[_Http]] = collections.deque()
    opened = 0
    lat: list[float] = []
    errors: list[str] = []
    last = 0.0

    async def take() -> _Http:
        nonlocal opened
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            opened -= 1
        if opened < connections:
            opened += 1
            _, conn = await loop.create_connection(_Http, host, int(port))
            return conn
        fut: asyncio.Future[_Http] = loop.create_future()
        waiting.append(fut)
        return await fut

    def give(conn: _Http) -> None:
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        idle.append(conn)

    async def one(n: int, due: float) -> None:
        nonlocal opened, last
        conn = await take()
        try:
            status = await conn.send(head + f"{prefix}-{n}\r\n\r\n".encode() + body)
        except ConnectionError as exc:
            errors.append(str(exc))
            opened -= 1
            return
        give(conn)
        last = time.perf_counter()
        lat.append(last - due)
        if status != 201:
            errors.append(str(status))

    for n in range(20):  # warm-up: a connection open, the server's caches warm
        await one(-n - 1, time.perf_counter())
    lat.clear()
    errors.clear()
    print("ready", flush=True)
    start = float(await loop.run_in_executor(None, sys.stdin.readline))
    # the processes share a wall-clock start; due times are on perf_counter from there
    t0 = time.perf_counter() + (start + phase - time.time())
    count = int(rate * seconds)
    tasks = []
    for i in range(count):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, due)))
    sent_by = time.perf_counter()
    _, late = await asyncio.wait(tasks, timeout=max(0.0, t0 + seconds + drain - time.perf_counter()))
    for task in late:
        task.cancel()
    return {"sent": count, "send_took": sent_by - t0, "took": max(seconds, last - t0), "lat": lat,
            "late": len(late), "errors": errors[:3], "error_count": len(errors)}


def client_main(args: argparse.Namespace) -> None:
    result = asyncio.run(open_loop(args.url, args.rate, args.seconds, args.phase, args.connections, args.drain))
    print(json.dumps(result))


def steady(url: str, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """``rate`` req/s open loop from ``--clients`` processes (each ``rate/clients``, interleaved)."""
    procs = args.clients
    running = [subprocess.Popen([sys.executable, str(HERE), "--client", "--url", url, "--rate", str(rate / procs),
                                 "--seconds", str(args.seconds), "--phase", str(k / rate),
                                 "--connections", str(args.connections), "--drain", str(args.drain)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for k in range(procs)]
    for p in running:  # each has started and warmed up
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", "a client process failed"
    start = time.time() + 0.2
    for p in running:
        assert p.stdin is not None
        p.stdin.write(f"{start}\n")
        p.stdin.close()
    parts = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in running if p.stdout is not None]
    for p in running:
        p.wait()
    late = sum(p["late"] for p in parts)
    lat = [x for p in parts for x in p["lat"]] + [float("inf")] * late
    sent = sum(p["sent"] for p in parts)
    answered = sum(len(p["lat"]) for p in parts)
    return {"offered": rate, "sent": sent, "answered": answered, "rate": answered / max(p["took"] for p in parts),
            "send_rate": sent / max(p["send_took"] for p in parts), "p50": pct(lat, .5), "p95": pct(lat, .95),
            "p99": pct(lat, .99), "late": late, "errors": sum(p["error_count"] for p in parts),
            "first_error": [e for p in parts for e in p["errors"]][:1]}


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


def seed_held(url: str | None, n: int) -> None:
    """``n`` orders held by the factories before the run (``--held``): what a plant that has been
    taking orders for a while holds, so each request's cost is seen against a full table."""
    if url is None or n <= 0:
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine, only=["orders", "factory_assignments"])
        now = datetime.now(UTC)
        names = sorted(FACTORIES)
        rows = [{"id": f"seed-{i}", "product_type": "widget", "quantity": 3, "deadline": now + timedelta(days=7),
                 "status": "assigned", "factory_id": names[i % len(names)], "progress": 0.0,
                 "idempotency_key": f"seed-{i}", "created_at": now, "updated_at": now, "completions": 0}
                for i in range(n)]
        with engine.begin() as conn:
            conn.execute(meta.tables["orders"].insert(), rows)
            conn.execute(meta.tables["factory_assignments"].insert(), [
                {"order_id": r["id"], "factory_id": r["factory_id"], "assigned_at": now} for r in rows])
        # as the database of a plant that has been running is: vacuumed and analysed (on PostgreSQL the
        # one transaction above left a dead row version of a factory's held count per order it added)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    finally:
        engine.dispose()


def stored(url: str | None) -> int | None:
    """How many orders the run left in ``url``."""
    if url is None:
        return None
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one())
    finally:
        engine.dispose()


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
