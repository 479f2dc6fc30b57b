"""oee_line.gateway: an OPC UA tag names the machine (Sparkplug device) and the metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oee_line.components.gateway import Gateway, split_tag

from forge_core.testing import TestPlant


def test_browsed_and_given_tags_split_into_machine_and_metric() -> None:
    assert split_tag("M1/State", "/.") == ("M1", "State")
    assert split_tag("M1.GoodCount", "/.") == ("M1", "GoodCount")
    assert split_tag("Uptime", "/.") is None
    assert split_tag("/State", "/.") is None


PLANT = Path(__file__).resolve().parents[2]


def _change(tag: str, value: Any, at: float) -> dict[str, Any]:
    return {"node_id": f"ns=1;s={tag}", "tag": tag, "value": value, "data_type": "UInt32", "status": "Good",
            "status_code": 0, "quality": "good", "source_timestamp": at, "server_timestamp": at, "endpoint": "test"}


def _together(plant: TestPlant, changes: list[tuple[str, Any, float]]) -> None:
    """Publish ``changes`` back to back, as opcua.source does with one Publish response, then settle."""
    bus = plant.runtime.bus
    assert bus is not None

    async def publish() -> None:
        for tag, value, at in changes:
            await bus.publish(f"opcua/plc1/{tag}", "opcua.data_change", _change(tag, value, at), source="test", key=tag)

    plant.clock.run(publish())
    plant.advance(0.01)


def _updates(plant: TestPlant) -> list[tuple[str, list[tuple[str, Any, int]]]]:
    return [(e.payload["device"], [(m["name"], m["value"], m["timestamp"]) for m in e.payload["metrics"]])
            for e in plant.sent("sparkplug/update/#", type="sparkplug.metric_update")]


@pytest.fixture
def plant() -> Iterator[TestPlant]:
    with TestPlant(PLANT, only=["gateway"]) as test_plant:
        test_plant.advance(0.01)
        yield test_plant


def test_changes_that_arrive_together_go_out_as_one_update_per_machine(plant: TestPlant) -> None:
    _together(plant, [("M1/GoodCount", 7, 10.0), ("M1/TotalCount", 8, 10.0), ("M2/TotalCount", 3, 10.5)])
    assert _updates(plant) == [("M1", [("GoodCount", 7, 10_000), ("TotalCount", 8, 10_000)]),
                               ("M2", [("TotalCount", 3, 10_500)])]
    gateway = plant.component("gateway")
    assert isinstance(gateway, Gateway)
    assert gateway.report()["forwarded"] == 3 and gateway.report()["updates"] == 2


def test_a_metric_held_twice_starts_a_new_update_so_no_value_is_folded_away(plant: TestPlant) -> None:
    _together(plant, [("M1/TotalCount", 1, 1.0), ("M1/GoodCount", 1, 1.0), ("M1/TotalCount", 2, 2.0)])
    _together(plant, [("M1/TotalCount", 3, 3.0)])
    assert _updates(plant) == [("M1", [("TotalCount", 1, 1000), ("GoodCount", 1, 1000)]),
                               ("M1", [("TotalCount", 2, 2000)]), ("M1", [("TotalCount", 3, 3000)])]


def test_an_update_the_bus_refuses_dead_letters_the_changes_it_carried(plant: TestPlant,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = plant.component("gateway")
    assert isinstance(gateway, Gateway)

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise ValueError("payload does not match sparkplug.metric_update")

    monkeypatch.setattr(gateway.ctx, "publish", refused)
    _together(plant, [("M1/GoodCount", 7, 10.0), ("M1/TotalCount", 8, 10.0)])
    letters = [d for d in plant.dead_letters if d.component == "gateway"]
    assert [d.envelope.payload["tag"] for d in letters if d.envelope is not None] == ["M1/GoodCount", "M1/TotalCount"]
    assert "does not match" in letters[0].detail
    assert gateway.report()["errors"] == 2 and _updates(plant) == []
