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
    assert data["profiles"] == ["embedded", "quiet"]


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


PLUGIN_FILES = {
    "common": {"README.md", "pyproject.toml", "src/forge_acme/__init__.py", "src/forge_acme/plugin.py",
               "src/forge_acme/settings.py", "tests/test_plugin.py"},
    "component": {"src/forge_acme/components/__init__.py", "src/forge_acme/components/machine.py",
                  "src/forge_acme/schemas/acme.reading.json", "tests/components/test_machine.py",
                  "docs/plugins/acme.md"},
    "transport": {"src/forge_acme/transport/__init__.py", "src/forge_acme/transport/broker.py",
                  "src/forge_acme/transport/connection.py", "src/forge_acme/transport/publisher.py",
                  "src/forge_acme/transport/subscriber.py", "src/forge_acme/transport/transport.py",
                  "src/forge_acme/testing.py", "src/forge_acme/schemas/.gitkeep", "tests/conftest.py",
                  "tests/transport/test_conformance.py", "tests/transport/test_connection.py",
                  "tests/transport/test_subscriber.py", "docs/transports/acme.md"},
    "tactic": {"src/forge_acme/tactics/__init__.py", "src/forge_acme/tactics/ratelimit.py",
               "src/forge_acme/schemas/.gitkeep", "tests/tactics/test_ratelimit.py", "docs/plugins/acme.md"},
}
#: What ``forge plugins --json`` says each kind provides, and the hooks it implements.
PROVIDES = {
    "component": ({"components": ["acme.machine"], "schemas": ["acme.reading"]},
                  ["forge_register_components", "forge_register_schemas"]),
    "transport": ({"transports": ["acme"]}, ["forge_register_schemas", "forge_register_transports"]),
    "tactic": ({"tactics": ["acme_ratelimit", "acme_ratelimit.fixed_window"]},
               ["forge_register_schemas", "forge_register_tactics"]),
}
#: Tests each generated package runs (installed, so its entry-point tests run too).
OWN_TESTS = {"component": "6 passed", "transport": "16 passed", "tactic": "5 passed"}
KINDS = ["component", "transport", "tactic"]


def ruff(path: Path) -> subprocess.CompletedProcess[str]:
    """ruff over a generated tree, with the generated pyproject's own settings."""
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", KINDS)
def test_new_plugin_tree_layout_and_ruff(invoke, tmp_path: Path, kind: str) -> None:
    result = invoke("new", "plugin", "forge-acme", "--kind", kind, "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    pkg = tmp_path / "forge-acme"
    assert tree(pkg) == PLUGIN_FILES["common"] | PLUGIN_FILES[kind]
    assert "{{" not in "".join(p.read_text() for p in pkg.rglob("*") if p.is_file())
    assert 'acme = "forge_acme.plugin"' in (pkg / "pyproject.toml").read_text()
    assert ("[project.entry-points.pytest11]" in (pkg / "pyproject.toml").read_text()) == (kind == "transport")
    checked = invoke("check-plugin", pkg)
    assert checked.exit_code == 0, checked.output
    assert f"ok {pkg}" in checked.stdout
    linted = ruff(pkg)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_generated_code_is_ruff_clean_with_a_long_name(invoke, tmp_path: Path) -> None:
    """Names flow into lines: a long one must not push any past the line length."""
    for kind in KINDS:
        where = tmp_path / kind
        assert invoke("new", "plugin", "forge-zeta-bakery-works", "--kind", kind, "--dir", where).exit_code == 0
        linted = ruff(where / "forge-zeta-bakery-works")
        assert linted.returncode == 0, f"{kind}: {linted.stdout}{linted.stderr}"


def test_kind_defaults_to_component_and_refuses_unknown_kinds(invoke, tmp_path: Path) -> None:
    assert invoke("new", "plugin", "forge-acme", "--dir", tmp_path).exit_code == 0
    assert (tmp_path / "forge-acme" / "src" / "forge_acme" / "components" / "machine.py").is_file()
    result = invoke("new", "plugin", "forge-other", "--kind", "scheduler", "--dir", tmp_path)
    assert result.exit_code == 2
    assert "scheduler" in result.output and not (tmp_path / "forge-other").exists()


def test_check_plugin_reports_every_problem_and_fails(invoke, tmp_path: Path) -> None:
    assert invoke("new", "plugin", "forge-acme", "--dir", tmp_path).exit_code == 0
    pkg = tmp_path / "forge-acme"
    (pkg / "README.md").unlink()
    (pkg / "src" / "forge_acme" / "settings.py").write_text("PARAMS = {}\n")
    result = invoke("check-plugin", pkg)
    assert result.exit_code == 1
    assert "forge_acme: README.md: missing" in result.stdout
    assert "forge_acme: src/forge_acme/settings.py: defines no forge_core.Settings subclass" in result.stdout
    data = json.loads(invoke("check-plugin", pkg, "--json").stdout)
    assert {(p["plugin"], p["file"]) for p in data} == {("forge_acme", "README.md"),
                                                        ("forge_acme", "src/forge_acme/settings.py")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_new_plugin_installs_lists_and_passes_its_tests(invoke, forge, forge_env, tmp_path: Path, kind: str) -> None:
    result = invoke("new", "plugin", "forge-acme", "--kind", kind, "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    pkg = tmp_path / "forge-acme"

    # into a directory of its own, not the shared venv: other tests must not see the plugin
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(pkg)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    listed = forge("plugins", "--json", PYTHONPATH=str(site))
    assert listed.returncode == 0, listed.stderr
    acme = next(p for p in json.loads(listed.stdout) if p["name"] == "acme")
    assert acme["distribution"] == "forge-acme" and acme["kind"] == "installed"
    provides, hooks = PROVIDES[kind]
    assert acme["provides"] == provides
    assert acme["hooks"] == hooks

    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pkg,
                         env=forge_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=300)
    assert own.returncode == 0, own.stdout + own.stderr
    assert OWN_TESTS[kind] in own.stdout  # the entry-point tests run too: it is installed
