"""ctx.http: components mount ASGI apps on the process's one HTTP server (a real socket on a real
clock), the probes answer on the same port, mounts are owned and released, and under virtual time
nothing listens but the same app answers in-process."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from forge_core.plant import load_plant
from forge_core.runtime import Runtime
from forge_core.serving import HttpHost, HttpMounts
from forge_core.testing import TestPlant

PLUGIN = '''
from forge_core import Component, hookimpl
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


class Api(Component):
    async def start(self):
        async def hello(request):
            return JSONResponse({"from": self.name, "path": request.url.path,
                                 "id": request.path_params.get("id")})

        app = Starlette(routes=[Route("/", hello), Route("/items/{id}", hello)])
        await self.ctx.http.mount(self.params.get("prefix", "/"), app)


@hookimpl
def forge_register_components(registry):
    registry.add("test.api", Api)
'''

MANIFEST = """
version: 1
plant: {name: served}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  root: {type: test.api, params: {prefix: /}}
  orders: {type: test.api, params: {prefix: /orders}}
runtime: {health: false}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def test_mounted_apps_and_the_probes_share_one_real_port(plant_dir):
    plugins, manifest = load_plant(plant_dir(MANIFEST, plugin=PLUGIN) / "plant.yaml")

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            url = runtime.http.url
            assert url is not None and url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=url) as client:
                root = (await client.get("/")).json()
                item = (await client.get("/orders/items/7")).json()
                ready = await client.get("/ready")
                missing = await client.get("/orders/nothing")
            assert root == {"from": "root", "path": "/", "id": None}
            assert item == {"from": "orders", "path": "/orders/items/7", "id": "7"}  # longest prefix wins
            assert ready.status_code == 200 and ready.json()["http"]["mounts"] == {"/": "root", "/orders": "orders"}
            assert missing.status_code == 404  # the mounted app's own 404
        finally:
            await runtime.stop()
        return url

    url = asyncio.run(scenario())
    with pytest.raises(httpx.ConnectError):  # closed with the plant
        httpx.get(url + "/ready", timeout=2)


def test_a_prefix_is_owned_and_released():
    async def scenario():
        host = HttpHost(listen=False)

        async def app(scope, receive, send):
            raise AssertionError("not called")

        await host.mount("/orders", app, owner="orders-0")
        with pytest.raises(ValueError, match="already mounted by 'orders-0'"):
            await host.mount("/orders/", app, owner="orders-1")
        with pytest.raises(ValueError, match="probe path"):
            await host.mount("/ready", app, owner="x")
        with pytest.raises(ValueError, match="must start with '/'"):
            await host.mount("orders", app, owner="x")
        await host.mount("/orders", app, owner="orders-0")  # a restart of the owner mounts again
        host.release("orders-0")
        await host.mount("/orders", app, owner="orders-1")
        assert host.mounts() == {"/orders": "orders-1"} and host.url is None

    asyncio.run(scenario())


def test_ctx_http_says_whether_a_prefix_is_taken_and_by_whom():
    async def scenario():
        host = HttpHost(listen=False)

        async def app(scope, receive, send):
            raise AssertionError("not called")

        active, standby = HttpMounts(host, "pms-0"), HttpMounts(host, "pms-1")
        assert not standby.is_mounted("/orders") and standby.mounted_by("/orders") is None
        await active.mount("/orders", app)
        for prefix in ("/orders", "/orders/"):
            assert standby.is_mounted(prefix) and active.is_mounted(prefix)
            assert standby.mounted_by(prefix) == "pms-0" == host.mounted_by(prefix)
        assert not standby.is_mounted("/orders/1") and not standby.is_mounted("/")  # exact prefixes only
        with pytest.raises(ValueError, match="must start with '/'"):
            standby.is_mounted("orders")
        host.release("pms-0")  # the active one stopped: the standby sees it free and mounts
        assert not standby.is_mounted("/orders")
        await standby.mount("/orders", app)
        assert active.mounted_by("/orders") == "pms-1"

    asyncio.run(scenario())


def test_under_virtual_time_nothing_listens_and_the_app_answers_in_process(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN)) as plant:
        host = plant.runtime.http
        assert host.url is None

        async def call():
            transport = httpx.ASGITransport(app=host.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://plant") as client:
                return (await client.get("/orders/items/3")).json(), (await client.get("/health")).status_code

        body, health = plant._run(call())
        assert body == {"from": "orders", "path": "/orders/items/3", "id": "3"} and health == 200


def test_forge_run_prints_where_the_apis_answer(plant_dir):
    import subprocess
    import sys

    path = plant_dir(MANIFEST, plugin=PLUGIN)
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(path), "--duration", "2s"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next((x for x in (result.stdout + result.stderr).splitlines() if "HTTP on http://127.0.0.1:" in x), None)
    assert line is not None, result.stdout[-2000:]
    assert "/ (root)" in line and "/orders (orders)" in line


def test_a_component_that_says_it_is_not_ready_makes_ready_503(plant_dir):
    plugin = PLUGIN.replace('''        await self.ctx.http.mount(self.params.get("prefix", "/"), app)''',
                            '''        await self.ctx.http.mount(self.params.get("prefix", "/"), app)

    def health(self):
        return {"ready": self.params.get("prefix") != "/orders", "database": "unreachable"}''')
    plugins, manifest = load_plant(plant_dir(MANIFEST, plugin=plugin) / "plant.yaml")

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            async with httpx.AsyncClient(base_url=runtime.http.url) as client:
                return await client.get("/ready"), await client.get("/health")
        finally:
            await runtime.stop()

    ready, health = asyncio.run(scenario())
    assert ready.status_code == 503 and ready.json()["components"]["orders"]["database"] == "unreachable"
    assert health.status_code == 200  # alive, just not ready


def test_a_released_prefix_answers_503_retry_after_until_it_is_mounted_again():
    """A leader's REST mount disappears when it dies until the standby mounts: a client must be told
    to retry (503, Retry-After), not that the path does not exist (404: the industry40 clients gave up)."""
    async def scenario():
        host = HttpHost(listen=False)

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        await host.mount("/", app, owner="pms-0")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=host.app), base_url="http://plant")
        first = await client.post("/orders")
        host.release("pms-0")
        gap = await client.post("/orders")
        await host.mount("/", app, owner="pms-1")
        after = await client.post("/orders")
        await client.aclose()
        return first, gap, after

    first, gap, after = asyncio.run(scenario())
    assert first.status_code == 200 and after.status_code == 200
    assert gap.status_code == 503 and gap.headers["retry-after"] == "1" and "pms-0" in gap.json()["error"]


def test_a_taken_fixed_port_is_the_mount_s_error_naming_it_and_a_later_mount_binds_it():
    """uvicorn exits the process when it cannot bind; with fixed ports (runtime.http.ports) a taken port
    must be an error the component's start raises, naming host:port, not a silent exit of the process."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario():
        host = HttpHost("127.0.0.1", port)
        with pytest.raises(RuntimeError, match=f"could not bind 127.0.0.1:{port}"):
            await host.mount("/a", app, owner="api")
        assert host.url is None
        holder.close()
        await host.mount("/a", app, owner="api")  # a restart of the component, once the port is free
        try:
            assert host.url == f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{host.url}/a")).text == "ok"
        finally:
            await host.aclose()

    asyncio.run(scenario())
