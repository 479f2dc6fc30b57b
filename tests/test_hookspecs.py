"""Meta-tests that keep the hooks honest: each one documented, tested, prefixed and described."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from forge_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOK_DOCS = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
HOOK_TESTS = "\n".join(path.read_text(encoding="utf-8")
                       for path in sorted((ROOT / "tests" / "hooks").glob("test_*.py")))
HOOKS = hookspecs.hook_names()


def test_there_are_hooks():
    assert len(HOOKS) >= 15


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_signature(name):
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"{name}({params})" in HOOK_DOCS, f"docs/hooks.md must show `{name}({params})`"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name):
    assert re.search(rf"^def test_hook_{name}\b", HOOK_TESTS, re.M), f"tests/hooks/ needs test_hook_{name}"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_says_when_params_returns_and_version(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called" in doc or "called" in doc, f"{name}: say when it is called"
    assert ":returns:" in doc, f"{name}: say what it returns and how results combine"
    assert "versionadded" in doc
    for param in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f":param {param}:" in doc, f"{name}: document parameter {param}"


def test_every_hook_is_prefixed_and_nothing_else_is_a_hook():
    specs = [n for n, v in vars(hookspecs).items() if hasattr(v, "forge_spec")]
    assert sorted(specs) == sorted(HOOKS)
    assert all(name.startswith("forge_") for name in specs)
