"""forge_core.compiler (scripts/compile.py in Forge's checkout) end to end, as a plugin's author runs it:
a tiny project listing one typed module under ``[tool.forge.compile]`` compiles in place (its ``.so`` is what
imports), re-running does nothing, an edit of the source is reported stale by ``--check`` and by
forge_core.compiled (the pytest plugin's guard), ``--clean`` goes back to pure Python (docs/compiled.md).
A real mypyc run: slow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forge_core import compiled

PYPROJECT = """\
[project]
name = "tiny-plugin"
version = "0.1.0"

[tool.forge.compile]
modules = ["tinypkg.fast"]
"""
FAST = "def add(a: int, b: int) -> int:\n    return a + b\n"


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m forge_core.compiler`` in the project's directory (its mypy configuration, its modules)."""
    return subprocess.run([sys.executable, "-m", "forge_core.compiler", *args], cwd=project, capture_output=True,
                          text=True, timeout=600)


def imported_from(project: Path) -> tuple[str, int]:
    """(the file ``tinypkg.fast`` imports from, its ``add(2, 3)``) in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    code = "import tinypkg.fast as m; print(m.__file__); print(m.add(2, 3))"
    file, result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout.split()
    return file, int(result)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    package = tmp_path / "src" / "tinypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fast.py").write_text(FAST)
    return tmp_path


@pytest.mark.slow
def test_compile_check_stale_and_clean(project: Path) -> None:
    package = project / "src" / "tinypkg"
    built = run(project)
    assert built.returncode == 0, built.stdout + built.stderr
    assert imported_from(project) == (str(package / ("fast" + compiled.EXT_SUFFIX)), 5)
    assert (package / compiled.MANIFEST).is_file()
    assert (package / ("_mypyc__mypyc" + compiled.EXT_SUFFIX)).is_file()  # the group's library, in the package
    assert [(s.module, s.state) for s in compiled.package_status(package)] == [("tinypkg.fast", compiled.COMPILED)]
    assert "up to date" in run(project).stdout  # idempotent: nothing rebuilt

    (package / "fast.py").write_text(FAST.replace("a + b", "a + b + 1"))
    check = run(project, "--check")
    assert check.returncode == 1
    assert "tiny-plugin: tinypkg.fast (stale:" in check.stdout and str(package / "fast.py") in check.stdout
    [status] = compiled.package_status(package)
    assert status.state == compiled.STALE and str(package / "fast.py") in status.detail
    assert imported_from(project)[1] == 5  # what the guard is for: the old code still runs

    assert run(project, "--clean").returncode == 0
    assert imported_from(project) == (str(package / "fast.py"), 6)
    assert compiled.package_status(package) == []
    assert run(project, "--check").returncode == 1  # listed, not compiled


def test_a_listed_module_that_does_not_exist_is_named(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.replace("tinypkg.fast", "tinypkg.nope"))
    result = run(project, "--check")
    assert result.returncode == 1
    assert "tiny-plugin" in result.stderr and "tinypkg.nope does not exist" in result.stderr
    assert str(project / "src" / "tinypkg" / "nope.py") in result.stderr


@pytest.mark.slow
def test_a_type_error_fails_the_build_with_mypyc_s_message(project: Path) -> None:
    (project / "src" / "tinypkg" / "fast.py").write_text("def add(a: int, b: int) -> int:\n    return 'x'\n")
    result = run(project)
    assert result.returncode == 1
    assert "fast.py:2: error" in result.stdout + result.stderr
    assert "mypyc failed" in result.stderr
