"""Fixtures for the CLI tests: an app built over fresh plugins, a scaffolded plant, subprocess runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from forge_core.cli import build_app


@pytest.fixture
def app() -> typer.Typer:
    return build_app()


@pytest.fixture
def invoke(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """``invoke("validate", path)`` → click Result (stdout and stderr kept apart)."""
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: object) -> object:
        return runner.invoke(app, [str(a) for a in args])

    return run


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FORGE_DEBUG", None)
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _forge(*args: object, cwd: Path | None = None, timeout: float = 120,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forge_core.cli", *map(str, args)], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def forge_env() -> Callable[..., dict[str, str]]:
    """``forge_env(PYTHONPATH=...)``: the environment subprocesses run with (no FORGE_DEBUG)."""
    return _env


@pytest.fixture
def forge() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``forge("run", path, ..., PYTHONPATH=...)``: the real command in a subprocess."""
    return _forge


@pytest.fixture(scope="module")
def bakery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plant scaffolded by ``forge new plant bakery`` (shared by a module's tests)."""
    where = tmp_path_factory.mktemp("scaffold")
    result = CliRunner().invoke(build_app(), ["new", "plant", "bakery", "--dir", str(where)])
    assert result.exit_code == 0, result.output
    return where / "bakery"
