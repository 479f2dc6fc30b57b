"""RunSummary: the verdict line a person reads first and last, killed instances' checks listed."""

from __future__ import annotations

from forge_core.runtime.summary import NOT_RUN, Check, RunSummary, iso_time


def summary(checks: list[Check], components: dict[str, str] | None = None, **kw: object) -> RunSummary:
    return RunSummary(plant="p", profile=None, clock="virtual", seed=0, duration=60.0, wall_seconds=0.1,
                      components=components or {"machine": "stopped"}, checks=checks, **kw)  # type: ignore[arg-type]


def test_verdict_when_every_check_passed() -> None:
    s = summary([Check(f"c{i}", True, "ok", "machine") for i in range(16)])
    assert s.verdict == "all 16 checks passed"
    assert s.to_dict()["verdict"] == "all 16 checks passed"


def test_verdict_names_the_failed_checks() -> None:
    checks = [Check(f"c{i}", True, "ok", "machine") for i in range(18)] + [Check("stock >= 0", False, "-3", "prod")]
    assert summary(checks).verdict == "1 of 19 checks FAILED: stock >= 0 (prod)"


def test_verdict_counts_checks_that_never_ran_apart() -> None:
    checks = [Check("a", True, "ok", "m-0"), Check("a", True, f"{NOT_RUN}killed", "m-1")]
    assert summary(checks).verdict == "all 1 checks that ran passed (1 not run: instance killed)"


def test_verdict_says_a_failed_component_even_when_checks_pass() -> None:
    s = summary([Check("a", True, "ok", "m")], {"m": "failed", "n": "stopped"})
    assert s.verdict == "all 1 check passed; 1 component FAILED: m"
    assert summary([], {"m": "stopped"}).verdict == "no checks declared"


def test_a_killed_unreported_instance_has_its_checks_listed_as_not_run() -> None:
    s = summary([Check("never twice", True, "ok", "machine-0"), Check("epochs", True, "ok", "machine-0"),
                 Check("fleet", True, "ok", "monitor")],
                {"machine-0": "stopped", "machine-1": "killed", "monitor": "stopped"},
                reports={"machine-0": {"n": 1}, "monitor": {"n": 2}})
    assert s.unreported == ["machine-1"]
    s.note_unreported()
    listed = [(c.name, c.component) for c in s.not_run]
    assert listed == [("never twice", "machine-1"), ("epochs", "machine-1")]
    s.note_unreported()  # idempotent: already listed
    assert len(s.not_run) == 2


def test_a_killed_instance_without_siblings_gets_one_entry() -> None:
    s = summary([], {"chaos": "killed"})
    s.note_unreported()
    assert [(c.name, c.component, c.passed) for c in s.checks] == [("checks", "chaos", True)]


def test_iso_time() -> None:
    assert iso_time(1704074349.361) == "2024-01-01T01:59:09.361Z"
