"""Public API for running plants from code: load a plant, run it, stop it on a signal.

The runtime's submodules are private; import from here.
"""

from forge_core.plant import load_plant
from forge_core.runtime.processes import ProcessRunner
from forge_core.runtime.runtime import Runtime
from forge_core.runtime.signals import run_until_signalled
from forge_core.runtime.summary import RunSummary

__all__ = ["ProcessRunner", "RunSummary", "Runtime", "load_plant", "run_until_signalled"]
