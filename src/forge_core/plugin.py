"""Public API for plugin authors: the hook marker, the registries a registration hook fills,
the plugin manager (for tests and tools that build one) and :func:`lazy_exports` for a plugin
package's ``__init__``.

See docs/hooks.md for every hook and docs/writing-a-plugin.md for a plugin from scratch.

Loading the plugins must stay cheap (``forge --help`` loads every installed one), so the names
here that pull in pydantic, jsonschema or SQLAlchemy are imported on first use.
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports
from forge_core.hookspecs import hookimpl
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

if TYPE_CHECKING:
    from forge_core.drills import DrillFigure, DrillOptions, DrillReport, DrillScenario
    from forge_core.messages.schemas import SchemaRegistry
    from forge_core.storage.migrations import MigrationRegistry
    from forge_core.tactics.service import TacticServices

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DrillFigure": "forge_core.drills:DrillFigure",
        "DrillOptions": "forge_core.drills:DrillOptions",
        "DrillReport": "forge_core.drills:DrillReport",
        "DrillScenario": "forge_core.drills:DrillScenario",
        "SchemaRegistry": "forge_core.messages.schemas:SchemaRegistry",
        "MigrationRegistry": "forge_core.storage.migrations:MigrationRegistry",
        "TacticServices": "forge_core.tactics.service:TacticServices",
    },
)

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
    "lazy_exports",
]
