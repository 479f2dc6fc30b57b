"""Failure drills: scenarios a plant's plugin registers (``forge_register_drills``) and ``forge drill``
runs, and the report each one returns.

A scenario starts what the plant needs (brokers, databases, the plant's own processes), injects
one fault, heals it and measures what happened. Its :class:`DrillReport` is a list of
:class:`DrillFigure` — a measured value, its unit, what it should be and whether it is — so the
same report prints as a table for people, as JSON for machines, and is asserted figure by
figure in the plant's tests. ``forge drill`` exits 1 when a figure failed or the drill could not
run to its end.
"""

from __future__ import annotations

import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from forge_core.errors import ForgeError

Value = int | float | str | None

#: Scenario names are CLI words: ``broker-failure``.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class DrillFigure:
    """One measured figure of a drill: ``ok`` True/False against ``expect``, or None when it is only
    reported (a peak lag, a throughput) and has no limit to pass or fail."""

    name: str
    value: Value
    unit: str = ""
    expect: str = ""
    ok: bool | None = None
    note: str = ""

    @classmethod
    def info(cls, name: str, value: Value, unit: str = "", note: str = "") -> DrillFigure:
        """A figure reported without a limit."""
        return cls(name, value, unit, "", None, note)

    @classmethod
    def equal(cls, name: str, value: Value, expected: Value, unit: str = "", note: str = "") -> DrillFigure:
        """Passes when ``value == expected``; an unmeasured value (None) fails."""
        return cls(name, value, unit, f"= {_show(expected)}", value is not None and value == expected, note)

    @classmethod
    def at_most(cls, name: str, value: int | float | None, limit: int | float, unit: str = "",
                note: str = "") -> DrillFigure:
        """Passes when ``value <= limit``; an unmeasured value (None) fails."""
        return cls(name, value, unit, f"<= {_show(limit)}", value is not None and value <= limit, note)

    @classmethod
    def at_least(cls, name: str, value: int | float | None, limit: int | float, unit: str = "",
                 note: str = "") -> DrillFigure:
        """Passes when ``value >= limit``; an unmeasured value (None) fails."""
        return cls(name, value, unit, f">= {_show(limit)}", value is not None and value >= limit, note)

    @classmethod
    def check(cls, name: str, ok: bool, value: Value, expect: str, unit: str = "", note: str = "") -> DrillFigure:
        """A figure whose verdict the scenario decides itself (``expect`` says what it wanted)."""
        return cls(name, value, unit, expect, ok, note)

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else "ok" if self.ok else "FAILED"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "expect": self.expect, "ok": self.ok,
                "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillFigure:
        return cls(str(data["name"]), data.get("value"), str(data.get("unit", "")), str(data.get("expect", "")),
                   data.get("ok"), str(data.get("note", "")))


def _show(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


@dataclass
class DrillReport:
    """What a drill measured. ``timeline`` holds ``(seconds since the drill began, what happened)``;
    ``details`` anything else worth keeping (per-partition lags, log paths) for ``--json``;
    ``error`` says why the drill stopped before its end (then it failed whatever the figures say)."""

    scenario: str
    plant: str
    figures: list[DrillFigure] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def add(self, figure: DrillFigure) -> DrillFigure:
        self.figures.append(figure)
        return figure

    def figure(self, name: str) -> DrillFigure:
        for figure in self.figures:
            if figure.name == name:
                return figure
        known = ", ".join(f.name for f in self.figures) or "none"
        raise KeyError(f"drill {self.scenario!r} has no figure {name!r}; it has: {known}")

    def failed(self) -> list[DrillFigure]:
        return [f for f in self.figures if f.ok is False]

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failed()

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "plant": self.plant, "passed": self.passed, "error": self.error,
                "figures": [f.to_dict() for f in self.figures],
                "timeline": [{"at": at, "event": what} for at, what in self.timeline], "details": self.details}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillReport:
        return cls(str(data["scenario"]), str(data["plant"]),
                   [DrillFigure.from_dict(f) for f in data.get("figures", [])],
                   [(float(e["at"]), str(e["event"])) for e in data.get("timeline", [])],
                   dict(data.get("details") or {}), data.get("error"))

    def table(self) -> str:
        """The report as plain text: the timeline, then one row per figure."""
        lines = [f"drill {self.scenario} on {self.plant}: {'passed' if self.passed else 'FAILED'}"]
        if self.timeline:
            lines.append("timeline:")
            lines += [f"  {at:7.1f}s  {what}" for at, what in self.timeline]
        rows = [("figure", "value", "expected", "verdict")] + [
            (f.name, f"{_show(f.value)}{' ' + f.unit if f.unit and f.value is not None else ''}",
             f"{f.expect}{' ' + f.unit if f.unit and f.expect else ''}", f.verdict) for f in self.figures]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for n, row in enumerate(rows):
            text = f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip()
            lines.append(text)
            if n == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        notes = [(f.name, f.note) for f in self.figures if f.note]
        lines += [f"  * {name}: {note}" for name, note in notes]
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


