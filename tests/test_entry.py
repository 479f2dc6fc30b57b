"""forge_core.entry: LazyTable computes a registry entry's value when a name is looked up, so a
plant's load imports the modules of the types it names and no others."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from forge_core.entry import LazyTable
from forge_core.errors import PluginError
from forge_core.plant import load_plant
from tests.conftest import MACHINE_PLUGIN


def test_a_value_is_computed_on_first_lookup_only() -> None:
    calls: list[str] = []
    entries = [SimpleNamespace(name="a", v=1), SimpleNamespace(name="b", v=None)]
    table = LazyTable(entries, lambda e: calls.append(e.name) or e.v)
    assert list(table) == ["a", "b"] and len(table) == 2 and "b" in table and "c" not in table
    assert calls == [], "names cost nothing"
    assert table["a"] == 1 and table["a"] == 1 and table["b"] is None
    assert calls == ["a", "b"], "each value computed once"
    with pytest.raises(KeyError):
        table["c"]


def test_omit_none_leaves_out_entries_without_a_value() -> None:
    entries = [SimpleNamespace(name="a", v=1), SimpleNamespace(name="b", v=None)]
    table = LazyTable(entries, lambda e: e.v, omit_none=True)
    assert table.get("b") is None and "b" not in table and table.get("a") == 1
    assert list(table) == ["a"] and len(table) == 1


LAZY = MACHINE_PLUGIN.replace('registry.add("test.machine", Machine)', 'registry.add("test.machine", Machine)\n'
                              '    registry.add("test.unused", "forge_test_never_imported_module:Thing")')


def test_loading_a_plant_imports_no_module_of_a_type_it_does_not_name(plant_dir) -> None:
    """An installed type the plant does not use is not imported (it was, for every type of every
    installed plugin: seconds of each `forge run`); naming it gives the import error with the plugin."""
    assert LAZY != MACHINE_PLUGIN
    path = plant_dir(plugin=LAZY)
    load_plant(path)
    assert "forge_test_never_imported_module" not in sys.modules
    manifest = (path / "plant.yaml").read_text().replace(
        "components:\n", "components:\n  extra: {type: test.unused}\n", 1)
    (path / "plant.yaml").write_text(manifest)
    with pytest.raises(PluginError, match=r"plugin 'local:machines'.*'test.unused': cannot import"):
        load_plant(path)
