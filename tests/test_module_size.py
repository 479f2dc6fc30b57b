"""Small modules with one job each: every Python module of the core (src/forge_core), of the plugins
(plugins/: their code, tests and benchmarks), of the example plants (examples/: their code, migrations
and tests), of the top-level benchmarks (benchmarks/) and of the core's tests (tests/) stays within
MAX_MODULE_LINES, the limit the plugin layout check applies (forge_core.cli.layout).
A module past it is a sign it does more than one thing: split it by job, re-exporting what callers import
from it (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.cli.layout import MAX_MODULE_LINES

REPO = Path(__file__).resolve().parents[1]
ROOTS = (REPO / "src" / "forge_core", REPO / "plugins", REPO / "examples", REPO / "benchmarks", REPO / "tests")
SKIPPED_DIRS = {"__pycache__", ".venv", "build", "dist", "node_modules", ".git"}

#: Modules allowed past the limit: repository path -> why it cannot be split by job. Empty on purpose;
#: an entry must say why splitting would make the module worse, not that splitting is work.
ALLOWED: dict[str, str] = {}


def modules() -> list[Path]:
    found = []
    for root in ROOTS:
        for path in root.rglob("*.py"):
            if SKIPPED_DIRS.isdisjoint(path.relative_to(REPO).parts) and not path.parent.name.endswith(".egg-info"):
                found.append(path)
    return sorted(found)


def lines_of(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def oversized(paths: list[Path], limit: int = MAX_MODULE_LINES) -> list[str]:
    """One message per module past ``limit`` and not in ALLOWED, naming it and its length."""
    problems = []
    for path in paths:
        name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        lines = lines_of(path)
        if lines > limit and name not in ALLOWED:
            problems.append(f"{name}: {lines} lines, over {limit}: split it by job (a module per responsibility, "
                            "re-exporting the names callers import), or add it to ALLOWED in "
                            "tests/test_module_size.py with why it cannot split")
    return problems


def test_every_core_plugin_and_example_module_is_within_the_limit() -> None:
    problems = oversized(modules())
    assert not problems, f"{len(problems)} module(s) too long:\n" + "\n".join(f"  {p}" for p in problems)


def test_the_check_sees_the_core_and_every_plugin() -> None:
    found = {path.relative_to(REPO).as_posix() for path in modules()}
    assert "src/forge_core/transport/memory_hub.py" in found
    assert "src/forge_core/hookspecs/registration.py" in found
    plugins = {p.name for p in (REPO / "plugins").iterdir() if (p / "src").is_dir()}
    assert plugins and all(any(f.startswith(f"plugins/{p}/src/") for f in found) for p in plugins)
    assert any(f.startswith("plugins/") and "/tests/" in f for f in found)


def test_the_check_sees_every_example_its_code_migrations_and_tests() -> None:
    found = {path.relative_to(REPO).as_posix() for path in modules()}
    examples = {p.name for p in (REPO / "examples").iterdir() if (p / "src").is_dir()}
    assert examples, "no example plant found under examples/"
    for example in examples:
        for part in ("src", "tests"):
            assert any(f.startswith(f"examples/{example}/{part}/") for f in found), (example, part)
    assert any(f.startswith("examples/") and "/migrations/" in f for f in found)
    assert any(f.startswith("examples/") and "/tests/" in f and f.endswith("/conftest.py") for f in found)


@pytest.mark.parametrize(("lines", "flagged"), [(MAX_MODULE_LINES, False), (MAX_MODULE_LINES + 1, True)])
def test_a_module_past_the_limit_is_named_with_its_length(tmp_path: Path, lines: int, flagged: bool) -> None:
    module = tmp_path / "big.py"
    module.write_text("x = 1\n" * lines)
    problems = oversized([module])
    if flagged:
        assert problems == [f"{module}: {lines} lines, over {MAX_MODULE_LINES}: split it by job (a module per "
                            "responsibility, re-exporting the names callers import), or add it to ALLOWED in "
                            "tests/test_module_size.py with why it cannot split"]
    else:
        assert problems == []


def test_every_allowed_module_exists_is_still_long_and_says_why() -> None:
    for name, reason in ALLOWED.items():
        assert (REPO / name).is_file(), f"ALLOWED names {name}, which does not exist: remove it"
        assert lines_of(REPO / name) > MAX_MODULE_LINES, f"{name} is within the limit now: remove it from ALLOWED"
        assert len(reason.split()) >= 5, f"ALLOWED[{name!r}]: say why it cannot split"
