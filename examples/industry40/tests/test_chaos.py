"""The plant's chaos on the factories alone, under virtual time: seeded, bounded, always recovering."""

from __future__ import annotations

KEEP = ("factory", "chaos")
FAST = {"enabled": True, "min_interval": 5.0, "max_interval": 10.0, "min_outage": 5.0, "max_outage": 15.0,
        "weights": {"stop": 1.0, "degraded": 1.0, "flapping": 1.0, "kill_mms": 0.0, "kill_pms": 0.0}}


def events(plant):
    sent = plant.sent("chaos/events", type="industry40.chaos_event")
    return [(e.payload["action"], e.payload["target"]) for e in sent]


def test_chaos_fails_one_factory_at_a_time_and_recovers_it(plant40):
    plant = plant40(keep=KEEP, params={"chaos": FAST})
    failed: set[str] = set()
    most = 0
    for _ in range(600):
        plant.advance(1)
        failed = {f.factory_id for f in (plant.component(f"factory-{i}") for i in range(4)) if f.mode != "normal"}
        most = max(most, len(failed))
    got = events(plant)
    actions = {a for a, _ in got}
    assert {"stop", "degraded", "flapping", "recover"} <= actions
    assert most == 1, "max_failed_factories: 1"
    failures = [t for a, t in got if a != "recover"]
    recoveries = [t for a, t in got if a == "recover"]
    assert len(failures) - len(recoveries) in (0, 1) and len(failures) >= 20
    modes = plant.sent("factory/+/mode", type="industry40.factory_mode")
    assert len(modes) == len(got) and all(m.payload["factoryId"] == m.topic.split("/")[1] for m in modes)
    report = plant.component("chaos").report()
    assert report["enabled"] and report["recover"] == len(recoveries)


def test_the_same_seed_replays_the_same_chaos(plant40):
    runs = []
    for seed in (7, 7, 8):
        plant = plant40(keep=KEEP, params={"chaos": FAST}, seed=seed)
        plant.advance(200)
        runs.append(events(plant))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_chaos_is_off_unless_enabled(plant40):
    plant = plant40(keep=KEEP)
    plant.advance(120)
    assert not events(plant) and plant.component("chaos").report() == {"enabled": False}
