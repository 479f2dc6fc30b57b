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


def test_beats_queued_in_the_transport_are_not_silence(plant_dir):
    """Beats that wait behind a flood in the transport's inbox (``backlog_age``) are not the
    sources' silence: the monitor judges silence up to the time it has heard everything (issue 11 §3).
    Before, it judged at now and declared every source DOWN while their beats sat in the inbox."""
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        transport = plant.transport("bus")
        transport.faults.delay("forge/heartbeat/#", seconds=4.0)  # every beat now reaches the monitor 4 s late
        transport.backlog_age = lambda: 4.0  # type: ignore[method-assign]  # ...because it waits in the inbox
        plant.advance(20)
        statuses = [(e.payload["source"], e.payload["status"]) for e in plant.sent("forge/status/+")]
        assert all(status == "UP" for _, status in statuses), statuses
        health = plant.component("monitor").health()
        assert health["sources"] == {"m1": "UP", "m2": "UP"}
        assert health["transport_backlog"]["max_age"] == 4.0 and health["transport_backlog"]["behind"]


def test_a_backlog_does_not_hide_a_dead_source(plant_dir):
    """The backlog moves the verdict by its age, no more: a source that stopped is DOWN once the
    backlog is delivered and its silence is longer than the detector allows."""
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        transport = plant.transport("bus")
        transport.backlog_age = lambda: 2.0  # type: ignore[method-assign]
        transport.faults.partition("m2")
        down = plant.expect("forge.status", within=12, where=lambda e: e.payload["status"] == "DOWN")
        assert down.payload["source"] == "m2"
