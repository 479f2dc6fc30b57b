"""/ready checks the plant's database: a running plant whose database stops answering goes 503 naming
storage (the URL, password masked, and the driver's reason) and back to 200 when it answers again,
while /health (liveness) stays 200 throughout: a restart of the process would not bring it back."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from forge_core.plant import load_plant
from forge_core.runtime import Runtime
from forge_core.testing import TestPlant

PLANT = """
version: 1
plant: {name: stored}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 1.0}}
storage: {url: "%s"}
runtime:
  health: {port: 0, storage_timeout: 1.0, storage_interval: 0.05}
  metrics: {listen: "127.0.0.1:0"}
"""


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def until(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``probe`` (blocking: run off the loop, which keeps serving) until it returns something true."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await loop.run_in_executor(None, probe)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting for {what}")


def answering(runtime: Runtime, path: str, code: int) -> list[tuple[int, dict[str, Any]]] | None:
    """Both servers' answers to ``path`` once both say ``code``, else None."""
    answers = probes(runtime, path)
    return answers if all(got == code for got, _ in answers) else None


def probes(runtime: Runtime, path: str) -> list[tuple[int, dict[str, Any]]]:
    """``path`` from both servers that answer it: the threaded probe server and the runtime's HTTP server."""
    assert runtime.health_server is not None and runtime.http is not None and runtime.http.url is not None
    return [get(runtime.health_server.url + path), get(runtime.http.url + path)]


def test_a_postgresql_server_stopped_under_a_running_plant_fails_ready_until_it_is_back(
    plant_dir, postgres_server, postgres_url, monkeypatch
):
    monkeypatch.setenv("HEALTH_TEST_PASSWORD", "pw")  # trust auth ignores it; the probe must mask it
    plugins, manifest = load_plant(
        plant_dir(PLANT % postgres_url.replace("postgres@", "postgres:${env:HEALTH_TEST_PASSWORD}@"))
    )
    shown = postgres_url.replace("postgres@", "postgres:***@")

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        loop = asyncio.get_running_loop()
        try:
            up = await loop.run_in_executor(None, probes, runtime, "/ready")  # off the loop: it serves runtime.http
            await loop.run_in_executor(None, postgres_server.stop)
            down = await until(lambda: answering(runtime, "/ready", 503), "/ready to say 503")
            alive = await loop.run_in_executor(None, probes, runtime, "/health")
            await loop.run_in_executor(None, postgres_server.start)
            back = await until(lambda: answering(runtime, "/ready", 200), "/ready to say 200 again")
        finally:
            if not postgres_server.running:
                postgres_server.start()
            await runtime.stop()
        return up, down, alive, back

    up, down, alive, back = asyncio.run(scenario())
    for code, body in up + back:
        assert code == 200 and body["storage"] == {"ok": True, "url": shown}
    for code, body in down:
        assert code == 503 and body["status"] == "unavailable" and body["storage"]["ok"] is False
        assert body["storage"]["url"] == shown and body["storage"]["error"], body["storage"]
        assert ":pw@" not in json.dumps(body)
        assert body["components"]["m1"]["state"] == "running", "only the database is down"
    assert [code for code, _ in alive] == [200, 200], "liveness does not fail on a dependency"


def test_a_sqlite_file_gone_fails_ready_not_health_and_its_return_is_seen(plant_dir):
    plugins, manifest = load_plant(plant_dir(PLANT % "sqlite:///{plant_dir}/plant.db"))
    database = manifest.plant_dir / "plant.db"

    async def scenario():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            up = runtime.health_snapshot()
            database.rename(database.with_suffix(".moved"))
            gone = await until(lambda: not (s := runtime.health_snapshot())[1] and s, "not ready")
            database.with_suffix(".moved").rename(database)
            back = await until(lambda: (s := runtime.health_snapshot())[1] and s, "ready again")
        finally:
            await runtime.stop()
        return up, gone, back, runtime.storage_probe

    up, gone, back, probe = asyncio.run(scenario())
    assert up[:2] == back[:2] == (True, True) and up[2]["storage"] == {"ok": True, "url": f"sqlite:///{database}"}
    healthy, ready, detail = gone
    assert (healthy, ready) == (True, False)
    assert detail["storage"] == {"ok": False, "url": f"sqlite:///{database}", "error": "unable to open database file"}
    assert probe is None, "the probe stops with the plant"


def test_under_virtual_time_no_probe_runs_and_the_detail_has_no_storage(plant_dir):
    with TestPlant(plant_dir(PLANT % "sqlite:///{plant_dir}/plant.db")) as plant:
        plant.advance(2)
        healthy, ready, detail = plant.runtime.health_snapshot()
        assert (healthy, ready) == (True, True) and "storage" not in detail
        assert plant.runtime.storage_probe is None
