"""The hooks of the ``oee_line`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations
