"""The snapshot of a running plant (virtual time): instances with state and restarts, dead letters
by reason with their errors, checks, topics and rates, heartbeat-monitored sources, leases."""

from __future__ import annotations

from forge_core.dashboard.snapshot import Collector
from forge_core.dashboard.tail import MessageTail
from forge_core.testing import TestPlant


def collector(plant: TestPlant) -> Collector:
    runtime = plant.runtime
    tail = MessageTail(runtime.clock)
    for name, transport in runtime.transports.items():  # as Dashboard.start does, without the server
        plant._run(transport.subscribe("#", tail._callback(name), owner="forge.dashboard"))
    return Collector(runtime, tail)


def test_components_dead_letters_and_topics(plant_dir, basic_manifest):
    with TestPlant(plant_dir(basic_manifest)) as plant:
        c = collector(plant)
        plant.advance(3)
        plant.publish_raw("plant/m1/command", {"target": "m1"}, headers={"ce_type": "test.command"})  # no action
        plant.advance(1)
        plant.runtime.supervisors["m2"].state = "killed"
        snap = c.snapshot()
    rows = {r["instance"]: r for r in snap["components"]}
    assert rows["m1"]["status"] == "UP" and rows["m1"]["state"] == "running"
    assert rows["m2"]["status"] == "DOWN"
    letters = snap["dead_letters"]
    assert letters["total"] == 1 and list(letters["by_reason"]) == [letters["latest"][0]["reason"]]
    assert letters["latest"][0]["topic"] == "plant/m1/command" and "action" in str(letters["latest"][0]["errors"])
    topics = {t["topic"]: t["messages"] for t in snap["topics"]}
    assert topics["plant/m1/reading"] >= 4 and topics["plant/m2/reading"] >= 1
    assert snap["transports"][0]["name"] == "bus" and snap["transports"][0]["connected"] is True
    assert snap["plant"]["name"] == "testplant" and snap["panels"] == []


def test_rates_are_counts_between_two_snapshots(plant_dir, basic_manifest, monkeypatch):
    import forge_core.dashboard.snapshot as module

    with TestPlant(plant_dir(basic_manifest)) as plant:
        c = collector(plant)
        now = [100.0]
        monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
        c.snapshot()
        plant.advance(4)  # m1 every 1 s, m2 every 2 s: 6 readings
        now[0] += 2.0
        snap = c.snapshot()
    rates = {t["topic"]: t["rate"] for t in snap["topics"]}
    assert rates["plant/m1/reading"] == 2.0 and rates["plant/m2/reading"] == 1.0  # 4 and 2 in 2 s


HEARTBEATS = """
version: 1
plant: {name: beats}
transports: {bus: {type: memory}}
components:
  press-1: {type: forge.heartbeat, params: {interval: 1.0}}
  health: {type: forge.heartbeat_monitor, params: {interval: 1.0}}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def test_sources_from_the_heartbeat_monitor(plant_dir):
    with TestPlant(plant_dir(HEARTBEATS)) as plant:
        c = collector(plant)
        plant.advance(5)
        up = c.sources()
        plant._run(plant.runtime.kill("press-1"))
        plant.advance(30)
        down = c.sources()
    assert [(s["source"], s["status"]) for s in up] == [("press-1", "UP")]
    assert down[0]["status"] == "DOWN" and down[0]["monitor"] == "health" and down[0]["last_beat_ago"] >= 29
