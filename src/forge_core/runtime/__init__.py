"""Public API for running plants from code: load a plant, run it, stop it on a signal.

The runtime's submodules are private; import from here.
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports

if TYPE_CHECKING:
    from forge_core.plant import load_plant
    from forge_core.runtime.processes import ProcessRunner
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.signals import run_until_signalled
    from forge_core.runtime.summary import RunSummary

# Imported on first use: the runtime pulls in the plant loader, bus, storage and servers; `forge --help` needs none.
__getattr__, __dir__ = lazy_exports(__name__, {
    "load_plant": "forge_core.plant:load_plant",
    "ProcessRunner": "forge_core.runtime.processes:ProcessRunner",
    "Runtime": "forge_core.runtime.runtime:Runtime",
    "run_until_signalled": "forge_core.runtime.signals:run_until_signalled",
    "RunSummary": "forge_core.runtime.summary:RunSummary",
})

__all__ = ["ProcessRunner", "RunSummary", "Runtime", "load_plant", "run_until_signalled"]
