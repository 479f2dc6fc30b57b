"""oee_line.gateway: an OPC UA tag names the machine (Sparkplug device) and the metric."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oee_line.components.gateway import Gateway, split_tag

from forge_core.runtime import load_plant
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


@pytest.fixture
def windowed(tmp_path: Path) -> Iterator[TestPlant]:
    """The gateway alone with a 10 s window (the chaos profile's), its storage its own (not the plant's file)."""
    _, manifest = load_plant(PLANT)
    manifest.components["gateway"].params["window"] = 10
    manifest.storage = dataclasses.replace(manifest.storage, url=f"sqlite:///{tmp_path}/oee_line.db")
    with TestPlant(manifest, only=["gateway"]) as test_plant:
        test_plant.advance(0.01)
        yield test_plant


def test_a_window_holds_a_machines_changes_and_sends_every_value_in_one_update(windowed: TestPlant) -> None:
    _together(windowed, [("M1/GoodCount", 1, 1.0), ("M1/TotalCount", 1, 1.0), ("M2/TotalCount", 5, 1.5)])
    windowed.advance(3.0)
    _together(windowed, [("M1/GoodCount", 2, 4.0), ("M1/TotalCount", 2, 4.0)])
    windowed.advance(3.0)
    assert _updates(windowed) == []  # held: 6 s of the window so far
    windowed.advance(4.5)
    assert _updates(windowed) == [
        ("M1", [("GoodCount", 1, 1000), ("TotalCount", 1, 1000), ("GoodCount", 2, 4000), ("TotalCount", 2, 4000)]),
        ("M2", [("TotalCount", 5, 1500)])]
    _together(windowed, [("M1/TotalCount", 3, 12.0)])  # the next window starts with the next change
    windowed.advance(9.0)
    assert len(_updates(windowed)) == 2
    windowed.advance(1.5)
    assert _updates(windowed)[2:] == [("M1", [("TotalCount", 3, 12_000)])]
    gateway = windowed.component("gateway")
    assert isinstance(gateway, Gateway)
    assert gateway.report()["forwarded"] == 6 and gateway.report()["updates"] == 3


def test_what_a_window_holds_goes_out_when_the_gateway_stops(windowed: TestPlant) -> None:
    _together(windowed, [("M1/TotalCount", 1, 1.0), ("M1/TotalCount", 2, 2.0)])
    windowed.clock.run(windowed.runtime.supervisors["gateway"].instance.stop())
    assert _updates(windowed) == [("M1", [("TotalCount", 1, 1000), ("TotalCount", 2, 2000)])]
