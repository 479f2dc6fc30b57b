"""The components of forge_sched, one module each."""

from forge_sched.components.blade_scheduler import BladeScheduler

__all__ = ["BladeScheduler"]
