"""b2mml.http_inbox: a real HTTP client against the runtime's HTTP server (ctx.http) on a free port, in
a plant on the real clock; and the same handlers in-process under virtual time (ctx.http.app)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from forge_core import RealClock
from forge_core.runtime import Runtime, load_plant
from forge_core.testing import find_free_port

DATA = Path(__file__).parents[1] / "data"


async def _with_plant(root: Path, port: int, scenario) -> list:
    plugins, manifest = load_plant(root)
    seen: list = []

    async def tap(topic, message):
        seen.append((topic, message))

    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False, tap=tap)
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await scenario(client)
        await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    return seen


def plant_at(tmp_path: Path) -> tuple[Path, int]:
    import json

    port = find_free_port()
    root = tmp_path / "plant"
    root.mkdir()
    components = {"http": {"type": "b2mml.http_inbox"}}
    (root / "plant.yaml").write_text(
        "version: 1\nplant: {name: b2mml_http}\nplugins: [b2mml]\ntransports: {bus: {type: memory}}\n"
        f"default_transport: bus\ncomponents: {json.dumps(components)}\n"
        f"runtime: {{http: {{host: 127.0.0.1, port: {port}}}}}\n"
        'storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: true}\n')
    return root, port


def test_post_schedule_202_then_duplicate_then_400(tmp_path):
    root, port = plant_at(tmp_path)
    answers = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        xml = (DATA / "production_schedule.xml").read_bytes()
        headers = {"Content-Type": "application/xml"}
        answers["first"] = await client.post("/b2mml/schedule", content=xml, headers=headers)
        answers["again"] = await client.post("/b2mml/schedule", content=xml, headers=headers)
        answers["xml_ack"] = await client.post("/b2mml/schedule", content=xml,
                                               headers={**headers, "Accept": "application/xml"})
        bad = xml.replace(b"PublishedDate", b"PublicationDate")
        answers["bad"] = await client.post("/b2mml/schedule", content=bad, headers=headers)
        answers["kind"] = await client.post("/b2mml/routing", content=xml, headers=headers)
        answers["json"] = await client.post("/b2mml/schedule", content=xml, headers={"Content-Type": "text/plain"})
        answers["unknown"] = await client.post("/b2mml/nothing", content=xml, headers=headers)
        answers["big"] = await client.post("/b2mml/schedule", content=b"<a>" + b"x" * (11 * 1024 * 1024) + b"</a>",
                                           headers=headers)

    seen = asyncio.run(_with_plant(root, port, scenario))
    first = answers["first"]
    assert first.status_code == 202 and first.json()["accepted"] is True and first.json()["messages"] == 1
    assert first.headers["X-B2MML-Ack-Id"] == first.json()["ack_id"]
    assert answers["again"].status_code == 202 and answers["again"].json()["duplicates"] == 1
    assert answers["xml_ack"].headers["content-type"].startswith("application/xml")
    assert b"AcknowledgeProductionSchedule" in answers["xml_ack"].content
    bad = answers["bad"]
    assert bad.status_code == 400
    assert "Unexpected child PublicationDate at /ProductionSchedule" in bad.json()["errors"][0]["message"]
    assert bad.json()["errors"][0]["line"] == 7
    assert answers["kind"].status_code == 400 and "expected a routing document" in answers["kind"].json()["summary"]
    assert answers["json"].status_code == 415
    assert answers["unknown"].status_code == 404
    assert answers["big"].status_code == 413
    requests = [m for t, m in seen if t == "b2mml/production_request"]
    assert len(requests) == 1 and requests[0].payload["request_id"] == "PR-0001"


def test_one_port_for_the_inbox_and_the_runtime_probes(tmp_path):
    """The inbox is a mount on the runtime's server: /health answers on the same port, and the port is
    closed once the plant stops (no server of the component's own left behind)."""
    root, port = plant_at(tmp_path)
    answers = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        answers["health"] = await client.get("/health")
        answers["get"] = await client.get("/b2mml/schedule")

    asyncio.run(_with_plant(root, port, scenario))
    assert answers["health"].status_code == 200
    assert answers["get"].status_code == 405  # the route exists for POST only
    with __import__("socket").socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing listens after the plant stopped"


def test_in_process_under_virtual_time(b2mml_plant):
    """No socket under virtual time: the runtime's ASGI app reaches the same handler."""
    plant = b2mml_plant({"http": {"type": "b2mml.http_inbox"}})
    app = plant.runtime.http.app
    xml = (DATA / "production_schedule.xml").read_bytes()

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://plant") as client:
            return await client.post("/b2mml/schedule", content=xml, headers={"Content-Type": "application/xml"})

    answer = plant._run(post())
    assert answer.status_code == 202 and answer.json()["messages"] == 1
    assert plant.runtime.http.url is None
    [request] = plant.sent("b2mml/production_request", type="b2mml.production_request")
    assert request.payload["request_id"] == "PR-0001"
