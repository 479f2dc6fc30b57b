"""The hooks of the ``industry40`` plugin (entry point ``industry40 = "industry40.plugin"``).

The message schemas belong to the plant (``schemas: [schemas]`` in plant.yaml), not to this
package, so a plain client's protocol lives beside the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core import ManifestProblem
    from forge_core.dashboard import Panel
    from forge_core.manifest.model import Manifest
    from forge_core.plugin import ComponentRegistry
    from forge_core.runtime import Runtime
    from forge_core.storage.migrations import MigrationRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("industry40.factory", "industry40.components.factory:Factory",
                 description="a simulated factory: beats, failure modes, orders")
    registry.add("industry40.clients", "industry40.components.clients:Clients",
                 description="customers posting orders to the PMS's REST API")
    registry.add("industry40.chaos", "industry40.components.chaos:Chaos",
                 description="seeded factory failures and MMS/PMS kills")
    registry.add("industry40.mode_api", "industry40.components.mode_api:ModeApi",
                 description="POST /simulator/factories/{id}/mode: an operator's failure mode for a factory")
    registry.add("industry40.erp_link", "industry40.components.erp_link:ErpLink",
                 description="ERP requests (forge-b2mml) as PMS orders (forge-sched), completions back as "
                             "performance exports")
    registry.add("industry40.erp", "industry40.components.erp:Erp",
                 description="a simulated ERP: B2MML schedules by folder and HTTP, re-sends, Change/Cancel/Get")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    # the ERP link's requests and unanswered asks (industry40.components.erp_state), branch "industry40"
    registry.add("industry40", Path(__file__).parent / "migrations")


@hookimpl
def forge_dashboard_panel(runtime: Runtime) -> Panel | None:
    """Factories and orders on ``forge run --dashboard`` (docs/dashboard.md)."""
    from industry40.dashboard import panel

    return panel(runtime)


@hookimpl
def forge_validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """A factory's capacity written twice (its params, the order scheduler's) must agree (validation.py)."""
    from industry40.validation import capacity_problems

    return capacity_problems(manifest)
