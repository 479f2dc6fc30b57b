"""Tactic implementations forge_sched provides for kinds other plugins declare."""
