"""The web dashboard in a real browser (headless Chromium from Debian, driven by Playwright) on the
pasta plant running on the real clock in this process: the page lists every instance and the
plant's panel; a machine killed from the page turns DOWN there; a malformed heartbeat becomes a
dead letter that appears, with its error, and is found by the search.

The plant runs on its own event loop in a thread (the test drives the browser synchronously).
Bounds are the dashboard's promise — a change shows within one push interval (here 0.5 s) — with
slack for a loaded machine: a wait that passes its bound fails the test, naming what never showed.
``FORGE_DASHBOARD_SCREENSHOTS=DIR`` also saves the screenshots of docs/dashboard.md into DIR."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pasta_plant.testing import derive

from forge_core.clock import RealClock
from forge_core.dashboard import Dashboard, DashboardSettings
from forge_core.messages.envelope import RawMessage
from forge_core.plant import load_plant
from forge_core.runtime import Runtime

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (scripts/setup.sh does)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt install chromium (scripts/setup.sh does)")]

INTERVAL = 0.5
BOUND_MS = 15_000  # one push is 0.5 s; the rest is slack for a machine running the suite beside other work
TOKEN = "test-token-for-the-browser"


class PlantThread:
    """The pasta plant and its dashboard on an event loop of their own."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="plant", daemon=True)
        self.thread.start()
        plugins, manifest = load_plant(directory / "plant.yaml")
        self.runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False)
        self.dashboard = Dashboard(self.runtime, DashboardSettings(interval=INTERVAL, actions=True,
                                                                   token_env="PASTA_DASHBOARD_TOKEN"))

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=120)

    def start(self) -> str:
        self.call(self.runtime.start())
        return str(self.call(self.dashboard.start()))

    def stop(self) -> None:
        try:
            self.call(self.runtime.stop())
            self.call(self.dashboard.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


@pytest.fixture
def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PlantThread, str]]:
    monkeypatch.setenv("PASTA_DASHBOARD_TOKEN", TOKEN)
    running = PlantThread(derive(tmp_path / "plant", drop=("chaos",)))
    try:
        url = running.start()
        yield running, url
    finally:
        running.stop()


def shoot(page: Any, name: str, selector: str | None = None) -> None:
    directory = os.environ.get("FORGE_DASHBOARD_SCREENSHOTS")
    if not directory:
        return
    path = str(Path(directory) / f"dashboard-{name}.png")
    if selector is None:
        page.screenshot(path=path, full_page=True)
        return
    for attempt in range(5):  # the page redraws a panel on each push: its node may be replaced mid-shot
        try:
            page.locator(selector).screenshot(path=path)
            return
        except playwright.Error:
            if attempt == 4:
                raise
            page.wait_for_timeout(100)


def test_the_page_shows_the_plant_a_killed_machine_down_and_a_dead_letter(plant: tuple[PlantThread, str]) -> None:
    # Playwright's sync API runs on greenlets; in a thread of its own they leave pytest's main thread
    # as it was (on 3.11 they upset the interpreter's recursion count for later imports there)
    with ThreadPoolExecutor(1) as browser_thread:
        browser_thread.submit(drive, *plant).result()


def drive(running: PlantThread, url: str) -> None:
    runtime = running.runtime
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            # every instance of the process, each UP once it runs
            for instance in runtime.supervisors:
                page.wait_for_selector(f'#components tr[data-instance="{instance}"][data-status="UP"]',
                                       timeout=BOUND_MS)
            listed = page.eval_on_selector_all("#components tbody tr", "rows => rows.map(r => r.dataset.instance)")
            assert sorted(listed) == sorted(runtime.supervisors)
            assert page.inner_text("#live") == "live"
            # the plant's own panel: machines with their blades, once the scheduler assigned them
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-panel="pasta plant"] tbody tr')]
                         .filter(r => r.cells[3] && /^[AB]$/.test(r.cells[3].textContent)).length === 3""",
                timeout=BOUND_MS * 2)
            page.wait_for_selector('#leases tr[data-lease="scheduler"]', timeout=BOUND_MS)
            assert page.inner_text('#leases tr[data-lease="scheduler"] td:nth-child(2)') in ("scheduler-0",
                                                                                              "scheduler-1")
            shoot(page, "overview")
            shoot(page, "pasta-panel", '[data-panel="pasta plant"]')

            # kill machine-1 from the page (token typed into the page, as an operator would)
            page.fill("#token", TOKEN)
            page.click('#components tr[data-instance="machine-1"] button:text("kill")')
            page.wait_for_selector('#components tr[data-instance="machine-1"][data-status="DOWN"]', timeout=BOUND_MS)
            assert runtime.supervisors["machine-1"].state == "killed"
            assert page.inner_text('#components tr[data-instance="machine-1"] td:nth-child(4)') == "killed"
            page.wait_for_function(  # the panel's instance column too
                """() => [...document.querySelectorAll('[data-panel="pasta plant"] tbody tr')]
                         .some(r => r.cells[0].textContent === '1' && r.cells[1].textContent === 'DOWN')""",
                timeout=BOUND_MS)
            shoot(page, "components", "#components-card")

            # a malformed heartbeat from outside (machineId must be an integer): a dead letter on the page
            bad = b'{"title": "heartbeat", "machineId": "zero", "bladeType": "A"}'
            running.call(runtime.transports["bus"].publish_raw("heartbeats", RawMessage(bad)))
            page.wait_for_selector('#dead-letters tr[data-reason="invalid"]', timeout=BOUND_MS)
            row = page.inner_text('#dead-letters tr[data-reason="invalid"]')
            assert "heartbeats" in row and "machineId" in row and "zero" in row
            assert page.inner_text("#dl-total") == str(runtime.dead_letters.total)
            assert "invalid: 1" in page.inner_text("#dl-reasons")
            page.fill("#dl-search", "zero")
            page.wait_for_function("() => document.querySelectorAll('#dead-letters tbody tr').length === 1",
                                   timeout=BOUND_MS)
            page.fill("#dl-search", "no such letter")
            page.wait_for_function("() => document.querySelectorAll('#dead-letters tbody tr').length === 0",
                                   timeout=BOUND_MS)
            page.fill("#dl-search", "")
            page.wait_for_selector('#dead-letters tr[data-reason="invalid"]', timeout=BOUND_MS)
            shoot(page, "dead-letters", "#dead-letters-card")

            # the live tail, filtered to one topic
            page.select_option("#tail-topic", "storage/levels")
            page.wait_for_function(
                """() => { const rows = [...document.querySelectorAll('#tail tbody tr')];
                           return rows.length > 0 && rows.every(r => r.cells[1].textContent === 'storage/levels'); }""",
                timeout=BOUND_MS * 2)
            shoot(page, "tail", "#tail-card")
        finally:
            browser.close()
