"""Factories the PMS holds that the monitor never heard from: tracked from the monitor's start, so a
silence verdict falls on them; a factory heard, or DOWN at the PMS, is left alone."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from forge_core.tactics import Status

from forge_mms.maintenance.capacity import CapacityView
from forge_mms.monitoring.faults import FaultDetector
from forge_mms.monitoring.unheard import UnheardFactories
from forge_mms.tactics.status_reporter import FactoryCapacity

HEARTBEAT = SimpleNamespace(interval=1.0, degraded_after=1.5, error_rate_threshold=0.2, error_window=30.0,
                            recover_after=5)
START = 1000.0


def held(*rows: tuple[str, str]) -> CapacityView:
    return CapacityView(START + 3.0, tuple(FactoryCapacity(f, status, 10, 0, 10) for f, status in rows))


def test_an_unheard_factory_is_tracked_from_the_start_and_judged_down():
    faults = FaultDetector(HEARTBEAT, max_gap=3.0, missed_beats=3)
    faults.monitor.observe("f1", START + 3.0, True)  # heard
    judged: list[int] = []
    unheard = UnheardFactories(faults, capacity=None, started=START, name="mms-0",  # type: ignore[arg-type]
                               log=logging.getLogger("test"), tracked=lambda: judged.append(1))
    assert unheard.ask_after == START + faults.down_after
    tracked = unheard.track(held(("f1", "UP"), ("f2", "UP"), ("f3", "DEGRADED"), ("f4", "DOWN")))
    assert tracked == ["f2", "f3"] and judged == [1], "the heard f1 and the DOWN f4 left alone"
    changes = {c.source: c.new for c in faults.monitor.evaluate(START + 3.5)}
    assert changes == {"f2": Status.DOWN, "f3": Status.DOWN}, "silent since the start: DOWN past the timeout"
    assert faults.status("f4") is None


def test_nothing_unheard_changes_nothing():
    faults = FaultDetector(HEARTBEAT, max_gap=3.0, missed_beats=3)
    faults.monitor.observe("f1", START + 1.0, True)
    judged: list[int] = []
    unheard = UnheardFactories(faults, capacity=None, started=START, name="mms-0",  # type: ignore[arg-type]
                               log=logging.getLogger("test"), tracked=lambda: judged.append(1))
    assert unheard.track(held(("f1", "UP"))) == [] and judged == []
    assert faults.statuses() == {"f1": Status.UP}


class FailingCapacity:
    """A capacity query that answers at once with an error; ``supported``: the reporter has capacity()."""

    def __init__(self, supported: bool) -> None:
        self.supported = supported
        self.max_age = 10.0
        self.ctx = SimpleNamespace(clock=SimpleNamespace(time=lambda: START + 3.0))
        self.asked = 0

    def start(self, then):
        self.asked += 1
        then(CapacityView(START + 3.0, None, "no answer within 2.0 s" if self.supported else
                          "the status_reporter (GrpcStatusReporter) answers no capacity query"))


def test_a_failed_query_is_asked_again_after_max_age():
    capacity = FailingCapacity(supported=True)
    unheard = UnheardFactories(FaultDetector(HEARTBEAT, max_gap=3.0, missed_beats=3), capacity,  # type: ignore[arg-type]
                               started=START, name="mms-0", log=logging.getLogger("test"), tracked=lambda: None)
    unheard.ask()
    assert unheard.ask_after == START + 3.0 + 10.0


def test_a_reporter_without_a_capacity_query_is_said_once_and_not_asked_again(caplog):
    capacity = FailingCapacity(supported=False)
    unheard = UnheardFactories(FaultDetector(HEARTBEAT, max_gap=3.0, missed_beats=3), capacity,  # type: ignore[arg-type]
                               started=START, name="mms-0", log=logging.getLogger("test"), tracked=lambda: None)
    with caplog.at_level(logging.WARNING, logger="test"):
        unheard.ask()
    assert unheard.ask_after is None, "never asked again: the reporter cannot answer"
    assert [r.getMessage() for r in caplog.records] == [
        ("mms-0: the status_reporter (GrpcStatusReporter) answers no capacity query: a factory the PMS holds that "
         "never beat is not judged")]
