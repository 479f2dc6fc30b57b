"""What a run did, printed by ``forge run`` at the end and passed to ``forge_plant_stopped``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from forge_core.checks import Check

__all__ = ["NOT_RUN", "Check", "RunSummary", "not_run"]

#: How the detail of a check that could not run begins (its instance was killed before reporting).
NOT_RUN = "not run: "


def not_run(name: str, component: str, at: float, why: str = "") -> Check:
    """A check of ``component`` that never ran because its process was SIGKILLed at ``at``
    (``time.time()``): listed, not absent. It does not fail the run (a kill is the drill, not a
    violation); the checks that see what the kill did are the cross-process ones."""
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Check(name, True, f"{NOT_RUN}killed at {when}" + (f" ({why})" if why else ""), component)


@dataclass
class RunSummary:
    plant: str
    profile: str | None
    clock: str  # "real" | "virtual"
    seed: int | None
    duration: float  # seconds on the run's clock
    wall_seconds: float
    components: dict[str, str] = field(default_factory=dict)  # instance -> final state
    restarts: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)
    handled: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    forwarded: int = 0
    trace_digest: str | None = None
    trace_messages: int = 0
    stop_reason: str = ""
    #: Per component instance, what its ``report()`` returned (only non-empty reports).
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every component's invariant checks; ``forge run`` exits non-zero when one failed.
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checks_passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def not_run(self) -> list[Check]:
        """Checks listed but never run (their instance was killed before it could report)."""
        return [c for c in self.checks if c.detail.startswith(NOT_RUN)]

    @property
    def total_published(self) -> int:
        return sum(self.published.values())

    @property
    def total_dead_letters(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def failed(self) -> list[str]:
        """Instances that gave up in a crash loop, or were down after a crash when the run ended."""
        return [name for name, state in self.components.items() if state in ("failed", "crashed")]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_published"] = self.total_published
        data["total_dead_letters"] = self.total_dead_letters
        data["checks_not_run"] = len(self.not_run)
        return data
