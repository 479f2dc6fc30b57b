"""Whole-plant check on fencing epochs: no machine applied a command whose epoch no leader held.

Run once per plant run over the merged summary (``forge_plant_checks``), so it sees every
machine and the lease's grant history even when each runs in its own process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core import Check
    from forge_core.runtime import RunSummary


def epoch_checks(summary: RunSummary) -> list[Check]:
    return []  # filled by the signed-commands work (issue 11 §1)
