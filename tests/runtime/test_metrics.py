"""``/metrics``: scrape running plants over real HTTP and read the text with Prometheus's own parser."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from forge_core.messages.envelope import RawMessage
from forge_core.plant import load_plant
from forge_core.runtime.runtime import Runtime
from forge_core.testing import TestPlant

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]

pytestmark = pytest.mark.timeout(120)


def parse(text: str) -> Samples:
    """sample name -> sorted labels -> value (the parser refuses malformed exposition text)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for key, found in samples.get(name, {}).items():
        if all(dict(key).get(k) == v for k, v in labels.items()):
            return found
    return None


def local_client() -> httpx.AsyncClient:
    """A client for the plant's plain-HTTP port on 127.0.0.1. httpx's defaults were made for the internet and
    are wrong here under load: ``verify=True`` loads certifi's CA bundle into a new TLS context for every client
    (~45 ms of CPU, seconds of wall time at load 15+) although no request uses TLS, and the 5 s timeout ran out
    while the plant shared the loaded loop. No TLS context, no proxy from the environment, and a timeout that
    only ends a hung test (the test's own limit is 120 s)."""
    return httpx.AsyncClient(verify=False, trust_env=False, timeout=60.0)


async def scrape(runtime: Runtime) -> tuple[str, Samples]:
    assert runtime.http is not None and runtime.http.url is not None, "the HTTP server listens"
    async with local_client() as client:
        response = await client.get(runtime.http.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text, parse(response.text)


async def until(condition: Callable[[], Awaitable[bool]], what: str, limit: float = 30.0) -> None:
    """Poll on the plant's loop; the limit only ends a hung test (nothing asserts how long it took)."""
    for _ in range(int(limit / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw {what}")


def test_a_running_pasta_plant_is_scraped_with_its_counts_kills_restarts_and_dead_letters(tmp_path: Path) -> None:
    from pasta_plant.testing import derive

    directory = derive(tmp_path / "pasta", drop=("monitor", "chaos"),
                       runtime={"health": False, "metrics": {"listen": "127.0.0.1:0"}})
    plugins, manifest = load_plant(directory)

    async def main() -> dict[str, Any]:
        runtime = Runtime(manifest, plugins, data_dir=tmp_path / "data")
        await runtime.start()
        try:
            assert runtime.http is not None and runtime.http.mounts() == {}, "no component mounted anything"
            bus, transport = runtime.bus, runtime.transports["bus"]
            assert bus is not None
            await asyncio.sleep(1.0)
            # two dead letters of two reasons, as a network client would cause them
            await transport.publish_raw("heartbeats", RawMessage(b"not json", {}))  # type: ignore[attr-defined]
            await transport.publish_raw("heartbeats", RawMessage(b'{"title": "heartbeat", "machineId": "x"}', {}))  # type: ignore[attr-defined]
            await runtime.kill("machine-1")
            runtime.revive("machine-1")

            async def boom() -> None:
                raise RuntimeError("metrics test: sorting crashes")

            sorting = runtime.supervisors["sorting"]
            assert sorting.context is not None
            sorting.context.spawn(boom())

            async def restarted() -> bool:
                return sorting.restarts == 1 and sorting.state == "running"

            await until(restarted, "sorting restarted")
            await asyncio.sleep(1.0)
            before = {k: dict(getattr(bus.stats, k)) for k in ("published", "handled")}
            text, samples = await scrape(runtime)
            after = {k: dict(getattr(bus.stats, k)) for k in ("published", "handled")}
            leader = next(name for name in ("scheduler-0", "scheduler-1")
                          if runtime.supervisors[name].instance.elector.is_leader)  # type: ignore[union-attr]
            dead = dict(runtime.dead_letters.counts)
            return {"text": text, "samples": samples, "before": before, "after": after, "leader": leader,
                    "dead": dead, "summary": await runtime.stop()}
        finally:
            await runtime.stop()

    run = asyncio.run(main())
    samples, summary = run["samples"], run["summary"]
    # per type: between what the bus had counted just before and just after the scrape
    for kind in ("published", "handled"):
        scraped = {dict(k)["type"]: v for k, v in samples[f"forge_bus_{kind}_total"].items()}
        assert set(run["before"][kind]) <= set(scraped) <= set(run["after"][kind]), kind
        for type_, count in run["after"][kind].items():
            assert run["before"][kind].get(type_, 0) <= scraped.get(type_, 0) <= count, (kind, type_)
        assert set(scraped) <= set(getattr(summary, kind)), "no type the run's report lacks"
    assert value(samples, "forge_bus_published_total", type="sched.machine_heartbeat")
    # the memory transport's own count of what it carried
    assert value(samples, "forge_transport_messages_total", transport="bus", direction="published") \
        >= sum(run["before"]["published"].values())
    assert value(samples, "forge_transport_connected", transport="bus") == 1
    # dead letters per reason, exactly the channel's counts (and the run's report)
    assert run["dead"] == {"decode_error": 1, "invalid": 1}
    for reason, count in run["dead"].items():
        assert value(samples, "forge_dead_letters_total", reason=reason) == count
        assert value(samples, "forge_messages_dead_lettered_total", reason=reason) == count
        assert summary.dead_letters[reason] >= count
    # the kill and the crash
    assert value(samples, "forge_component_kills_total", component="machine-1") == 1
    assert value(samples, "forge_component_kills_total", component="machine-0") == 0
    assert value(samples, "forge_component_restarts_total", component="sorting") == 1
    assert summary.restarts.get("sorting") == 1
    assert value(samples, "forge_component_state", component="machine-1", state="running") == 1
    assert value(samples, "forge_component_state", component="machine-1", state="killed") == 0
    # the scheduler lease: one leader, its epoch
    follower = "scheduler-1" if run["leader"] == "scheduler-0" else "scheduler-0"
    assert value(samples, "forge_lease_leader", component=run["leader"], lease="scheduler") == 1
    assert value(samples, "forge_lease_leader", component=follower, lease="scheduler") == 0
    assert value(samples, "forge_lease_epoch", component=run["leader"], lease="scheduler") >= 1
    # the process
    assert value(samples, "process_resident_memory_bytes") > 10_000_000
    assert value(samples, "process_cpu_seconds_total") > 0
    assert 'service_name="forge.pasta_plant"' in run["text"]


HEARTBEAT_PLUGIN = '''
from forge_core import Component, hookimpl


class Loaded(Component):
    """Publishes a reading per tick and feeds a backpressure controller a depth of 5 (above high: 2)."""

    async def start(self):
        self.pressure = self.ctx.backpressure(high=2, low=1)
        self.pressure.update(5)
        self.ctx.every(0.05, self.tick)

    async def tick(self):
        await self.ctx.publish("plant/reading", "test.reading", {"machine": self.name, "value": 0.5})


@hookimpl
def forge_register_components(registry):
    registry.add("test.loaded", Loaded)
'''

HEARTBEAT_MANIFEST = """
version: 1
plant: {name: beats}
local_plugins: [machines.py]
schemas: [schemas]
transports:
  bus: {type: memory}
components:
  beat-a: {type: forge.heartbeat, params: {interval: 0.3}}
  beat-b: {type: forge.heartbeat, params: {interval: 0.3}}
  watch: {type: forge.heartbeat_monitor, params: {interval: 0.3}}
  loaded: {type: test.loaded}
  logger: {type: forge.logger, params: {topics: ["plant/#"]}}
runtime:
  health: false
  metrics: {listen: "127.0.0.1:0", handler_latency: true}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def test_heartbeat_verdicts_backpressure_and_handler_latency_are_scraped(plant_dir: Callable[..., Path]) -> None:
    plugins, manifest = load_plant(plant_dir(HEARTBEAT_MANIFEST, plugin=HEARTBEAT_PLUGIN))

    async def main() -> tuple[Samples, Samples, int, list[dict[str, str]]]:
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            async def both_up() -> bool:
                _, samples = await scrape(runtime)
                return all(value(samples, "forge_heartbeat_status", component="watch", source=s, status="UP") == 1
                           for s in ("beat-a", "beat-b"))

            await until(both_up, "both sources UP")
            await runtime.kill("beat-b")

            async def b_down() -> bool:
                _, samples = await scrape(runtime)
                return value(samples, "forge_heartbeat_status", component="watch", source="beat-b", status="DOWN") == 1

            await until(b_down, "beat-b DOWN")
            watch = runtime.supervisors["watch"].instance
            verdicts = [{source: str(status) for source, status in watch.monitor.sources().items()}]  # type: ignore[union-attr]
            _, samples = await scrape(runtime)
            verdicts.append({source: str(status) for source, status in watch.monitor.sources().items()})  # type: ignore[union-attr]
            handled = runtime.bus.stats.handled["test.reading"]  # type: ignore[union-attr]
            _, later = await scrape(runtime)
            return samples, later, handled, verdicts
        finally:
            await runtime.stop()

    samples, later, handled, verdicts = asyncio.run(main())
    assert verdicts[0]["beat-b"] == "DOWN"
    for source in ("beat-a", "beat-b"):  # one verdict per source: the monitor's just before or after the scrape
        scraped = {s: value(samples, "forge_heartbeat_status", component="watch", source=source, status=s)
                   for s in ("UP", "DEGRADED", "DOWN")}
        assert scraped in [{s: float(s == v[source]) for s in scraped} for v in verdicts], (source, scraped)
    assert value(samples, "forge_backpressure_throttled", component="loaded", controller="0") == 1
    assert value(samples, "forge_backpressure_interval_seconds", component="loaded", controller="0") == 2.0
    assert value(samples, "forge_backpressure_switches_total", component="loaded", controller="0") == 1
    # handler_latency: one histogram observation per handled reading, in buckets that add up
    count = value(later, "forge_handle_duration_milliseconds_count", type="test.reading")
    assert count is not None and count >= handled > 0
    assert value(later, "forge_handle_duration_milliseconds_bucket", type="test.reading", le="+Inf") == count
    assert value(later, "forge_messages_handled_total", type="test.reading", component="logger") == count


def test_metrics_off_serves_no_path_and_makes_no_reader(plant_dir: Callable[..., Path]) -> None:
    manifest_text = HEARTBEAT_MANIFEST.replace('metrics: {listen: "127.0.0.1:0", handler_latency: true}',
                                               "metrics: {enabled: false}")
    plugins, manifest = load_plant(plant_dir(manifest_text, plugin=HEARTBEAT_PLUGIN))

    async def main() -> tuple[int, bool]:
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        try:
            assert runtime.http is not None
            transport = httpx.ASGITransport(app=runtime.http.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://plant") as client:
                response = await client.get("/metrics")
            return response.status_code, runtime.metrics is None and runtime.telemetry is None
        finally:
            await runtime.stop()

    assert asyncio.run(main()) == (404, True)



@pytest.mark.parametrize("metrics", ["{}", "{enabled: false}"], ids=["metrics-on", "metrics-off"])
@pytest.mark.parametrize("ending", ["stopped", "abandoned"])
def test_a_plant_that_is_gone_leaves_its_runtime_and_contexts_to_the_collector(
        plant_dir: Callable[..., Path], basic_manifest: str, metrics: str, ending: str) -> None:
    # Before the fix an abandoned plant with /metrics on (the default) stayed alive for good: OpenTelemetry's
    # atexit hook -> MeterProvider -> its observable gauges -> PlantMetrics' callbacks -> Runtime -> contexts.
    plant = TestPlant(plant_dir(basic_manifest + f"runtime: {{metrics: {metrics}}}\n"), seed=1).start()
    plant.advance(3)
    assert (plant.runtime.metrics is not None) == (metrics == "{}")
    runtime = weakref.ref(plant.runtime)
    contexts = [weakref.ref(s.context) for s in plant.runtime.supervisors.values() if s.context is not None]
    assert len(contexts) == 2
    if ending == "stopped":
        plant.stop()
    else:  # never stopped: a test that failed before its stop, a script that let its plant go
        plant.clock.close()
    del plant
    gc.collect()
    assert runtime() is None, "the runtime is collected"
    assert [c for c in contexts if c() is not None] == [], "its component contexts are collected"


def test_a_meter_provider_kept_past_its_plant_does_not_keep_the_plant(
        plant_dir: Callable[..., Path], basic_manifest: str) -> None:
    # Whatever keeps the provider (a global provider, a plugin, an exporter's thread) keeps the observable
    # instruments' callbacks; they must not keep the plant they read.
    plant = TestPlant(plant_dir(basic_manifest), seed=1).start()
    plant.advance(3)
    metrics, telemetry = plant.runtime.metrics, plant.runtime.telemetry
    assert metrics is not None and telemetry is not None
    provider = telemetry.meter_provider
    runtime = weakref.ref(plant.runtime)
    plant.stop()
    del plant, telemetry
    gc.collect()
    assert runtime() is None, "the provider kept its callbacks, not the runtime"
    assert metrics.runtime is None
    assert provider is not None

PROCESSES_MANIFEST = """
version: 1
plant: {name: procs}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 0.2}, replicas: 2}
runtime:
  processes: per_component
  health: false
  metrics: {listen: "127.0.0.1:0"}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


@pytest.mark.timeout(400)
def test_each_child_process_serves_its_own_metrics_listed_for_file_sd(plant_dir: Callable[..., Path]) -> None:
    import json
    import os
    import signal

    from forge_core.runtime.processes import ProcessRunner

    path = plant_dir(PROCESSES_MANIFEST)
    plugins, manifest = load_plant(path / "plant.yaml")

    async def main() -> tuple[dict[str, tuple[list[dict[str, Any]], Samples, int | None]], int]:
        runner = ProcessRunner(manifest, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        try:
            files = {name: runner.run_dir / f"metrics-{name}.json" for name in runner.children}
            seen: dict[str, tuple[list[dict[str, Any]], Samples, int | None]] = {}
            first_pid = runner.children["m1-1"].pid

            async def scraped_all() -> bool:
                for name, file in files.items():
                    if name in seen or not file.exists():
                        continue
                    group = json.loads(file.read_text())
                    if name == "m1-1" and runner.children[name].pid == first_pid:
                        continue  # scraped after the restart below
                    async with local_client() as client:
                        try:
                            text = (await client.get(f"http://{group[0]['targets'][0]}/metrics")).text
                        except httpx.HTTPError:
                            continue  # a stale file of a life that is gone: wait for the new one
                    samples = parse(text)
                    if not value(samples, "forge_bus_published_total", type="test.reading"):
                        continue  # up, but its component has not published yet (a new life): scrape again
                    seen[name] = (group, samples, runner.children[name].pid)
                return len(seen) == len(files)

            # children start as new Python processes: on a loaded machine that takes a while
            await until(lambda: _async_true(all(f.exists() for f in files.values())), "every child target file",
                        limit=120)
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)  # a crash: the new life writes its new port
            await until(scraped_all, "every child's /metrics", limit=120)
            return seen, first_pid
        finally:
            await runner.stop()

    seen, first_pid = asyncio.run(main())
    assert seen["m1-1"][2] != first_pid, "m1-1 was scraped in its second life, at the port it wrote then"
    for name, (group, samples, _) in seen.items():
        assert group[0]["labels"] == {"forge_plant": "procs", "forge_process": name}
        assert value(samples, "forge_component_state", component=name, state="running") == 1
        others = {dict(k)["component"] for k in samples["forge_component_state"]}
        assert others == {name}, "a child reports its own instance only"
        assert value(samples, "forge_bus_published_total", type="test.reading")
    assert seen["m1-0"][0][0]["targets"] != seen["m1-1"][0][0]["targets"], "a port of its own each"


async def _async_true(result: bool) -> bool:
    return result
