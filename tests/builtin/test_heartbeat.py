"""forge.heartbeat and forge.heartbeat_monitor: discovery, UP/DEGRADED/DOWN, recovery, death
certificates, failover decisions, plain-JSON machines."""

from __future__ import annotations

from forge_core.plant import check_plant
from forge_core.testing import TestPlant

PLANT = """
version: 1
plant: {name: beats}
transports: {bus: {type: memory}}
components:
  m1: {type: forge.heartbeat, params: {interval: 1.0, jitter: 0.1}}
  m2: {type: forge.heartbeat, params: {interval: 1.0, jitter: 0.1}}
  monitor: {type: forge.heartbeat_monitor, params: {failover: true}}
tactics:
  heartbeat: {interval: 1.0, recover_after: 5}
  detector: {use: phi}
storage: {migrate_on_start: false}
"""


def statuses(plant: TestPlant, source: str) -> list[str]:
    return [e.payload["status"] for e in plant.sent("forge/status/+", type="forge.status", source="monitor")
            if e.payload["source"] == source]


def test_sources_are_discovered_up_from_their_first_beat(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(2)
        assert statuses(plant, "m1") == ["UP"] and statuses(plant, "m2") == ["UP"]
        assert plant.component("monitor").health() == {"sources": {"m1": "UP", "m2": "UP"}}


def test_silent_source_goes_down_within_the_phi_bound_and_failover_is_decided(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(60)
        plant.transport("bus").faults.partition("m2")
        cut_at = plant.now
        down = plant.expect("forge.status", within=10, where=lambda e: e.payload["status"] == "DOWN")
        detection = down.time - plant.clock.start - cut_at
        assert down.payload["source"] == "m2"
        assert detection <= 2.5 + 1.0, f"phi at 1 s beats should detect within ~2.5 intervals, took {detection:.2f}s"
        assert "DOWN" not in statuses(plant, "m1")
        decision = plant.expect("forge.failover", within=1, after=0)
        assert decision.payload["source"] == "m2" and decision.payload["target"] == "m1"


def test_source_comes_back_up_only_after_five_healthy_beats(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(30)
        bus = plant.transport("bus")
        bus.faults.partition("m2")
        plant.advance(10)
        assert statuses(plant, "m2")[-1] == "DOWN"
        bus.faults.heal()
        healed_at = plant.now
        up = plant.expect("forge.status", within=10,
                          where=lambda e: e.payload["source"] == "m2" and e.payload["status"] == "UP")
        waited = up.time - plant.clock.start - healed_at
        assert 3.5 <= waited <= 6.0, f"UP again after 5 beats of ~1 s, took {waited:.2f}s"


def test_unhealthy_beats_make_a_source_degraded(plant_dir):
    manifest = PLANT.replace("  m2: {type: forge.heartbeat, params: {interval: 1.0, jitter: 0.1}}\n", "")
    with TestPlant(plant_dir(manifest), seed=3) as plant:
        plant.advance(3)
        for n in range(10):
            plant.publish("forge/heartbeat/sick", "forge.heartbeat", {"source": "sick", "seq": n + 1,
                                                                      "healthy": n < 3}, source="sick")
            plant.advance(1)
        assert "DEGRADED" in statuses(plant, "sick")


def test_death_certificate_is_a_down_verdict_and_stale_ones_are_ignored(plant_dir):
    with TestPlant(plant_dir(PLANT), seed=3) as plant:
        plant.advance(5)
        plant.publish("forge/birth/m1", "forge.birth", {"source": "m1", "seq": 4})
        plant.publish("forge/death/m1", "forge.death", {"source": "m1", "seq": 3})
        plant.advance(0.1)
        assert statuses(plant, "m1") == ["UP"], "a death from an older session is stale"
        plant.publish("forge/death/m1", "forge.death", {"source": "m1", "seq": 4})
        plant.advance(1.5)  # death_confirm (1 s): a Will heard while connected is a DOWN, beats or not
        assert statuses(plant, "m1")[-1] == "DOWN"


def test_plain_json_machines_are_monitored_through_bindings(plant_dir):
    manifest = """
    version: 1
    plant: {name: plain}
    transports: {bus: {type: memory}}
    bindings:
      - {topic: heartbeats, type_field: title, type_map: {heartbeat: forge.heartbeat}, source_field: source}
    components:
      monitor: {type: forge.heartbeat_monitor, params: {topics: [heartbeats], types: [forge.heartbeat]}}
    storage: {migrate_on_start: false}
    """
    with TestPlant(plant_dir(manifest)) as plant:
        for n in range(3):
            plant.publish_raw("heartbeats", {"title": "heartbeat", "source": "press-7", "seq": n + 1})
            plant.advance(1)
        assert statuses(plant, "press-7") == ["UP"]
        assert not plant.dead_letters


def test_certificates_name_the_beat_source_through_certificate_sources(plant_dir):
    """A machine whose MQTT client is machine-7 and whose beats say machineId 7: its Will is 7's DOWN."""
    manifest = r"""
    version: 1
    plant: {name: aliases}
    transports: {bus: {type: memory}}
    bindings:
      - {topic: heartbeats, type_field: title, type_map: {heartbeat: forge.heartbeat}, source_field: machineId}
    components:
      monitor:
        type: forge.heartbeat_monitor
        params: {topics: [heartbeats], types: [forge.heartbeat], certificate_sources: '^machine-(\d+)$'}
    storage: {migrate_on_start: false}
    """
    with TestPlant(plant_dir(manifest)) as plant:
        plant.publish("forge/birth/pasta-machine-7", "forge.birth", {"source": "machine-7", "seq": 2})
        for _ in range(3):
            plant.publish_raw("heartbeats", {"title": "heartbeat", "machineId": 7, "source": "plc", "seq": 1})
            plant.advance(1)
        plant.publish("forge/death/pasta-machine-7", "forge.death", {"source": "machine-7", "seq": 1})
        plant.advance(0.01)
        assert statuses(plant, "7") == ["UP"], "the death of an older session of machine-7 is stale for 7"
        plant.publish("forge/death/pasta-machine-7", "forge.death", {"source": "machine-7", "seq": 2})
        plant.advance(1.5)  # after death_confirm (the beats stopped meanwhile: DEGRADED may come first)
        assert statuses(plant, "7")[0] == "UP" and statuses(plant, "7")[-1] == "DOWN"
        assert statuses(plant, "machine-7") == []


def test_certificate_sources_must_capture_the_beat_source(plant_dir):
    manifest = """
    version: 1
    plant: {name: aliases}
    transports: {bus: {type: memory}}
    components:
      monitor: {type: forge.heartbeat_monitor, params: {certificate_sources: '^machine-'}}
      other: {type: forge.heartbeat_monitor, params: {certificate_sources: '(unclosed'}}
    storage: {migrate_on_start: false}
    """
    problems = check_plant(plant_dir(manifest))
    messages = {p.path: p.message for p in problems}
    assert "needs a group" in messages["components.monitor.params.certificate_sources"]
    assert "not a regular expression" in messages["components.other.params.certificate_sources"]
    assert all(p.line for p in problems), "each problem names its line in plant.yaml"


UNTRUSTED = """
version: 1
plant: {name: untrusted}
transports: {bus: {type: memory}}
bindings:
  - {topic: heartbeats, type_field: title, type_map: {heartbeat: forge.heartbeat}, source_field: source}
  - {topic: machines/death, type: forge.death}
components:
  monitor: {type: forge.heartbeat_monitor, params: {topics: [heartbeats], types: [forge.heartbeat],
                                                    death_topics: [machines/death], failover: true}}
storage: {migrate_on_start: false}
"""


def test_a_source_that_is_no_topic_level_is_dead_lettered_and_the_monitor_lives_on(plant_dir):
    """forge/status/{source} from a payload field: '+', '#', '/' or NUL there would publish to a
    wildcard (or another) topic; the beat is refused with its reason instead of crashing the monitor."""
    bad = ["1.2345678901234568e+29", "press/#", "a/b", "nul\x00", "$SYS", "x" * 300]
    with TestPlant(plant_dir(UNTRUSTED)) as plant:
        for n in range(3):
            plant.publish_raw("heartbeats", {"title": "heartbeat", "source": "press-7", "seq": n + 1})
            for source in bad:
                plant.publish_raw("heartbeats", {"title": "heartbeat", "source": source, "seq": n + 1})
            plant.advance(1)
        plant.publish_raw("machines/death", {"source": "dead+", "seq": 1})
        plant.advance(30)  # long enough for press-7 to go DOWN, and any phantom with it
        seen = statuses(plant, "press-7")
        assert seen[0] == "UP" and seen[-1] == "DOWN", seen
        sources = {e.payload["source"] for e in plant.sent("forge/#", source="monitor")}
        assert sources == {"press-7"}, sources
        refused = [d for d in plant.dead_letters if d.reason == "refused"]
        assert len(refused) == 3 * len(bad) + 1, [(d.reason, d.detail) for d in plant.dead_letters]
        assert all("not a topic level" in d.detail and d.component == "monitor" for d in refused)
        assert plant.runtime.supervisors["monitor"].state == "running" and not plant.summary.restarts
