"""The layout meta-test (Forge's hassfest): every plugin of the repository and every scaffold kind
keeps the one plugin layout, and the checker catches each kind of deviation with a message that
names the plugin, the file and what is expected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from forge_core.cli.layout import MAX_MODULE_LINES, Problem, check_plugin
from forge_core.cli.new import PluginKind, plugin_values, scaffold

REPO = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (REPO / "plugins").glob("forge_*") if p.is_dir())


def _report(problems: list[Problem]) -> str:
    return "\n".join(f"  {p}" for p in problems)


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_repository_plugin_keeps_the_layout(plugin: Path) -> None:
    problems = check_plugin(plugin, docs_dirs=[REPO / "docs"])
    assert problems == [], f"{plugin.name} deviates from the plugin layout:\n{_report(problems)}"


def test_every_repository_plugin_is_checked() -> None:
    assert {p.name for p in PLUGINS} >= {"forge_mqtt", "forge_kafka", "forge_sched", "forge_mms"}


def make(tmp_path: Path, kind: PluginKind = PluginKind.component, name: str = "forge-acme") -> Path:
    target = tmp_path / name
    scaffold(f"plugin-{kind.value}", target, plugin_values(name))
    return target


@pytest.mark.parametrize("kind", list(PluginKind))
def test_scaffold_keeps_the_layout(tmp_path: Path, kind: PluginKind) -> None:
    problems = check_plugin(make(tmp_path, kind), docs_dirs=[])
    assert problems == [], _report(problems)


# -- each rule catches its deviation ------------------------------------------------------------
def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        file = root / path
        text = file.read_text()
        assert old in text, f"{path} no longer contains {old!r}: update the test"
        file.write_text(text.replace(old, new))

    return apply


def _remove(path: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        target = root / path
        if target.is_dir():
            for child in sorted(target.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            target.rmdir()
        else:
            target.unlink()

    return apply


def _write(path: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)

    return apply


PKG = "src/forge_acme"
DEVIATIONS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # id: (change, file named, words of the message)
    "no pyproject": (_remove("pyproject.toml"), "pyproject.toml", "missing"),
    "no forge entry point": (_edit("pyproject.toml", 'acme = "forge_acme.plugin"', ""), "pyproject.toml",
                             "no [project.entry-points.forge]"),
    "entry point not at plugin.py": (_edit("pyproject.toml", 'acme = "forge_acme.plugin"',
                                           'acme = "forge_acme.hooks"'), "pyproject.toml",
                                     "expected \"forge_acme.plugin\""),
    "no README": (_remove("README.md"), "README.md", "missing"),
    "no __all__": (_write(f"{PKG}/__init__.py", '"""acme"""\n'), f"{PKG}/__init__.py", "no __all__"),
    "no plugin.py": (_remove(f"{PKG}/plugin.py"), f"{PKG}/plugin.py", "missing"),
    "helper in plugin.py": (_edit(f"{PKG}/plugin.py", "@hookimpl\ndef forge_register_schemas",
                                  "def helper() -> None:\n    pass\n\n\n@hookimpl\ndef forge_register_schemas"),
                            f"{PKG}/plugin.py", "helper() is not a @hookimpl"),
    "constant in plugin.py": (_edit(f"{PKG}/plugin.py", "\n\n@hookimpl", "\nSCHEMAS = 1\n\n\n@hookimpl"),
                              f"{PKG}/plugin.py", "assign SCHEMAS at module level"),
    "schemas not registered": (_edit(f"{PKG}/plugin.py", "def forge_register_schemas", "def forge_other"),
                               f"{PKG}/plugin.py", "does not implement forge_register_schemas"),
    "no schemas dir": (_remove(f"{PKG}/schemas"), f"{PKG}/schemas", "missing"),
    "unprefixed schema": (_write(f"{PKG}/schemas/reading.json", "{}"), f"{PKG}/schemas/reading.json",
                          "expected acme.<name>.json"),
    "no settings.py": (_remove(f"{PKG}/settings.py"), f"{PKG}/settings.py", "missing"),
    "settings without a Settings model": (_write(f"{PKG}/settings.py", "PARAMS = {'type': 'object'}\n"),
                                          f"{PKG}/settings.py", "defines no forge_core.Settings subclass"),
    "no components, transport or tactics": (_remove(f"{PKG}/components"), PKG, "has none of components/"),
    "tests do not mirror src": (_remove("tests/components"), "tests/components", "tests mirror src/"),
    "no tests": (_remove("tests"), "tests", "missing"),
    "no docs page": (_remove("docs"), "docs/plugins/acme.md", "no docs page"),
    "testing.py without pytest11": (_write(f"{PKG}/testing.py", '"""fixtures"""\n'), "pyproject.toml",
                                    "no [project.entry-points.pytest11]"),
    "module too long": (_write(f"{PKG}/components/big.py", "x = 1\n" * (MAX_MODULE_LINES + 1)),
                        f"{PKG}/components/big.py", f"{MAX_MODULE_LINES + 1} lines, over {MAX_MODULE_LINES}"),
}


@pytest.mark.parametrize("change", list(DEVIATIONS))
def test_checker_names_plugin_file_and_expectation(tmp_path: Path, change: str) -> None:
    apply, file, words = DEVIATIONS[change]
    root = make(tmp_path)
    apply(root)
    problems = check_plugin(root, docs_dirs=[])
    assert any(p.file == file and words in p.message for p in problems), _report(problems)
    assert all(p.plugin == "forge_acme" or p.file == "pyproject.toml" for p in problems), _report(problems)


def test_transport_package_must_be_split(tmp_path: Path) -> None:
    root = make(tmp_path, PluginKind.transport)
    (root / PKG / "transport" / "publisher.py").unlink()
    problems = check_plugin(root, docs_dirs=[])
    assert [str(p) for p in problems] == [
        "forge_acme: src/forge_acme/transport: missing publisher.py: a transport is split into connection.py "
        "(the client on the loop), publisher.py, subscriber.py (delivery) and a thin transport.py composing them"]


def test_pytest11_without_testing_module(tmp_path: Path) -> None:
    root = make(tmp_path, PluginKind.transport)
    (root / PKG / "testing.py").unlink()
    problems = check_plugin(root, docs_dirs=[])
    assert [p.message for p in problems if p.file == "pyproject.toml"] == [
        "[project.entry-points.pytest11] forge_acme = 'forge_acme.testing': expected none "
        "(there is no src/forge_acme/testing.py)"]


def test_exemption_with_a_reason_allows_a_long_module(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / PKG / "components" / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (root / "tests" / "components" / "test_big.py").write_text("")
    exempt = {"forge_acme/components/big.py": "generated lookup table; splitting it helps nobody"}
    assert check_plugin(root, docs_dirs=[], exemptions=exempt) == []


def test_docs_page_found_in_the_repository_docs(tmp_path: Path) -> None:
    root = make(tmp_path)
    _remove("docs")(root)
    docs = tmp_path / "repo-docs"
    (docs / "transports").mkdir(parents=True)
    (docs / "transports" / "acme.md").write_text("# acme\n")
    assert check_plugin(root, docs_dirs=[docs]) == []


def test_a_plugin_that_does_not_parse_is_reported_not_crashed_on(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / PKG / "plugin.py").write_text("def broken(:\n")
    problems = check_plugin(root, docs_dirs=[])
    assert any(p.file == f"{PKG}/plugin.py" and "does not parse: line 1" in p.message for p in problems)