@dataclass(frozen=True)
class DrillOptions:
    """How ``forge drill`` (or a test) asks a scenario to run.

    ``profile`` is the manifest profile to run the plant in (None: the scenario's ``profile``);
    ``seconds`` overrides the length of the scenario's phases (``{"fault": 20}``); ``work_dir`` keeps
    the servers' and the plant's files there instead of a temp dir removed at the end; ``log``
    receives progress lines (stderr by default, so ``--json`` keeps stdout clean).
    """

    profile: str | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    work_dir: Path | None = None
    log: Callable[[str], None] = _stderr
    extra: Mapping[str, Any] = field(default_factory=dict)

    def phase(self, scenario: DrillScenario, name: str) -> float:
        """Seconds of ``scenario``'s phase ``name``: the override, else the scenario's default."""
        if name in self.seconds:
            return float(self.seconds[name])
        try:
            return float(scenario.phases[name])
        except KeyError:
            raise ForgeError(f"drill {scenario.name!r} has no phase {name!r}; its phases: "
                             f"{', '.join(scenario.phases) or 'none'}") from None


class DrillScenario(ABC):
    """A failure drill a plugin registers for its plant: ``registry.add(BrokerFailure())``.

    ``name`` is the CLI word (``broker-failure``), ``description`` one line for ``forge drill PLANT
    --list``, ``phases`` the seconds of each phase ``--seconds PHASE=N`` may override, ``profile``
    the manifest profile it runs the plant in unless ``--profile`` says otherwise.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    phases: ClassVar[Mapping[str, float]] = {}
    profile: ClassVar[str | None] = None

    @abstractmethod
    def run(self, plant_dir: Path, options: DrillOptions) -> DrillReport:
        """Run the drill against the plant in ``plant_dir`` and return its report. Errors that stop
        the drill midway should end up in ``report.error`` with what was measured so far."""


def check_scenario(scenario: object) -> str | None:
    """What is wrong with ``scenario`` as a registered drill, or None."""
    if not isinstance(scenario, DrillScenario):
        return f"a drill must be a forge_core.plugin.DrillScenario instance, got {type(scenario).__name__}"
    if not NAME_PATTERN.match(scenario.name or ""):
        return f"drill name {scenario.name!r} must be lowercase words joined by '-' (e.g. 'broker-failure')"
    bad = [k for k, v in scenario.phases.items() if not isinstance(v, int | float) or v < 0]
    if bad:
        return f"drill {scenario.name!r}: phases {bad} must be seconds >= 0"
    return None


def parse_seconds(values: list[str], scenario: DrillScenario) -> dict[str, float]:
    """``--seconds`` values: ``PHASE=N`` (or a bare ``N`` for the ``fault`` phase) → {phase: seconds}."""
    out: dict[str, float] = {}
    for value in values:
        phase, sep, number = value.rpartition("=")
        phase = phase.strip() if sep else "fault"
        if phase not in scenario.phases:
            raise ForgeError(f"--seconds {value}: drill {scenario.name!r} has no phase {phase!r}; its phases: "
                             + (", ".join(f"{k}={v:g}" for k, v in scenario.phases.items()) or "none"))
        try:
            seconds = float(number)
        except ValueError:
            raise ForgeError(f"--seconds {value}: {number!r} is not a number of seconds") from None
        if seconds < 0:
            raise ForgeError(f"--seconds {value}: seconds must be >= 0")
        out[phase] = seconds
    return out
