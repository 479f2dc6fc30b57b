"""bench_industry40_rest's servers and their databases: Forge's PMS, the bare Starlette app (``raw``;
``floor`` without a database), each run as a child process by ``bench_industry40_rest.py --serve``;
the schema the raw side gets (migrated by the plant), held orders seeded, orders counted.
See bench_industry40_rest.py for what each server does per request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

UVICORN = {"log_level": "warning", "access_log": False, "lifespan": "off", "interface": "asgi3"}
FACTORIES = {f"factory-{n}": 10_000_000 for n in range(1, 5)}  # room for every order: each one is assigned

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
