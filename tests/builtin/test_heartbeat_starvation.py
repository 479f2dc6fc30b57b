"""A monitor starved by its own event loop says so instead of declaring the sources DOWN (issue 11 §3)."""

from __future__ import annotations

from forge_core.testing import TestPlant

PLANT = """
version: 1
plant: {name: starved}
transports: {bus: {type: memory}}
components:
  m1: {type: forge.heartbeat, params: {interval: 1.0}}
  m2: {type: forge.heartbeat, params: {interval: 1.0}}
  monitor: {type: forge.heartbeat_monitor}
tactics:
  heartbeat: {interval: 1.0, recover_after: 5}
  detector: {use: phi}
storage: {migrate_on_start: false}
"""


def _stall(plant: TestPlant, seconds: float) -> None:
    """The whole loop is busy for ``seconds`` (a flood, a blocking call): every timer runs late."""
    def busy() -> None:
        plant.clock.loop._virtual_now[0] += seconds  # type: ignore[attr-defined]
    plant.clock.call_later(0.0, busy)


def test_a_starved_monitor_reports_itself_not_the_sources_down(plant_dir, caplog):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        _stall(plant, 5.0)
        plant.advance(20)
        statuses = [(e.payload["source"], e.payload["status"]) for e in plant.sent("forge/status/+")]
        assert ("m1", "DOWN") not in statuses and ("m2", "DOWN") not in statuses, statuses
        health = plant.component("monitor").health()
        starved = health["monitor_starved"]
        assert starved["starved_evaluations"] >= 1 and starved["max_lag"] > 4.0 and not starved["starved"]
        assert health["sources"] == {"m1": "UP", "m2": "UP"} or "DOWN" not in health["sources"].values()
        assert any("monitor monitor starved" in r.getMessage() for r in caplog.records)


def test_a_silent_source_still_goes_down_when_the_monitor_keeps_up(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        _stall(plant, 5.0)
        plant.advance(10)
        plant.transport("bus").faults.partition("m2")
        down = plant.expect("forge.status", within=10, where=lambda e: e.payload["status"] == "DOWN")
        assert down.payload["source"] == "m2"
