"""The hooks of the ``sched`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_sched.components.blade_scheduler import BladeScheduler
from forge_sched.settings import BLADE_SCHEDULER_PARAMS

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sched.blade_scheduler", BladeScheduler, params_schema=BLADE_SCHEDULER_PARAMS,
                 description="pasta blade scheduler: discovery, balanced A/B, swap on failure and storage alerts, "
                             "active/shadow by leader election")
