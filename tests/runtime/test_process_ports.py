"""The multi-process runner's ports: each child serves HTTP and gRPC on the port runtime.http.ports /
runtime.grpc.ports (forge_core.manifest.ports) gives it; --only binds that instance's in process."""

from __future__ import annotations

import asyncio
import json

import pytest

from forge_core.plant import load_plant
from forge_core.runtime.processes import ProcessRunner
from tests.runtime.process_helpers import until

# runtime.http.ports / runtime.grpc.ports (forge_core.manifest.ports): each child its own fixed port
SERVING_PLUGIN = '''
import json
from pathlib import Path

import grpc
from forge_core import Component, hookimpl
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


class Echo:
    def __init__(self, name):
        self.name = name

    async def Say(self, request, context):
        return self.name.encode()


def add_echo(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer.Say)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.v1.Echo", {"Say": handler}),))


class Api(Component):
    """Serves its name over HTTP and gRPC and writes where it serves, as a component announces it."""

    async def start(self):
        async def who(request):
            return JSONResponse({"instance": self.name})

        await self.ctx.http.mount("/who", Starlette(routes=[Route("/", who)]))
        await self.ctx.grpc.add(add_echo, Echo(self.name), "test.v1.Echo")
        where = {"http": self.ctx.http.url, "grpc": self.ctx.grpc.target}
        Path(self.params["out"], f"{self.name}.json").write_text(json.dumps(where))


@hookimpl
def forge_register_components(registry):
    registry.add("test.api", Api)
'''


SERVING = """
version: 1
plant: {name: ports}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  api: {type: test.api, replicas: 3, params: {out: "{plant_dir}"}}
runtime:
  processes: per_component
  health: {port: false}
  http: {port: 0, ports: {api-0: HTTP0, api-1: HTTP1}}
  grpc: {ports: {api-0: GRPC0, api-1: GRPC1}}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def free_ports(count: int) -> list[int]:
    """Ports free right now: bound to 0 together (so distinct), then released for the children."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def answers(http: str, grpc_target: str) -> tuple[int, str, str, int]:
    """(GET /health status, GET /who's instance, test.v1.Echo/Say's answer, gRPC health of the server)."""
    import grpc
    import httpx
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(f"{http}/health")).status_code
        who = (await client.get(f"{http}/who/")).json()["instance"]
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        said = (await channel.unary_unary("/test.v1.Echo/Say")(b"", timeout=10)).decode()
        status = (await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                   timeout=10)).status
    return health, who, said, status


def test_each_child_serves_http_and_grpc_on_its_configured_port(plant_dir):
    """api-0 and api-1 bind the ports the manifest gives them; api-2, not in the maps, a free port (0)
    and says which (what a component announces, e.g. forge-sched's sched.endpoint, is the bound one).
    With runtime.metrics.listen each child's /metrics is on that same one HTTP server."""
    pytest.importorskip("grpc")
    http0, http1, grpc0, grpc1 = free_ports(4)
    manifest = (SERVING.replace("HTTP0", str(http0)).replace("HTTP1", str(http1))
                .replace("GRPC0", str(grpc0)).replace("GRPC1", str(grpc1))
                .replace("  health: {port: false}", '  health: {port: false}\n  metrics: {listen: "127.0.0.1:0"}'))
    path = plant_dir(manifest, plugin=SERVING_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")
    from grpc_health.v1 import health_pb2

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        try:
            await until(lambda: all((path / f"api-{i}.json").exists() for i in range(3)), timeout=90)
            where = {f"api-{i}": json.loads((path / f"api-{i}.json").read_text()) for i in range(3)}
            got = {name: await answers(w["http"], w["grpc"]) for name, w in where.items()}
            import httpx

            async with httpx.AsyncClient(timeout=10) as client:
                metrics = (await client.get(f"http://127.0.0.1:{http0}/metrics")).text
            pids = {name: c.pid for name, c in runner.children.items()}
        finally:
            summary = await runner.stop()
        return where, got, pids, summary, metrics

    where, got, pids, summary, metrics = asyncio.run(scenario())
    assert "# TYPE forge_" in metrics, metrics[:500]  # Forge's own instruments, not some other server
    assert where["api-0"] == {"http": f"http://127.0.0.1:{http0}", "grpc": f"127.0.0.1:{grpc0}"}
    assert where["api-1"] == {"http": f"http://127.0.0.1:{http1}", "grpc": f"127.0.0.1:{grpc1}"}
    free_http, free_grpc = int(where["api-2"]["http"].rsplit(":", 1)[1]), int(where["api-2"]["grpc"].rsplit(":", 1)[1])
    assert 0 not in (free_http, free_grpc) and not {free_http, free_grpc} & {http0, http1, grpc0, grpc1}
    for name, (health, who, said, status) in got.items():  # each port is answered by its own instance
        assert (health, who, said, status) == (200, name, name, health_pb2.HealthCheckResponse.SERVING), name
    assert len(set(pids.values())) == 3  # three OS processes
    assert summary.checks_passed, [c for c in summary.checks if not c.passed]


def test_only_one_instance_binds_its_port_in_process_and_the_whole_plant_the_base_port(plant_dir):
    """--only api-1 (a host of its own, docs/deploy.md) binds api-1's ports, as its per_component child
    does; the whole plant in one process binds runtime.http.port (0 here: a free one)."""
    pytest.importorskip("grpc")
    http0, http1, grpc0, grpc1 = free_ports(4)
    manifest = (SERVING.replace("HTTP0", str(http0)).replace("HTTP1", str(http1))
                .replace("GRPC0", str(grpc0)).replace("GRPC1", str(grpc1)))
    path = plant_dir(manifest, plugin=SERVING_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")
    from forge_core.runtime import Runtime

    async def scenario(only):
        runtime = Runtime(loaded, plugins, only=only)
        await runtime.start()
        try:
            return runtime.http.url, runtime.grpc.target
        finally:
            await runtime.stop()

    assert asyncio.run(scenario(["api-1"])) == (f"http://127.0.0.1:{http1}", f"127.0.0.1:{grpc1}")
    url, target = asyncio.run(scenario(None))
    assert not {int(url.rsplit(":", 1)[1]), int(target.rsplit(":", 1)[1])} & {http0, http1, grpc0, grpc1}
