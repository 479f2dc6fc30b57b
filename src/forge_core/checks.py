"""An invariant checked over a run, reported in the run summary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    """An invariant a component checked over the run (``Component.checks()``)."""

    name: str
    passed: bool
    detail: str = ""
    component: str = ""
