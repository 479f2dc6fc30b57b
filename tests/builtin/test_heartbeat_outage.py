"""A broker outage is not every source's death (issue 11 fault drills): while the monitor's own
transport is away, and for ``reconnect_grace`` after it is back, silence gives no verdict and a
death certificate (a Last Will the broker kept and hands over after its restart) is held until a
beat cancels it. A source that really died meanwhile still goes DOWN when the grace ends."""

from __future__ import annotations

from forge_core.testing import TestPlant

PLANT = """
version: 1
plant: {name: outage}
transports: {bus: {type: memory}}
components:
  m1: {type: forge.heartbeat, params: {interval: 1.0}}
  m2: {type: forge.heartbeat, params: {interval: 1.0}}
  monitor: {type: forge.heartbeat_monitor, params: {reconnect_grace: 10.0}}
tactics:
  heartbeat: {interval: 1.0, recover_after: 5}
  detector: {use: phi}
storage: {migrate_on_start: false}
"""


def _down(plant: TestPlant) -> list[tuple[str, str]]:
    return [(e.payload["source"], e.payload["reason"]) for e in plant.sent("forge/status/+")
            if e.payload["status"] == "DOWN"]


def test_wills_handed_over_after_a_broker_restart_are_not_deaths(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        bus = plant.transport("bus")
        # the broker goes away: nobody's beats arrive, the monitor's transport says disconnected
        bus.faults.partition("m1", "m2")
        bus._connected = False  # type: ignore[attr-defined]
        plant.kill("m2")  # m2 really dies during the outage
        plant.advance(8.0)
        assert _down(plant) == [], "a verdict while the monitor itself could not hear anyone"
        # back: the broker hands over the Wills it kept (both sources' session 0), m1 beats again
        bus._connected = True  # type: ignore[attr-defined]
        bus.faults.heal()
        for source in ("m1", "m2"):
            plant.publish(f"forge/death/{source}", "forge.death", {"source": source, "seq": 0})
        plant.advance(5.0)
        assert _down(plant) == [], "a Will redelivered after the outage was taken as a death"
        assert plant.component("monitor").health()["transport_outages"]["deaths_held"] == ["m2"]
        plant.advance(7.0)  # the grace is over; m2 never beat again
        assert [source for source, _ in _down(plant)] == ["m2"]
        assert plant.component("monitor").status("m1").name == "UP"


def test_a_will_with_the_monitor_connected_is_a_death_within_death_confirm(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        plant.kill("m2")
        plant.publish("forge/death/m2", "forge.death", {"source": "m2", "seq": 0})
        plant.advance(0.5)
        assert _down(plant) == []  # death_confirm (1 s): is the broker going away?
        plant.advance(0.8)  # 1 s + one evaluation (a quarter interval)
        assert [source for source, _ in _down(plant)] == ["m2"]  # no grace without an outage


def test_wills_a_stopping_broker_hands_out_before_the_monitor_sees_it_go_are_held(plant_dir):
    """Mosquitto stopping publishes its clients' Wills to the clients still connected: the monitor
    hears them a moment before its own connection drops (the fault drill's 3 false DOWN)."""
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(20.05)
        bus = plant.transport("bus")
        for source in ("m1", "m2"):
            plant.publish(f"forge/death/{source}", "forge.death", {"source": source, "seq": 0})
        bus.faults.partition("m1", "m2")
        plant.advance(0.2)
        bus._connected = False  # type: ignore[attr-defined]
        plant.advance(6.0)
        bus._connected = True  # type: ignore[attr-defined]
        bus.faults.heal()
        plant.advance(15.0)  # both beat again within the grace
        assert _down(plant) == [], _down(plant)
