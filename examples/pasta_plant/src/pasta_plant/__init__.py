"""The pasta factory reference plant: cutting machines, sorting, batch production, chaos and a
live view, as Forge components (the scheduler and the storage monitor come from forge-sched and
forge-mms)."""

__version__ = "0.1.0"
