"""The dashboard's routes on a real socket, on a real plant: the page and its assets, one
snapshot, the SSE stream, dead-letter search, the tail, and actions refused unless enabled and
authenticated with the token from the environment."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from forge_core.dashboard import Dashboard, DashboardSettings
from forge_core.plant import load_plant
from forge_core.runtime import Runtime


def run(plant: object, settings: DashboardSettings, scenario) -> None:
    plugins, manifest = load_plant(plant / "plant.yaml")  # type: ignore[operator]

    async def main():
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        dashboard = Dashboard(runtime, settings)
        try:
            url = await dashboard.start()
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                await scenario(runtime, dashboard, client)
        finally:
            await runtime.stop()
            await dashboard.aclose()

    asyncio.run(main())


def test_page_assets_state_events_search_and_tail(plant_dir, basic_manifest):
    async def scenario(runtime, dashboard, client):
        page = await client.get("")
        assert page.status_code == 200 and "<title>Forge dashboard</title>" in page.text
        assert 'src="static/app.js"' in page.text  # relative: works under any mount path
        js = await client.get("static/app.js")
        assert js.status_code == 200 and "EventSource" in js.text
        assert (await client.get("static/style.css")).status_code == 200
        await asyncio.sleep(1.2)  # m1 publishes every second
        await runtime.bus.transport().publish("plant/m1/command", __import__("forge_core").Envelope(
            type="test.command", payload={"target": "m1"}, source="op"))  # no action: invalid
        await asyncio.sleep(0.1)
        state = (await client.get("api/state")).json()
        assert {c["instance"] for c in state["components"]} == {"m1", "m2"}
        assert state["dead_letters"]["total"] == 1
        found = (await client.get("api/dead-letters", params={"q": "action"})).json()["letters"]
        assert len(found) == 1 and found[0]["topic"] == "plant/m1/command"
        assert (await client.get("api/dead-letters", params={"q": "no such text"})).json()["letters"] == []
        tail = (await client.get("api/tail", params={"topic": "plant/m1/reading"})).json()["messages"]
        assert tail and all(m["topic"] == "plant/m1/reading" and m["type"] == "test.reading" for m in tail)
        async with client.stream("GET", "api/events", params={"q": "m1"}) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            seen = b""
            async for chunk in events.aiter_bytes():
                seen += chunk
                if b"event: tail" in seen:
                    break
        assert b"event: state" in seen and b'"instance":"m1"' in seen

    run(plant_dir(basic_manifest), DashboardSettings(port=0, interval=0.2), scenario)


@pytest.mark.parametrize(("actions", "token", "header", "status"), [
    (False, "s3cret", "Bearer s3cret", 403),   # read-only
    (True, None, "Bearer s3cret", 403),        # no token in the environment: nothing may act
    (True, "s3cret", "Bearer wrong", 401),
    (True, "s3cret", None, 401),
])
def test_actions_are_refused_unless_enabled_and_authenticated(plant_dir, basic_manifest, monkeypatch,
                                                              actions, token, header, status):
    if token is None:
        monkeypatch.delenv("FORGE_DASHBOARD_TOKEN", raising=False)
    else:
        monkeypatch.setenv("FORGE_DASHBOARD_TOKEN", token)

    async def scenario(runtime, dashboard, client):
        headers = {"authorization": header} if header else {}
        reply = await client.post("api/actions/kill/m1", headers=headers)
        assert reply.status_code == status, reply.text
        assert runtime.supervisors["m1"].state == "running"

    run(plant_dir(basic_manifest), DashboardSettings(port=0, actions=actions), scenario)


def test_kill_revive_and_clear_with_the_token(plant_dir, basic_manifest, monkeypatch):
    monkeypatch.setenv("PLANT_TOKEN", "t0k3n")
    auth = {"authorization": "Bearer t0k3n"}

    async def scenario(runtime, dashboard, client):
        assert (await client.get("api/info")).json()["actions"] is True
        reply = await client.post("api/actions/kill/m2", headers=auth)
        assert reply.json() == {"ok": True, "killed": "m2"} and runtime.supervisors["m2"].state == "killed"
        assert (await client.post("api/actions/revive/m2", headers=auth)).status_code == 200
        for _ in range(100):
            if runtime.supervisors["m2"].state == "running":
                break
            await asyncio.sleep(0.02)
        assert runtime.supervisors["m2"].state == "running"
        missing = await client.post("api/actions/kill/nobody", headers=auth)
        assert missing.status_code == 409 and "nobody" in missing.json()["error"]
        unknown = await client.post("api/actions/explode", headers=auth)
        assert unknown.status_code == 404 and "no action 'explode'" in unknown.json()["error"]
        cleared = await client.post("api/actions/clear-dead-letters", headers=auth)
        assert cleared.json() == {"ok": True, "cleared": 0}

    run(plant_dir(basic_manifest), DashboardSettings(port=0, actions=True, token_env="PLANT_TOKEN"), scenario)
