"""Forge reference plant four: an OEE line (docs/examples/oee_line.md)."""

from __future__ import annotations

from oee_line.oee import OeeFigures, combine, compute, machine_window

__all__ = ["OeeFigures", "combine", "compute", "machine_window"]
