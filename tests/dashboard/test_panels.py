"""Panels are data: checked shapes, plain JSON values."""

from __future__ import annotations

from forge_core.dashboard import Panel, PanelTable
from forge_core.dashboard.panels import check_panel


def test_as_dict_keeps_plain_values_and_stringifies_the_rest():
    panel = Panel("p", {"level": 0.123456, "when": object, "ok": True},
                  [PanelTable("t", ["a", "b"], [[1, None], ["x", 2.0]])])
    data = panel.as_dict()
    assert data["fields"]["level"] == 0.123 and data["fields"]["ok"] is True
    assert data["fields"]["when"] == "<class 'object'>"
    assert data["tables"] == [{"title": "t", "columns": ["a", "b"], "rows": [[1, None], ["x", 2.0]]}]


def test_check_panel_names_what_is_wrong():
    assert check_panel(None) is None and check_panel(Panel("ok")) is None
    assert "expected a forge_core.dashboard.Panel" in (check_panel({"title": "x"}) or "")
    ragged = Panel("p", tables=[PanelTable("t", ["a", "b"], [[1, 2], [3]])])
    assert check_panel(ragged) == "panel 'p', table 't': row 1 has 1 cells for 2 columns"
