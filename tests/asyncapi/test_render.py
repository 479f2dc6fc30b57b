"""The readable page and its ASGI app: served locally with nothing fetched from elsewhere."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from forge_core.asyncapi import asgi_app, build_document, render_html

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def doc() -> dict:
    return build_document(EXAMPLES / "sensor_monitoring", profile="cluster", env={})


def test_the_page_shows_servers_operations_channels_and_payloads(doc: dict) -> None:
    page = render_html(doc)
    assert "<h1>sensor_monitoring</h1>" in page
    assert "sensors/{sensor_id}/reading" in page and "sensor-data" in page
    assert "id='channel-mqtt.sensors.sensor_id.reading'" in page
    assert "<td class=send>send</td>" in page and "<td class=receive>receive</td>" in page
    assert "&quot;sensor_id&quot;" in page  # the payload schema, escaped
    # no CDN, no script, nothing loaded from another origin: links stay on the page or beside it
    assert "<script" not in page and "<link" not in page and "src=" not in page and "@import" not in page
    links = re.findall(r"href=['\"]([^'\"]*)", page)
    assert links and all(link.startswith("#") or link in ("asyncapi.json", "asyncapi.yaml") for link in links)


def test_markup_in_a_document_is_escaped(doc: dict) -> None:
    evil = {**doc, "info": {**doc["info"], "title": "<script>alert(1)</script>"}}
    page = render_html(evil)
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_the_asgi_app_serves_page_json_and_yaml(doc: dict) -> None:
    async def fetch() -> None:
        transport = httpx.ASGITransport(app=asgi_app(lambda: doc))
        async with httpx.AsyncClient(transport=transport, base_url="http://plant") as client:
            page = await client.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert json.loads((await client.get("/asyncapi.json")).text) == doc
            assert yaml.safe_load((await client.get("/asyncapi.yaml")).text) == doc
            assert (await client.get("/elsewhere")).status_code == 404

    asyncio.run(fetch())
