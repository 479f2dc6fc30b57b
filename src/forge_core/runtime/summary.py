"""What a run did, printed by ``forge run`` at the end and passed to ``forge_plant_stopped``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from forge_core.checks import Check

if TYPE_CHECKING:
    from forge_core.runtime.supervisor import Supervisor

log = logging.getLogger("forge.runtime")

__all__ = ["NOT_RUN", "Check", "RunSummary", "iso_time", "not_run"]

#: How the detail of a check that could not run begins (its instance was killed before reporting).
NOT_RUN = "not run: "


def iso_time(epoch: float) -> str:
    """``epoch`` (seconds since 1970, UTC) as ISO 8601 with milliseconds: ``2024-01-01T01:59:09.361Z``.
    The one time format of reports and logs (a virtual run's times are plant times)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def not_run(name: str, component: str, at: float, why: str = "") -> Check:
    """A check of ``component`` that never ran because its process was SIGKILLed at ``at``
    (``time.time()``): listed, not absent. It does not fail the run (a kill is the drill, not a
    violation); the checks that see what the kill did are the cross-process ones."""
    return Check(name, True, f"{NOT_RUN}killed at {iso_time(at)}" + (f" ({why})" if why else ""), component)


@dataclass
class RunSummary:
    plant: str
    profile: str | None
    clock: str  # "real" | "virtual"
    seed: int | None
    duration: float  # seconds on the run's clock
    wall_seconds: float
    components: dict[str, str] = field(default_factory=dict)  # instance -> final state
    restarts: dict[str, int] = field(default_factory=dict)  # instance -> restarts after a crash
    #: Instance -> times it was killed (chaos: ``runtime.kill``; a SIGKILL of its process). A kill
    #: followed by a revive is a restart too; the components table shows both, so its numbers add
    #: up to what the chaos component counted.
    kills: dict[str, int] = field(default_factory=dict)
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

    @property
    def unreported(self) -> list[str]:
        """Killed instances that left no report (a SIGKILL leaves none): stated, never silently absent."""
        return [name for name, state in self.components.items()
                if state == "killed" and name not in self.reports]

    def note_unreported(self) -> None:
        """List the checks of every killed, unreported instance as not run (named after a sibling
        replica's: machine-1's for machine-2; else one "checks" entry), so a kill shortly before the
        end does not shrink "all N checks passed" unseen. Instances already listed are left alone."""
        listed = {c.component for c in self.checks}
        for name in self.unreported:
            if name in listed:
                continue
            group = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
            known = list(dict.fromkeys(c.name for c in self.checks if c.component != name
                                       and c.component.rsplit("-", 1)[0] == group)) or ["checks"]
            self.checks += [Check(check, True, f"{NOT_RUN}killed, still down when the run ended", name)
                            for check in known]

    @property
    def verdict(self) -> str:
        """One line for a person: ``all 16 checks passed`` / ``1 of 19 checks FAILED: NAME (COMPONENT)``,
        plus failed components and checks that never ran. Printed first and last by ``forge run``."""
        failed = [c for c in self.checks if not c.passed]
        skipped = len(self.not_run)
        total = len(self.checks)
        noun = "check" if total == 1 else "checks"
        if failed:
            line = f"{len(failed)} of {total} {noun} FAILED: " + "; ".join(
                f"{c.name} ({c.component})" if c.component else c.name for c in failed)
        elif total == 0:
            line = "no checks declared"
        elif skipped:
            line = f"all {total - skipped} {noun} that ran passed ({skipped} not run: instance killed)"
        else:
            line = f"all {total} {noun} passed"
        if self.failed:
            line += f"; {len(self.failed)} component{'s' if len(self.failed) != 1 else ''} FAILED: " \
                + ", ".join(self.failed)
        return line

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        data["total_published"] = self.total_published
        data["total_dead_letters"] = self.total_dead_letters
        data["checks_not_run"] = len(self.not_run)
        return data


def collect_reports(supervisors: Mapping[str, Supervisor]) -> tuple[dict[str, dict[str, Any]], list[Check]]:
    """Every live instance's report and checks, asked while it still exists. A component whose
    ``report`` or ``checks`` raises gets a failed ``report`` check, so a broken report never loses
    the summary and never passes silently."""
    reports: dict[str, dict[str, Any]] = {}
    checks: list[Check] = []
    for name, supervisor in supervisors.items():
        instance = supervisor.instance
        if instance is None:
            continue
        try:
            report = instance.report()
            own = instance.checks()
        except Exception as exc:
            log.exception("component %s failed to report", name)
            checks.append(Check("report", False, f"{type(exc).__name__}: {exc}", name))
            continue
        if report:
            reports[name] = report
        for check in own:
            check.component = check.component or name
            checks.append(check)
    return reports, checks
