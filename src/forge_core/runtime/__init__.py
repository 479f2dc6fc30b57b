"""The runtime: loads a plant, wires components to transports, supervises and stops them."""

from forge_core.runtime.runtime import Runtime
from forge_core.runtime.summary import RunSummary

__all__ = ["RunSummary", "Runtime"]
