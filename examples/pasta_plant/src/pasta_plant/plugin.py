"""The hooks of the ``pasta`` plugin (entry point ``pasta = "pasta_plant.plugin"``).

The message schemas belong to the plant (``schemas: [schemas]`` in plant.yaml), not to this
package, so a plain client's protocol lives beside the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core import Check
    from forge_core.dashboard import Panel
    from forge_core.plugin import CommandRegistry, ComponentRegistry
    from forge_core.runtime import RunSummary, Runtime
    from forge_core.storage import MigrationRegistry

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("pasta.cutting_machine", "pasta_plant.components.machine:CuttingMachine")
    registry.add("pasta.sorting", "pasta_plant.components.sorting:Sorting")
    registry.add("pasta.batch_production", "pasta_plant.components.production:BatchProduction")
    registry.add("pasta.chaos", "pasta_plant.components.chaos:Chaos")
    registry.add("pasta.monitor", "pasta_plant.components.monitor:Monitor")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    if "pasta" not in registry:
        registry.add("pasta", MIGRATIONS, plugin="forge-example-pasta")


@hookimpl
def forge_register_commands(registry: CommandRegistry) -> None:
    registry.add("monitor", "pasta_plant.cli:monitor", help="Tail a plant's messages, colour-coded by topic.")


@hookimpl
def forge_plant_checks(summary: RunSummary) -> list[Check]:
    """Checks across processes (every instance's report, merged): see epoch_checks and count_checks."""
    from pasta_plant.count_checks import count_checks
    from pasta_plant.epoch_checks import epoch_checks

    return [*epoch_checks(summary), *count_checks(summary)]


@hookimpl
def forge_dashboard_panel(runtime: Runtime) -> Panel | None:
    """Machines, blades, stock levels and the leader on ``forge run --dashboard`` (docs/dashboard.md)."""
    from pasta_plant.dashboard import panel

    return panel(runtime)
