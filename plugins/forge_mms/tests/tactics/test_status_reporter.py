"""The status_reporter tactic: the kind from forge_mms, implementations from any plugin in either load
order; the bus implementation's request/answer and timeout."""

from __future__ import annotations

from typing import ClassVar

import pytest
from forge_core import hookimpl

from forge_mms.tactics.status_reporter import BusStatusReporter, ReportResult


class Recorded:
    """A status reporter of another plugin (as forge_sched's status_reporter.grpc is)."""

    calls: ClassVar[list[tuple[str, str, int, str]]] = []

    async def report(self, factory_id, status, reason, *, epoch, lease):
        self.calls.append((factory_id, status, epoch, lease))
        return ReportResult(True, "recorded", 2)


def _register(registry):
    from forge_core import Settings

    class RecordedSettings(Settings):
        pass

    registry.add("status_reporter.recorded", lambda settings, services: Recorded(), settings=RecordedSettings)


class RegistersFirst:
    """Registers its implementation before forge_mms declares the kind."""

    @hookimpl(tryfirst=True)
    def forge_register_tactics(self, registry):
        _register(registry)


class RegistersLast:
    @hookimpl(trylast=True)
    def forge_register_tactics(self, registry):
        _register(registry)


@pytest.mark.parametrize("plugin", [RegistersFirst, RegistersLast])
def test_an_implementation_from_another_plugin_in_either_load_order(factory_plant, beats, plugin):
    Recorded.calls = []
    plant = factory_plant(tactics={"status_reporter": {"use": "recorded"}}, plugins=[("other", plugin())])
    names = plant.plugins.tactics.names()
    kind_first = names.index("status_reporter") < names.index("status_reporter.recorded")
    assert kind_first is (plugin is RegistersLast)
    assert plant.plugins.tactics.implementations("status_reporter") == ["bus", "recorded"]
    schema = plant.plugins.tactics.section_schema("status_reporter")
    assert schema["properties"]["use"]["enum"] == ["bus", "recorded"]
    beats(plant, 2, "f1")
    assert Recorded.calls == [("f1", "UP", 1, "mms")]
    assert plant.last("mms.failover_event").payload["detail"] == "recorded"
    assert plant.sent(type="mms.status_report") == [], "the bus implementation is not used"


def test_the_bus_reporter_matches_answers_by_request_id(factory_plant, beats):
    plant = factory_plant()
    beats(plant, 2, "f1")
    request = plant.last("mms.status_report").payload
    assert {k: request[k] for k in ("factoryId", "status", "epoch", "lease")} == {
        "factoryId": "f1", "status": "UP", "epoch": 1, "lease": "mms"}
    answer = plant.last("sched.status_report_result").payload
    assert answer["requestId"] == request["requestId"]
    reporter = plant.component("monitor").reporter
    assert isinstance(reporter, BusStatusReporter) and reporter.stats["answered"] == 1


def test_the_bus_reporter_times_out_when_nobody_answers(factory_plant):
    plant = factory_plant()
    reporter = plant.component("monitor").reporter
    started = plant.now

    async def ask():
        with pytest.raises(TimeoutError, match="within 1.0 s"):
            await reporter.report("f9", "DOWN", "test", epoch=0, lease="nobody")

    plant.kill("pms")
    plant._run(ask())
    assert plant.now - started == pytest.approx(1.0)
    assert reporter.stats["timeouts"] == 1 and reporter._waiting == {}
