"""A fake order scheduler (the handler behind the servicer) and a real grpc.aio server on
127.0.0.1 with health checking and reflection, as the runtime's ``ctx.grpc`` serves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from forge_sched.grpc import SERVICE_NAME, FactoryStatusServicer, add_FactoryStatusServiceServicer_to_server
from forge_sched.orders.status import FactoryCapacity, StatusReportResult


class FakeScheduler:
    """The contract's ``report_factory_status`` on a dict: fences per lease, unknown factories added."""

    def __init__(self) -> None:
        self.factories: dict[str, str] = {"factory-1": "UP", "factory-2": "UP"}
        self.newest: dict[str, int] = {}
        self.calls: list[tuple[str, str, str, int | None, str | None]] = []
        self.delay = 0.0
        self.fail: Exception | None = None
        self.code: str | None = None  # force a result code (not_leader, unavailable)
        self.loads: dict[str, int] = {}  # orders held per factory (capacity 10 each)
        self.capacity_fail: Exception | None = None

    async def factory_capacity(self) -> list[FactoryCapacity]:
        if self.capacity_fail is not None:
            raise self.capacity_fail
        return [FactoryCapacity(f, status, 10, self.loads.get(f, 0), 10 - self.loads.get(f, 0))
                for f, status in sorted(self.factories.items())]

    async def report_factory_status(self, factory_id: str, status: str, reason: str,
                                    epoch: int | None, lease: str | None) -> StatusReportResult:
        self.calls.append((factory_id, status, reason, epoch, lease))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        if self.code is not None:
            return StatusReportResult(False, f"forced {self.code}", 0, self.code)  # type: ignore[arg-type]
        if epoch is not None and lease is not None:
            newest = self.newest.get(lease, 0)
            if epoch < newest:
                return StatusReportResult(False, f"stale epoch {epoch} on lease {lease!r}: newest is {newest}", 0,
                                          "stale_epoch", "epoch")
            self.newest[lease] = epoch
        added = factory_id not in self.factories
        self.factories[factory_id] = status
        moved = 2 if status == "DOWN" else 0
        return StatusReportResult(True, f"{factory_id} {status}" + (" (new factory)" if added else ""), moved)


Serve = Callable[..., AbstractAsyncContextManager[int]]


@asynccontextmanager
async def serve_status(handler: Any, port: int = 0, servicer: Any = None,
                       credentials: grpc.ServerCredentials | None = None) -> AsyncIterator[int]:
    """A grpc.aio server on 127.0.0.1:``port`` (0: ephemeral) serving the servicer, health and
    reflection (TLS with ``credentials``); yields the port, stops the server (no grace) on exit."""
    server = grpc.aio.server()
    add_FactoryStatusServiceServicer_to_server(servicer or FactoryStatusServicer(handler), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"127.0.0.1:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    assert bound, f"could not bind 127.0.0.1:{port}"
    await server.start()
    await checker.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    try:
        yield bound
    finally:
        await server.stop(None)


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def serve() -> Serve:
    return serve_status


def run(body: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30.0) -> Any:
    """Run an async test body on a fresh loop, bounded."""
    async def bounded() -> Any:
        return await asyncio.wait_for(body(), timeout)
    return asyncio.run(bounded())


@pytest.fixture
def arun() -> Callable[..., Any]:
    return run
