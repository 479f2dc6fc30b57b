"""Where the dashboard is served (the runtime's HTTP server, or a port of its own), the URL file
the multi-process parent links, and a stop that is not held up by an open page."""

from __future__ import annotations

import asyncio
import socket

import httpx

from forge_core.dashboard import Dashboard, DashboardSettings
from forge_core.dashboard.service import URL_FILE
from forge_core.plant import load_plant
from forge_core.runtime import Runtime


def test_mounted_on_the_runtime_http_server_then_released(plant_dir, basic_manifest):
    plugins, manifest = load_plant(plant_dir(basic_manifest) / "plant.yaml")

    async def main():
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        dashboard = Dashboard(runtime, DashboardSettings(path="/ops"))
        url = await dashboard.start()
        assert runtime.http.url is not None and url == f"{runtime.http.url}/ops/"
        assert runtime.http.mounts() == {"/ops": "forge.dashboard"}
        assert (runtime.data_dir / URL_FILE).read_text().strip() == url
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(runtime.http.url + "/ops", follow_redirects=True)).status_code == 200
            assert (await client.get(runtime.http.url + "/ready")).status_code == 200  # the probes still answer
        await dashboard.aclose()
        assert runtime.http.mounts() == {} and not (runtime.data_dir / URL_FILE).exists()
        await runtime.stop()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_own_port_and_an_open_page_ends_cleanly_when_the_plant_stops(plant_dir, basic_manifest):
    plugins, manifest = load_plant(plant_dir(basic_manifest) / "plant.yaml")
    port = free_port()

    async def main():
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        dashboard = Dashboard(runtime, DashboardSettings(port=port, interval=0.1))
        url = await dashboard.start()
        assert url == f"http://127.0.0.1:{port}/dashboard/"
        assert runtime.http.url is None  # the runtime's own server was not started for it
        async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url + "api/events") as events:
            chunks = events.aiter_bytes()
            async for chunk in chunks:
                if b"event: state" in chunk:
                    break
            await runtime.stop()  # forge_plant_stopping ends the stream: the server need not cut it
            rest = [chunk async for chunk in chunks]  # ends, no RemoteProtocolError
        await dashboard.aclose()
        return rest

    asyncio.run(main())


def test_tail_off_subscribes_nothing(plant_dir, basic_manifest):
    plugins, manifest = load_plant(plant_dir(basic_manifest) / "plant.yaml")

    async def main():
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        dashboard = Dashboard(runtime, DashboardSettings(tail=False))
        await dashboard.start()
        await asyncio.sleep(1.2)  # m1 publishes every second
        snapshot = dashboard.collector.snapshot()
        await runtime.stop()
        await dashboard.aclose()
        return snapshot

    snapshot = asyncio.run(main())
    assert snapshot["topics"] == [] and snapshot["transports"][0]["messages"] == 0
    assert {c["instance"] for c in snapshot["components"]} == {"m1", "m2"}  # the rest still shows
