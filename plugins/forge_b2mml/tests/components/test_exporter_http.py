"""b2mml.exporter with destination http against a stub ERP on a real socket (a threaded HTTP server
on 127.0.0.1), in a plant on the real clock: retried until acknowledged, acknowledged in the POST's
answer or later through an inbox, a refusal not retried."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from forge_core import RealClock
from forge_core.runtime import Runtime, load_plant
from lxml import etree

from forge_b2mml.samples import SAMPLE_COMPLETION
from forge_b2mml.transactions import acknowledge
from forge_b2mml.validate import load


class StubErp:
    """Answers each POST with ``script[i]`` (the last one repeats): ``503``, ``202`` (no body), ``400``
    or ``ack`` (200 with the Acknowledge<Noun> of the posted document)."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.bodies.append(body)
                stub.headers.append(dict(self.headers))
                status, answer = stub.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/b2mml/performance"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: bytes) -> tuple[int, bytes]:
        step = self.script[min(len(self.bodies) - 1, len(self.script) - 1)]
        if step == "503":
            return 503, b"busy"
        if step == "202":
            return 202, b""
        if step == "400":
            return 400, b"unknown plant"
        doc = load(body, max_bytes=10**7)
        noun = doc.root.find(f"{{{doc.namespace}}}DataArea/{{{doc.namespace}}}{doc.noun}")
        return 200, acknowledge(version=doc.version, noun=doc.noun, ack_id=f"SAP-{len(self.bodies)}",
                                created="2026-01-01T00:00:00Z", accepted=True, sender="SAP", reasons=[],
                                echo=[etree.fromstring(etree.tostring(noun))]) or b""


@pytest.fixture
def erp() -> Iterator[Callable[[list[str]], StubErp]]:
    stubs: list[StubErp] = []

    def make(script: list[str]) -> StubErp:
        stub = StubErp(script)
        stub.thread.start()
        stubs.append(stub)
        return stub

    yield make
    for stub in stubs:  # no server left running
        stub.server.shutdown()
        stub.server.server_close()


def plant_dir(tmp_path: Path, url: str, **params: Any) -> Path:
    root = tmp_path / "plant"
    root.mkdir()
    components = {
        "exporter": {"type": "b2mml.exporter", "params": {"destination": "http", "url": url, "resend": 0.05,
                                                          "initial_backoff": 0.1, "max_backoff": 0.4, **params}},
        "erp_in": {"type": "b2mml.topic_inbox"},
    }
    (root / "plant.yaml").write_text(
        "version: 1\nplant: {name: b2mml_erp}\nplugins: [b2mml]\ntransports: {bus: {type: memory}}\n"
        f"default_transport: bus\ncomponents: {json.dumps(components)}\n"
        'storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: true}\n')
    return root


async def run(root: Path, scenario: Callable[[Runtime], Any]) -> None:
    plugins, manifest = load_plant(root)
    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False)
    await runtime.start()
    try:
        await scenario(runtime)
    finally:
        await runtime.stop()


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def exporter(runtime: Runtime) -> Any:
    return runtime.supervisors["exporter"].instance


def test_retried_until_the_erp_acknowledges_in_its_answer(tmp_path, erp):
    stub = erp(["503", "503", "ack"])

    async def scenario(runtime: Runtime) -> None:
        await runtime.bus.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION, source="test")
        await until(lambda: exporter(runtime).stats["acknowledged"] == 1)
        await asyncio.sleep(0.6)  # past the longest backoff: nothing more is sent

    asyncio.run(run(plant_dir(tmp_path, stub.url), scenario))
    assert len(stub.bodies) == 3, "two refusals (503), then the acknowledgement"
    for body, headers in zip(stub.bodies, stub.headers, strict=True):
        doc = load(body, max_bytes=10**7)  # every attempt is a valid document
        assert (doc.verb, doc.noun) == ("Process", "ProductionPerformance")
        assert headers["Content-Type"] == "application/xml" and headers["X-B2MML-Export-Id"] == "PERF-PRESP-0001"


def test_accepted_without_an_answer_then_acknowledged_through_the_inbox(tmp_path, erp):
    stub = erp(["202"])

    async def scenario(runtime: Runtime) -> None:
        await runtime.bus.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION, source="test")
        await until(lambda: len(stub.bodies) >= 2)  # delivered, not acknowledged: sent again
        assert exporter(runtime).ledger.unacknowledged() == 1
        doc = load(stub.bodies[0], max_bytes=10**7)
        noun = doc.root.find(f"{{{doc.namespace}}}DataArea/{{{doc.namespace}}}ProductionPerformance")
        ack = acknowledge(version="V0600", noun="ProductionPerformance", ack_id="SAP-LATE", created="2026-01-01T00:00:00Z",
                          accepted=True, sender="SAP", reasons=[], echo=[noun])
        await runtime.bus.publish("erp-production-schedule", "b2mml.document", {"xml": ack.decode()}, source="test")
        await until(lambda: exporter(runtime).ledger.unacknowledged() == 0)
        sent = len(stub.bodies)
        await asyncio.sleep(0.6)
        assert len(stub.bodies) == sent, "acknowledged: not sent again"

    asyncio.run(run(plant_dir(tmp_path, stub.url), scenario))


def test_a_refusal_is_settled_not_retried_and_no_erp_means_retries(tmp_path, erp):
    stub = erp(["400"])

    async def scenario(runtime: Runtime) -> None:
        await runtime.bus.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION, source="test")
        await until(lambda: exporter(runtime).stats["rejected_by_erp"] == 1)
        await asyncio.sleep(0.6)

    asyncio.run(run(plant_dir(tmp_path, stub.url), scenario))
    assert len(stub.bodies) == 1

    stub.server.shutdown()  # nobody listens at the URL any more: connection refused, retried
    stub.server.server_close()
    root = tmp_path / "again"
    root.mkdir()

    async def nobody(runtime: Runtime) -> None:
        await runtime.bus.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION, source="test")
        await until(lambda: exporter(runtime).stats["send_failures"] >= 2)
        assert exporter(runtime).ledger.unacknowledged() == 1

    asyncio.run(run(plant_dir(root, stub.url), nobody))


def test_http_destination_needs_a_url():
    from forge_core import SettingsError

    from forge_b2mml.settings import ExporterParams

    with pytest.raises(SettingsError, match="url"):
        ExporterParams.load({"destination": "http"}, where="components.exporter.params")
