"""Instructions an order costs the scheduler's side, stage by stage (run under cachegrind).

    python plugins/forge_sched/benchmarks/bench_order_path.py N [--stage all|post|norelay|direct|noprog]

N orders go through industry40's in-process ASGI client -> ``POST /orders`` (Starlette, pydantic) ->
``create_order`` (SQLite on file) -> the outbox relay (publish a no-op), then each gets four progress
reports and its completion (placing pending orders, fenced), and the relay again. Run it for N=1 and
N=201 under cachegrind (``PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no
--cachegrind-out-file=/dev/null python ...``): (I refs of 201 - of 1) / 200 is the cost of an order.

Stages (each leaves out the part after it): ``post`` only the request and its relay, ``norelay`` the
request alone, ``direct`` calls ``create_order`` itself instead of the HTTP request, ``noprog`` no
progress reports. The differences between them give the per-stage table.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.tactics import RetryPolicy
from industry40.components.asgi_client import InProcessClient

import forge_sched
from forge_sched.orders import outbox
from forge_sched.orders.moves import Topics
from forge_sched.orders.rest import OrdersApi
from forge_sched.orders.service import NewOrder, OrderService
from forge_sched.orders.transactions import Conflict, Transactor

STAGES = ("all", "post", "norelay", "direct", "noprog")


async def run(orders: int, stage: str, directory: str) -> tuple[int, dict[str, int]]:
    engine = create_engine_from_url(f"sqlite:///{directory}/orders.db")
    registry = MigrationRegistry(include_core=False)
    registry.add("sched", str(Path(forge_sched.__file__).parent / "migrations"), plugin="forge-sched")
    upgrade(engine, registry)
    clock = [1000.0]
    ids = itertools.count(1)
    policy = RetryPolicy(max_attempts=3, initial=0.001, max_backoff=0.01, retry_on=(Conflict,), seed=1)
    tx = Transactor(engine, policy, keep_connection=True)
    service = OrderService(tx, topics=Topics("factory/{factory_id}/orders", "factory/{factory_id}/orders/revoked"),
                           created_topic="orders/created", now=lambda: clock[0], new_id=lambda: f"o{next(ids):06d}",
                           default_capacity=100_000, leader_epoch=lambda: 3)
    published: list[str] = []

    async def publish(topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        published.append(type_)

    async def after_write() -> None:
        if stage != "norelay":
            await outbox.relay(engine, publish, connect=tx.connect, only_new=True)

    api = OrdersApi(service, leading=lambda: True, after_write=after_write, max_body_bytes=65536, page_limit=100)
    await service.configure_factories({f"f{i}": 100_000 for i in range(4)})
    client = InProcessClient(api.app)
    deadline = datetime(2030, 1, 31, 12, tzinfo=UTC)
    for i in range(orders):
        clock[0] += 10
        key = f"k{i:08d}"
        if stage == "direct":
            view, _ = await service.create_order(NewOrder("widget", 3, deadline), idempotency_key=key)
            await after_write()
        else:
            body = {"product_type": "widget", "quantity": 3, "deadline": "2030-01-31T12:00:00Z"}
            response = await client.post("/orders", json=body, headers={"Idempotency-Key": key})
            assert response.status_code == 201, response.text
            view = response.json()
        if stage in ("post", "norelay"):
            continue
        for progress in () if stage == "noprog" else (0.0, 0.25, 0.5, 0.75):
            await service.progress(view["id"], view["factory_id"], progress, defer=True)
        clock[0] += 5
        assert await service.complete(view["id"], view["factory_id"], place=True) == "completed"
        await after_write()
    engine.dispose()
    return len(published), service.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("orders", type=int)
    parser.add_argument("--stage", choices=STAGES, default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        published, stats = asyncio.run(run(args.orders, args.stage, directory))
    print(published, stats["created"], stats["completed"])


if __name__ == "__main__":
    main()
