"""ctx.grpc: components add servicers to the process's one grpc.aio server on a real port, with
the standard health service and reflection; a service is owned, and goes NOT_SERVING when its
component stops; under virtual time nothing listens and the servicer is reachable in-process."""

from __future__ import annotations

import asyncio

import pytest

grpc = pytest.importorskip("grpc")
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402

from forge_core.plant import load_plant  # noqa: E402
from forge_core.runtime import Runtime  # noqa: E402
from forge_core.serving import GrpcHost  # noqa: E402
from forge_core.testing import TestPlant  # noqa: E402

# A servicer without generated stubs: a generic handler for test.v1.Echo/Say over raw bytes.
PLUGIN = '''
import grpc
from forge_core import Component, hookimpl


class Echo:
    def __init__(self, name):
        self.name = name

    async def Say(self, request, context):
        return self.name.encode() + b": " + request


def add_echo(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer.Say)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.v1.Echo", {"Say": handler}),))


class Service(Component):
    async def start(self):
        await self.ctx.grpc.add(add_echo, Echo(self.name), "test.v1.Echo")


@hookimpl
def forge_register_components(registry):
    registry.add("test.echo", Service)
'''

MANIFEST = """
version: 1
plant: {name: rpc}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  echo: {type: test.echo}
runtime: {health: false}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def test_a_servicer_is_served_with_health_and_reflection_on_a_real_port(plant_dir):
    plugins, manifest = load_plant(plant_dir(MANIFEST, plugin=PLUGIN) / "plant.yaml")

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            target = runtime.grpc.target
            assert target is not None and target.startswith("127.0.0.1:")
            async with grpc.aio.insecure_channel(target) as channel:
                say = channel.unary_unary("/test.v1.Echo/Say")
                answer = await say(b"hello", timeout=5)
                health = health_pb2_grpc.HealthStub(channel)
                serving = await health.Check(health_pb2.HealthCheckRequest(service="test.v1.Echo"), timeout=5)
                unknown = None
                try:
                    await health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    unknown = exc.code()
                reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
                replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
                listed = [s.name async for r in replies for s in r.list_services_response.service]
            ready = runtime.health_snapshot()[2]["grpc"]
            await runtime.supervisors["echo"].stop()
            async with grpc.aio.insecure_channel(target) as channel:
                after = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="test.v1.Echo"), timeout=5)
        finally:
            await runtime.stop()
        return answer, serving.status, unknown, listed, ready, after.status

    answer, serving, unknown, listed, ready, after = asyncio.run(scenario())
    assert answer == b"echo: hello"
    assert serving == health_pb2.HealthCheckResponse.SERVING
    assert unknown == grpc.StatusCode.NOT_FOUND
    assert {"test.v1.Echo", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(listed)
    assert ready["services"] == {"test.v1.Echo": "echo"}
    assert after == health_pb2.HealthCheckResponse.NOT_SERVING  # its component stopped


def test_a_service_name_is_owned():
    async def scenario():
        host = GrpcHost(listen=False)
        await host.add(lambda servicer, server: None, object(), "a.B", owner="one")
        with pytest.raises(ValueError, match="already served by 'one'"):
            await host.add(lambda servicer, server: None, object(), "a.B", owner="two")
        with pytest.raises(KeyError, match=r"no gRPC service 'x\.Y'"):
            host.servicer("x.Y")
        assert host.target is None

    asyncio.run(scenario())


def test_under_virtual_time_the_servicer_is_called_in_process(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN)) as plant:
        assert plant.runtime.grpc.target is None
        servicer = plant.runtime.grpc.servicer("test.v1.Echo")
        assert plant._run(servicer.Say(b"hi", None)) == b"echo: hi"
        healthy, ready, detail = plant.runtime.health_snapshot()
        assert (healthy, ready) == (True, True), "nothing listens under virtual time: nothing to be down"
        assert detail["grpc"] == {"ok": True, "state": "in-process", "target": None,
                                  "services": {"test.v1.Echo": "echo"}}


def test_ready_only_while_the_grpc_server_serves_and_alive_all_along(plant_dir):
    plugins, manifest = load_plant(plant_dir(MANIFEST, plugin=PLUGIN) / "plant.yaml")

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            serving = runtime.health_snapshot()
            closing = asyncio.create_task(runtime.grpc.aclose())  # the server going away under a running plant
            await asyncio.sleep(0)  # the close has begun: it awaits the server's stop
            stopping = runtime.health_snapshot()
            await closing
            stopped = runtime.health_snapshot()
        finally:
            await runtime.stop()
        return serving, stopping, stopped

    serving, stopping, stopped = asyncio.run(scenario())
    healthy, ready, detail = serving
    assert (healthy, ready) == (True, True)
    target = detail["grpc"]["target"]
    assert target.startswith("127.0.0.1:")
    assert detail["grpc"] == {"ok": True, "state": "serving", "target": target, "services": {"test.v1.Echo": "echo"}}
    for (healthy, ready, detail), state in ((stopping, "stopping"), (stopped, "stopped")):
        assert (healthy, ready) == (True, False), f"a {state} gRPC server fails readiness, not liveness"
        assert detail["grpc"]["ok"] is False and detail["grpc"]["state"] == state
