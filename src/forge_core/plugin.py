"""Public API for plugin authors: the hook marker, the registries a registration hook fills,
and the plugin manager (for tests and tools that build one).

See docs/hooks.md for every hook and docs/writing-a-plugin.md for a plugin from scratch.
"""

from forge_core.drills import DrillFigure, DrillOptions, DrillReport, DrillScenario
from forge_core.hookspecs import hookimpl
from forge_core.messages.schemas import SchemaRegistry
from forge_core.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, PluginInfo, Plugins, get_plugin_manager
from forge_core.registry import (
    CommandRegistry,
    ComponentRegistry,
    DrillRegistry,
    Entry,
    ManifestSectionRegistry,
    NamedRegistry,
    TacticKind,
    TacticRegistry,
    TransportRegistry,
)
from forge_core.storage.migrations import MigrationRegistry
from forge_core.tactics.service import TacticServices

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "CommandRegistry",
    "ComponentRegistry",
    "DrillFigure",
    "DrillOptions",
    "DrillRegistry",
    "DrillReport",
    "DrillScenario",
    "Entry",
    "ManifestSectionRegistry",
    "MigrationRegistry",
    "NamedRegistry",
    "PluginInfo",
    "Plugins",
    "SchemaRegistry",
    "TacticKind",
    "TacticRegistry",
    "TacticServices",
    "TransportRegistry",
    "get_plugin_manager",
    "hookimpl",
]
