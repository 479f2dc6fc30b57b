"""The runtime: wiring, supervision with backoff, --only, health probes, dead letters in SQL,
and determinism under the virtual clock."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import text

from forge_core.errors import ForgeError
from forge_core.plant import load_plant
from forge_core.runtime import Runtime
from forge_core.testing import TestPlant
from tests.conftest import MACHINE_PLUGIN

CRASHY = """
version: 1
plant: {name: crashy}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 1.0, crash_after: 3.0}}
  steady: {type: test.machine, params: {interval: 1.0}}
runtime: {restart: {initial_backoff: 1.0, max_backoff: 4.0, max_restarts: 3, window: 1000.0}}
storage: {migrate_on_start: false}
"""


def test_components_publish_on_their_intervals(plant_dir):
    with TestPlant(plant_dir(), seed=1) as plant:
        plant.advance(10)
        assert len(plant.sent(type="test.reading", source="m1")) == 10
        assert len(plant.sent(type="test.reading", source="m2")) == 5
        assert all(0 <= e.payload["value"] <= 1 for e in plant.sent(type="test.reading"))


def test_crashing_component_restarts_with_doubling_backoff_then_gives_up(plant_dir):
    with TestPlant(plant_dir(CRASHY)) as plant:
        plant.advance(60)
        supervisor = plant.runtime.supervisors["m1"]
        assert supervisor.state == "failed" and supervisor.restarts == 4
        assert supervisor.last_error == "RuntimeError: boom"
        starts = [e.time - plant.clock.start for e in plant.sent(source="m1")]
        # crash at 3 s, restart after 1 s, 2 s, 4 s (capped): readings resume after each backoff
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts) if b - a > 1.001]
        assert gaps == [2.0, 3.0, 5.0]
        assert plant.state("steady") == "running", "a crash loop in one component leaves the others alone"
        healthy, ready, detail = plant.runtime.health_snapshot()
        assert (healthy, ready) == (False, False)
        assert detail["components"]["m1"]["last_error"] == "RuntimeError: boom"


def test_a_run_that_ends_while_a_component_is_down_after_a_crash_reports_it_failed(plant_dir):
    # m1 crashes at 3 s and waits 1 s to restart: a run stopped in that second must not look clean.
    plant = TestPlant(plant_dir(CRASHY)).start()
    plant.advance(3.5)
    assert plant.runtime.supervisors["m1"].state == "restarting"
    summary = plant.stop()
    assert summary.components["m1"] == "crashed" and summary.components["steady"] == "stopped"
    assert summary.failed == ["m1"], "forge run exits non-zero on summary.failed"


def test_replicas_share_a_subscription_as_a_group(plant_dir, basic_manifest):
    manifest = basic_manifest.replace("m2: {type: test.machine, params: {interval: 2.0}, group: line2}",
                                      "m2: {type: test.machine, params: {interval: 2.0}, replicas: 2}")
    with TestPlant(plant_dir(manifest)) as plant:
        assert sorted(plant.runtime.supervisors) == ["m1", "m2-0", "m2-1"]
        for target in ("m2-0", "m2-1", "m2-0", "m2-1"):
            plant.publish("plant/x/command", "test.command", {"target": target, "action": "go"})
        received = plant.component("m2-0").commands + plant.component("m2-1").commands
        # each command went to exactly one replica, alternating, so only those addressed to it count
        assert len(received) == 4


def test_only_runs_a_subset_by_component_or_group(plant_dir):
    path = plant_dir()
    with TestPlant(path, only=["line2"]) as plant:
        assert list(plant.runtime.supervisors) == ["m2"]
    with TestPlant(path, only=["m1,m2"]) as plant:
        assert list(plant.runtime.supervisors) == ["m1", "m2"]
    with pytest.raises(ForgeError, match=r"--only names 'nope', which is neither a component, a replica instance"):
        TestPlant(path, only=["nope"])


def test_only_runs_one_replica_instance_with_its_true_index(plant_dir, basic_manifest):
    manifest = basic_manifest.replace("m2: {type: test.machine, params: {interval: 2.0}, group: line2}",
                                      "m2: {type: test.machine, params: {interval: 2.0}, replicas: 3}")
    path = plant_dir(manifest)
    with TestPlant(path, only=["m2-1"]) as plant:
        assert list(plant.runtime.supervisors) == ["m2-1"]
        ctx = plant.runtime.supervisors["m2-1"].context
        assert (ctx.replica, ctx.replicas, ctx.component) == (1, 3, "m2")
    with TestPlant(path, only=["m2-2,m2-0"]) as plant:
        assert list(plant.runtime.supervisors) == ["m2-0", "m2-2"]
    with TestPlant(path, only=["m2-1", "m2"]) as plant:  # the whole component wins over one of its instances
        assert list(plant.runtime.supervisors) == ["m2-0", "m2-1", "m2-2"]
    with pytest.raises(ForgeError, match=r"instances: m2-0, m2-1, m2-2"):
        TestPlant(path, only=["m2-3"])


def test_same_seed_same_trace_different_seed_different_trace(plant_dir):
    path = plant_dir()

    def digest(seed):
        with TestPlant(path, seed=seed) as plant:
            plant.advance(3600)
        return plant.summary.trace_digest, plant.summary.trace_messages

    first, again, other = digest(7), digest(7), digest(8)
    assert first == again
    assert first[1] == 3600 + 1800
    assert other[0] != first[0]


def test_dead_letters_are_stored_in_sql_when_storage_migrates(plant_dir, basic_manifest):
    manifest = basic_manifest.replace("migrate_on_start: false", "migrate_on_start: true")
    path = plant_dir(manifest)
    with TestPlant(path) as plant:
        plant.publish_raw("plant/m1/command", {"target": "m1"}, headers={"ce_type": "test.command"})
        plant.publish("plant/m1/command", "test.command", {"target": "m1", "action": "explode"})
        engine = plant.runtime.storage()
        with engine.connect() as conn:
            rows = conn.execute(text("select reason, topic, component, message_type, errors, body "
                                     "from forge_dead_letters order by id")).all()
    assert [(r.reason, r.topic, r.message_type) for r in rows] == [
        ("invalid", "plant/m1/command", "test.command"), ("handler_error", "plant/m1/command", "test.command")]
    assert json.loads(rows[0].errors) == [{"pointer": "/", "message": "'action' is a required property"}]
    assert json.loads(rows[1].body)["data"] == {"target": "m1", "action": "explode"}
    # and they are published for anyone to watch, as forge.deadletter messages
    letters = plant.sent("forge/deadletter/#", type="forge.deadletter")
    assert [e.payload["reason"] for e in letters] == ["invalid", "handler_error"]


def test_health_and_ready_over_http_on_the_real_clock(plant_dir):
    plugins, manifest = load_plant(plant_dir(CRASHY))
    manifest.runtime.health_port = 0

    async def main():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        url = runtime.health_server.url
        loop = asyncio.get_running_loop()

        def get(path):
            try:
                with urllib.request.urlopen(url + path, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        before = await loop.run_in_executor(None, get, "/ready")
        missing = await loop.run_in_executor(None, get, "/nope")
        runtime.supervisors["m1"].state = "failed"  # what a crash loop leaves behind
        after = await loop.run_in_executor(None, get, "/health")
        await runtime.stop()
        return before, missing, after

    before, missing, after = asyncio.run(main())
    assert before[0] == 200 and before[1]["components"]["m1"]["state"] == "running"
    assert missing[0] == 404
    assert after[0] == 503 and after[1]["status"] == "unavailable"


def test_run_with_duration_stops_with_a_summary(plant_dir):
    plugins, manifest = load_plant(plant_dir())
    manifest.runtime.health_port = None
    summary = asyncio.run(Runtime(manifest, plugins).run(duration=1.2))
    assert summary.stop_reason == "duration 1.2s reached"
    assert summary.published == {"test.reading": 1}
    assert summary.components == {"m1": "stopped", "m2": "stopped"}
    assert summary.clock == "real"


def test_a_real_clock_plant_freezes_its_start_up_objects_out_of_the_collectors_passes(plant_dir, monkeypatch):
    plugins, manifest = load_plant(plant_dir())
    manifest.runtime.health_port = None

    async def main():
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        frozen = gc.get_freeze_count()
        await runtime.stop()
        return frozen

    assert asyncio.run(main()) > 1000, "the plant's start-up heap is frozen (a full collection skips it)"
    assert gc.get_freeze_count() == 0, "unfrozen at stop"
    with TestPlant(plant_dir(), seed=1) as plant:  # virtual time: no pause to avoid, nothing frozen
        plant.advance(1)
        assert gc.get_freeze_count() == 0
    monkeypatch.setenv("FORGE_GC_FREEZE", "0")  # the setting that turns it off
    assert asyncio.run(main()) == 0


def test_only_connects_the_transports_a_component_names_in_its_params(plant_dir, basic_manifest):
    manifest = basic_manifest.replace("  bus: {type: memory}", "  bus: {type: memory}\n  side: {type: memory}\n"
                                      "  unused: {type: memory}").replace(
        "m1: {type: test.machine, params: {interval: 1.0}}", "m1: {type: test.machine, params: {interval: 1.0}}\n"
        "  relay: {type: test.relay, params: {other: side}}")
    plugin = MACHINE_PLUGIN.replace('registry.add("test.machine", Machine)',
                                    'registry.add("test.machine", Machine)\n    registry.add("test.relay", Relay)')
    plugin = plugin.replace("@hookimpl", "class Relay(Component):\n    params_schema = {'type': 'object'}\n\n\n"
                                         "@hookimpl", 1)
    with TestPlant(plant_dir(manifest, plugin=plugin), only=["relay"]) as plant:
        assert sorted(plant.runtime.transports) == ["bus", "side"]


def test_transports_are_detached_before_components_release_their_subscriptions(plant_dir, monkeypatch):
    """So a transport with a broker-side session keeps it across a clean restart (issue 11 §5)."""
    from forge_core.transport.memory import MemoryTransport

    order: list[str] = []
    monkeypatch.setattr(MemoryTransport, "detach", lambda self: order.append(f"detach {self.name}"))
    original = MemoryTransport.subscribe

    async def subscribe(self, pattern, callback, **kwargs):
        sub = await original(self, pattern, callback, **kwargs)
        cancel = sub.cancel

        async def recorded():
            order.append("cancel")
            await cancel()
        sub.cancel = recorded
        return sub

    monkeypatch.setattr(MemoryTransport, "subscribe", subscribe)
    with TestPlant(plant_dir()) as plant:
        plant.advance(1.0)
    assert order and order[0] == "detach bus" and "cancel" in order[1:], order


def test_sqlite_commits_skip_the_fsync_under_virtual_time_only(plant_dir, basic_manifest):
    path = plant_dir(basic_manifest.replace("migrate_on_start: false", "migrate_on_start: true"))

    def synchronous(runtime: Runtime) -> int:
        with runtime.storage().connect() as conn:
            return conn.execute(text("PRAGMA synchronous")).scalar()

    with TestPlant(path) as plant:  # virtual clock
        assert synchronous(plant.runtime) == 0  # OFF
    plugins, manifest = load_plant(path)
    runtime = Runtime(manifest, plugins)  # real clock: the engine's NORMAL
    try:
        assert synchronous(runtime) == 1
    finally:
        runtime.storage().dispose()
