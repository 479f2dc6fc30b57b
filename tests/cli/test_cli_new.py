"""``forge new``: the scaffolds validate, run and pass their own tests exactly as generated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLANT_FILES = {
    ".gitignore",
    "README.md",
    "plant.yaml",
    "components/bakery_machine.py",
    "schemas/bakery.reading.json",
    "schemas/bakery.command.json",
    "tests/test_plant.py",
}


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_new_plant_file_tree(bakery: Path) -> None:
    assert tree(bakery) == PLANT_FILES
    text = (bakery / "plant.yaml").read_text()
    assert "name: bakery" in text and "components/bakery_machine.py" in text
    assert "{{" not in "".join((bakery / f).read_text() for f in PLANT_FILES)
    schema = json.loads((bakery / "schemas/bakery.reading.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_scaffolded_plant_validates(invoke, bakery: Path) -> None:
    result = invoke("validate", bakery)
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "machine (bakery.machine)" in result.stdout
    data = json.loads(invoke("validate", bakery, "--json").stdout)
    assert data["ok"] is True and data["components"] == {"machine": "bakery.machine", "log": "forge.logger"}
    assert data["profiles"] == ["embedded"]


def test_scaffolded_plant_runs(forge, bakery: Path) -> None:
    result = forge("run", bakery, "--duration", "2.5s")
    assert result.returncode == 0, result.stderr
    assert "bakery/machine/reading bakery.reading from machine" in result.stdout
    assert "stop reason" in result.stdout and "duration 2.5s reached" in result.stdout
    assert "health on http://127.0.0.1:" in result.stdout


@pytest.mark.slow
def test_scaffolded_plant_tests_pass(forge_env, bakery: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(bakery / "tests")],
                            cwd=bakery, env=forge_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_refuses_to_overwrite(invoke, tmp_path: Path) -> None:
    (tmp_path / "bakery").mkdir()
    (tmp_path / "bakery" / "keep.txt").write_text("mine")
    result = invoke("new", "plant", "bakery", "--dir", tmp_path)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert tree(tmp_path / "bakery") == {"keep.txt"}


@pytest.mark.parametrize(("name", "says"), [
    ("Bakery", "starts with 'B'"), ("9lives", "starts with '9'"), ("my-plant", "it has '-'"), ("tests", "reserved"),
])
def test_refuses_bad_plant_names(invoke, tmp_path: Path, name: str, says: str) -> None:
    result = invoke("new", "plant", name, "--dir", tmp_path)
    assert result.exit_code == 2
    assert says in result.output
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["Forge-Acme", "forge--acme", "forge_acme", "forge-core"])
def test_refuses_bad_plugin_names(invoke, tmp_path: Path, name: str) -> None:
    result = invoke("new", "plugin", name, "--dir", tmp_path)
    assert result.exit_code == 2, result.output
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_new_plugin_installs_lists_and_passes_its_tests(invoke, forge, forge_env, tmp_path: Path) -> None:
    result = invoke("new", "plugin", "forge-acme", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    pkg = tmp_path / "forge-acme"
    assert tree(pkg) == {
        "README.md", "pyproject.toml", "src/forge_acme/__init__.py", "src/forge_acme/plugin.py",
        "src/forge_acme/settings.py",
        "src/forge_acme/components/__init__.py", "src/forge_acme/components/machine.py",
        "src/forge_acme/schemas/acme.reading.json", "tests/test_plugin.py",
    }
    assert 'acme = "forge_acme.plugin"' in (pkg / "pyproject.toml").read_text()

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(pkg)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    listed = forge("plugins", "--json", PYTHONPATH=str(site))
    assert listed.returncode == 0, listed.stderr
    acme = next(p for p in json.loads(listed.stdout) if p["name"] == "acme")
    assert acme["distribution"] == "forge-acme" and acme["kind"] == "installed"
    assert acme["provides"] == {"components": ["acme.machine"], "schemas": ["acme.reading"]}
    assert acme["hooks"] == ["forge_register_components", "forge_register_schemas"]

    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pkg,
                         env=forge_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=180)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "4 passed" in own.stdout  # the entry-point test runs too: it is installed
