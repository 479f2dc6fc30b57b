"""forge-sched: production schedulers for Forge plants (the pasta blade scheduler)."""

from forge_sched.components.blade_scheduler import BladeScheduler, Machine
from forge_sched.settings import BLADE_SCHEDULER_PARAMS, DEFAULT_TOPICS

__version__ = "0.1.0"

__all__ = ["BLADE_SCHEDULER_PARAMS", "DEFAULT_TOPICS", "BladeScheduler", "Machine", "__version__"]
