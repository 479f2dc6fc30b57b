"""The Industry 4.0 plant's dashboard panel: its factories (mode, capacity, orders held) and the
PMS instances' order counters, from the running plant (virtual time)."""

from __future__ import annotations

from collections.abc import Callable

from industry40.dashboard import panel

from forge_core.testing import TestPlant


def test_factories_and_orders(plant40: Callable[..., TestPlant]) -> None:
    plant = plant40(keep=("factory", "pms"))
    plant.advance(5)
    plant._run(plant.runtime.kill("factory-3"))
    shown = panel(plant.runtime)
    assert shown is not None
    factories, orders = shown.tables
    rows = {row[0]: row for row in factories.rows}
    assert rows["factory-1"][1:4] == ["UP", "normal", 10]
    assert rows["factory-3"][1] == "DOWN"  # killed: no instance to read, its supervisor says so
    assert shown.fields["factories up"] == "3 of 4"
    leading = [row[0] for row in orders.rows if row[2] == "yes"]
    assert sorted(row[0] for row in orders.rows) == ["pms-0", "pms-1"] and len(leading) == 1
    # through the hook, as the dashboard asks every plugin
    titles = [p.title for p in plant.runtime.plugins.dashboard_panels(plant.runtime)]
    assert "Industry 4.0 plant" in titles
