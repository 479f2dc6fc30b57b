"""Forge reference plant four: an OEE line (docs/examples/oee_line.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
    from oee_line.oee import OeeFigures, combine, compute, machine_window

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) need not import the OEE model (15 ms of a 0.5 s start-up budget).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "OeeFigures": "oee_line.oee:OeeFigures",
        "combine": "oee_line.oee:combine",
        "compute": "oee_line.oee:compute",
        "machine_window": "oee_line.oee:machine_window",
    },
)

__all__ = ["OeeFigures", "combine", "compute", "machine_window"]
