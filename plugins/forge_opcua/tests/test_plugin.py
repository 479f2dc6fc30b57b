"""What the opcua plugin registers, and that its entry point is declared."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from forge_core.plugin import Plugins, get_plugin_manager

import forge_opcua.plugin


def make_plugins() -> Plugins:
    """Built-ins plus this plugin only, whether or not it is installed."""
    return get_plugin_manager(autoload=False, extra=[("opcua", forge_opcua.plugin)])


def test_registers_its_message_types() -> None:
    plugins = make_plugins()
    plugins.collect()
    assert {"opcua.data_change", "opcua.source_status", "opcua.queue_depth"} <= {s.type for s in plugins.schemas}


def test_data_change_schema_refuses_a_bad_quality() -> None:
    plugins = make_plugins()
    plugins.collect()
    good = {"node_id": "ns=2;s=M1.State", "tag": "M1/State", "value": "running", "status": "Good",
            "status_code": 0, "quality": "good", "source_timestamp": 1.0, "server_timestamp": None}
    assert plugins.schemas.errors("opcua.data_change", good) == []
    errors = plugins.schemas.errors("opcua.data_change", {**good, "quality": "fine"})
    assert [e["pointer"] for e in errors] == ["/quality"]


def test_entry_point_is_declared() -> None:
    found = [ep for ep in entry_points(group="forge") if ep.name == "opcua"]
    if not found:
        pytest.skip("forge-opcua is not installed (pip install -e plugins/forge_opcua)")
    assert found[0].value == "forge_opcua.plugin"
