"""Helpers for forge_opcua's tests: a plant on the real clock (asyncua needs real sockets) with a tap
that keeps every message, and a simulated PLC on the test's own event loop."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from forge_core import Envelope, RealClock
from forge_core.runtime import Runtime, load_plant

from forge_opcua import PlcSimulatorParams
from forge_opcua.simulator.server import PlcServer, node_id_text

NS = "urn:forge:opcua:plc-simulator"

#: Machines that change every few tens of milliseconds, for tests that want traffic.
BUSY = {"ideal_cycle_time": 0.05, "mean_running": 2.0, "mean_idle": 0.3, "mean_down": 0.3, "mean_setup": 0.3}
#: Machines that keep still unless a test writes to them (one part an hour, no stops).
STILL = {"ideal_cycle_time": 3600.0, "mean_running": 1e9}


def node(name: str) -> str:
    return node_id_text(NS, name)


class RealPlant:
    """A started plant on the real clock; ``messages(type)`` is what its transports carried."""

    def __init__(self, runtime: Runtime, seen: list[tuple[str, Envelope]]) -> None:
        self.runtime = runtime
        self.seen = seen

    def messages(self, type_: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        return [e.payload for _, e in self.seen if isinstance(e, Envelope) and e.type == type_
                and (where is None or where(e.payload))]

    def topics(self, type_: str) -> list[str]:
        return [t for t, e in self.seen if isinstance(e, Envelope) and e.type == type_]

    def component(self, name: str) -> Any:
        instance = self.runtime.supervisors[name].instance
        assert instance is not None, f"{name} is not running ({self.runtime.supervisors[name].state})"
        return instance

    def state(self, name: str) -> str:
        return self.runtime.supervisors[name].state

    async def publish(self, topic: str, type_: str, payload: Any) -> None:
        assert self.runtime.bus is not None
        await self.runtime.bus.publish(topic, type_, payload, source="test")

    async def until(self, condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
        """Wait until ``condition()`` is truthy (generous: the machine is shared and loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"not within {timeout}s: {what or condition}")


def write_plant(root: Path, components: dict[str, Any], tactics: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(
        "version: 1\nplant: {name: opcua_test}\nplugins: [opcua]\ntransports: {bus: {type: memory}}\n"
        f"default_transport: bus\ntactics: {json.dumps(tactics or {})}\ncomponents: {json.dumps(components)}\n"
        "runtime: {restart: {initial_backoff: 0.2, max_backoff: 1.0}}\n")
    return root


@asynccontextmanager
async def real_plant(root: Path, components: dict[str, Any], tactics: dict[str, Any] | None = None,
                     hooks: object | None = None) -> AsyncIterator[RealPlant]:
    """A started plant; ``hooks`` (an object with ``@hookimpl`` methods) is registered as a plugin."""
    plugins, manifest = load_plant(write_plant(root, components, tactics))
    if hooks is not None:
        plugins.register(hooks, "test-hooks")
    seen: list[tuple[str, Envelope]] = []

    async def tap(topic: str, message: Envelope) -> None:
        seen.append((topic, message))

    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False, tap=tap)
    await runtime.start()
    try:
        yield RealPlant(runtime, seen)
    finally:
        await runtime.stop()


@asynccontextmanager
async def plc_server(**params: Any) -> AsyncIterator[PlcServer]:
    """A simulated PLC on this loop (port chosen free), stopped on exit; ``plc.update(now)`` moves it."""
    chosen = {"port": 0, "machines": ["M1", "M2"], "timing": STILL, **params}
    plc = PlcServer(PlcSimulatorParams.load(chosen), random.Random(1), time.time())
    await plc.start()
    try:
        yield plc
    finally:
        await plc.stop()


def source(endpoint: str, **params: Any) -> dict[str, Any]:
    """An opcua.source component spec on ``endpoint``; quick reconnects for tests."""
    return {"type": "opcua.source", "params": {"endpoint": endpoint, "reconnect_min_delay": 0.2,
                                               "reconnect_max_delay": 1.0, "watchdog_interval": 0.5, **params}}


class Proxy:
    """A TCP proxy on this loop in front of ``host:port``: :meth:`cut` makes the network silent (bytes
    are swallowed, nothing is closed, as when a cable is pulled); :meth:`heal` resets the connections
    that lived through the cut (as TCP gives up on them) and forwards again."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.silent = False
        self.connections: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.heal()
        assert self.server is not None
        self.server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.connections += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.silent:
                writer.write(data)
        writer.close()

    def cut(self) -> None:
        self.silent = True

    def heal(self) -> None:
        for writer in self.connections:
            writer.transport.abort()
        self.connections.clear()
        self.silent = False


def run(coroutine: Any, timeout: float = 180.0) -> Any:
    """Run ``coroutine`` on a fresh loop, with a generous overall timeout."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class Kit:
    """The helpers above, as a fixture: test modules cannot import conftest under importlib mode."""

    NS = NS
    BUSY = BUSY
    STILL = STILL
    node = staticmethod(node)
    real_plant = staticmethod(real_plant)
    write_plant = staticmethod(write_plant)
    plc_server = staticmethod(plc_server)
    source = staticmethod(source)
    run = staticmethod(run)
    Proxy = Proxy


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
