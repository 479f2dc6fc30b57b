"""Whole-plant checks that count from both ends: what the machines sent against what PostgreSQL
recorded, commands the schedulers sent against commands the machines applied.

Run once per plant run over the merged summary (``forge_plant_checks``), so they see every
process's report, not one process's view of itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core import Check
    from forge_core.runtime import RunSummary


def count_checks(summary: RunSummary) -> list[Check]:
    return []  # filled by the counting-checks work (issue 11 §5)
