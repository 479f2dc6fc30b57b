"""mms.factory_monitor's shadow_check_every: the replica that does not lead checks less often, and at
once when it takes over, then every check_every (docs/plugins/mms.md, "The shadow's checks")."""

from __future__ import annotations

import pytest
from forge_core.testing import TestPlant

from forge_mms.components.factory_monitor import FactoryMonitor

PARAMS = {"check_every": 0.25, "shadow_check_every": 1.0, "max_gap": 3.0, "missed_beats": 3}
NAMES = ("monitor-0", "monitor-1")


def monitor(plant: TestPlant, name: str) -> FactoryMonitor:
    component = plant.component(name)
    assert isinstance(component, FactoryMonitor)
    return component


def leader(plant: TestPlant) -> str:
    return next(n for n in NAMES if plant.state(n) == "running" and monitor(plant, n).leading)


def count_checks(plant: TestPlant) -> dict[str, list[float]]:
    """The clock's time of every check of each replica from now on (the check timer calls self.check)."""
    times: dict[str, list[float]] = {n: [] for n in NAMES}
    for name in NAMES:
        replica = monitor(plant, name)
        check = replica.check

        async def counted(check=check, name=name) -> None:  # type: ignore[no-untyped-def]
            times[name].append(plant.clock.time())
            await check()

        replica.check = counted  # type: ignore[method-assign]
    return times


def test_the_shadow_checks_every_shadow_check_every_and_the_leader_every_check_every(factory_plant, beats):
    plant = factory_plant(PARAMS, replicas=2)
    beats(plant, 3, "f1")
    times = count_checks(plant)
    beats(plant, 20, "f1")
    first = leader(plant)
    shadow = next(n for n in NAMES if n != first)
    assert len(times[first]) == 80, len(times[first])
    assert len(times[shadow]) == 20, len(times[shadow])
    assert "monitor_starved" not in plant.component(shadow).health(), "its longer period is not a late check"
    # the shadow still follows the factory's state
    assert plant.component(shadow).faults.status("f1").value == "UP"


@pytest.mark.parametrize("shadow_every", [None, 0.25])
def test_without_the_setting_or_equal_to_check_every_both_replicas_check_every_check_every(factory_plant, beats,
                                                                                            shadow_every):
    plant = factory_plant({**PARAMS, "shadow_check_every": shadow_every}, replicas=2)
    beats(plant, 3, "f1")
    times = count_checks(plant)
    beats(plant, 10, "f1")
    assert sorted(len(t) for t in times.values()) == [40, 40]


@pytest.mark.parametrize("phase", [0.0, 0.3, 0.55, 0.8])
def test_a_takeover_checks_at_once_and_then_every_check_every(factory_plant, beats, phase):
    """The leader is killed at several phases against the shadow's 1 s period: the successor checks
    at the instant it leads (a factory silent for longer than max_gap is DOWN then, before it acts),
    then every check_every; no DOWN comes later than max_gap + check_every after the last beat or the
    takeover, whichever is later."""
    plant = factory_plant(PARAMS, replicas=2)
    beats(plant, 5, "f1", "f2")
    plant.advance(phase)
    first = leader(plant)
    second = next(n for n in NAMES if n != first)
    times = count_checks(plant)
    beats(plant, 1, "f1", "f2")
    last_f1 = plant.sent("factory/f1/heartbeat")[-1].time
    plant.kill(first)  # f1 dies with it
    beats(plant, 20, "f2")
    assert leader(plant) == second
    took_over = next(e.time for e in plant.sent(type="forge.leadership") if e.source == second)
    assert took_over in times[second], "a check at the instant it took over"
    after = [t for t in times[second] if t > took_over]
    assert after and all(abs(b - a - 0.25) < 1e-6 for a, b in zip([took_over, *after], after, strict=False))
    down = [e for e in plant.sent("forge/status/f1", type="forge.status") if e.payload["status"] == "DOWN"]
    assert down, "f1 DOWN"
    assert down[0].time <= max(last_f1 + 3.0, took_over) + 0.25 + 1e-6, (down[0].time, last_f1, took_over)
    reported = [e.payload for e in plant.sent(type="mms.status_report") if e.payload["factoryId"] == "f1"]
    assert reported and reported[-1]["status"] == "DOWN"
    assert plant.component(second).faults.status("f2").value == "UP"


def test_a_revived_former_leader_is_a_shadow_and_checks_every_shadow_check_every(factory_plant, beats):
    plant = factory_plant(PARAMS, replicas=2)
    beats(plant, 3, "f1")
    first = leader(plant)
    plant.kill(first)
    beats(plant, 20, "f1")
    plant.revive(first)  # back as the shadow
    beats(plant, 3, "f1")
    times = count_checks(plant)
    beats(plant, 10, "f1")
    assert leader(plant) != first
    assert len(times[first]) == 10 and len(times[leader(plant)]) == 40
