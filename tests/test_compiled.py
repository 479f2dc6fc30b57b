"""The compiled modules' status (forge_core.compiled): a manifest per package, a module whose source (or a
first-party module it imports) changed since it was compiled is stale, a stray ``.so`` is unknown, and Forge's
pytest plugin stops a session on either (docs/compiled.md). Fake ``.so`` files: nothing is loaded here; the
real compile is tests/scripts/test_compile.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_core import compiled
from forge_core.compiled import COMPILED, EXT_SUFFIX, INACTIVE, MISSING, STALE, UNKNOWN, ModuleStatus
from forge_core.testing import pytest_plugin


def make_package(tmp_path: Path, *, ext_suffix: str = EXT_SUFFIX) -> Path:
    """tmp/pkg with pkg.fast (compiled, importing pkg.helpers) and its manifest, as scripts/compile.py writes it."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("LIMIT = 3\n")
    (package / "fast.py").write_text("from pkg.helpers import LIMIT\n\ndef f() -> int:\n    return LIMIT\n")
    (package / ("fast" + EXT_SUFFIX)).write_bytes(b"not really a library")
    (package / ("_mypyc__mypyc" + EXT_SUFFIX)).write_bytes(b"the group's library")
    manifest = {
        "format": compiled.FORMAT, "distribution": "pkg", "compiler": "mypyc", "python": "cpython-311",
        "ext_suffix": ext_suffix, "library": "_mypyc__mypyc" + EXT_SUFFIX,
        "modules": {"pkg.fast": {"source": "fast.py", "binary": "fast" + EXT_SUFFIX,
                                 "sha256": compiled.file_sha256(package / "fast.py"),
                                 "depends": {"pkg.helpers": compiled.file_sha256(package / "helpers.py")}}},
    }
    (package / compiled.MANIFEST).write_text(json.dumps(manifest))
    return package


def states(package: Path) -> dict[str, str]:
    return {s.module: s.state for s in compiled.package_status(package)}


def test_a_package_without_manifest_is_pure_python(tmp_path: Path) -> None:
    package = tmp_path / "pure"
    package.mkdir()
    (package / "__init__.py").write_text("")
    assert compiled.package_status(package) == []
    assert compiled.summary([]) == "pure Python"


def test_a_module_built_from_its_source_as_it_is_is_compiled(tmp_path: Path) -> None:
    found = compiled.package_status(make_package(tmp_path))
    assert [(s.module, s.state) for s in found] == [("pkg.fast", COMPILED)]
    assert compiled.problems(found) == []
    assert compiled.summary(found) == "compiled: 1 module (mypyc)"


def test_an_edited_source_makes_its_module_stale_naming_the_file(tmp_path: Path) -> None:
    package = make_package(tmp_path)
    (package / "fast.py").write_text("def f() -> int:\n    return 4\n")
    [status] = compiled.package_status(package)
    assert status.state == STALE
    assert str(package / "fast.py") in status.detail
    assert compiled.summary([status]) == "compiled: 0 modules (mypyc); 1 STALE: pkg.fast"


def test_an_edited_import_makes_the_importer_stale(tmp_path: Path) -> None:
    package = make_package(tmp_path)
    (package / "helpers.py").write_text("LIMIT = 4\n")  # mypyc may have baked the old constant in
    [status] = compiled.package_status(package)
    assert status.state == STALE
    assert "pkg.helpers" in status.detail


def test_a_stray_library_is_unknown_and_a_removed_one_missing(tmp_path: Path) -> None:
    package = make_package(tmp_path)
    (package / ("helpers" + EXT_SUFFIX)).write_bytes(b"compiled by hand")
    (package / ("fast" + EXT_SUFFIX)).unlink()
    assert states(package) == {"pkg.fast": MISSING, "pkg.helpers": UNKNOWN}
    assert [s.module for s in compiled.problems(compiled.package_status(package))] == ["pkg.helpers"]


def test_a_build_for_another_interpreter_is_inactive(tmp_path: Path) -> None:
    package = make_package(tmp_path, ext_suffix=".cpython-399-other.so")
    (package / "fast.py").write_text("changed = True\n")  # this interpreter runs the .py anyway
    assert states(package) == {"pkg.fast": INACTIVE}


def test_an_unreadable_manifest_is_stale(tmp_path: Path) -> None:
    package = make_package(tmp_path)
    (package / compiled.MANIFEST).write_text("{not json")
    assert states(package)["pkg"] == STALE


def test_status_finds_packages_on_sys_path_without_importing_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [(s.module, s.state) for s in compiled.status(["pkg", "no_such_package"])] == [("pkg.fast", COMPILED)]
    assert compiled.compiled_packages()["pkg"] == tmp_path / "pkg"  # found by its manifest
    assert "forge_core" in compiled.compiled_packages()


def test_the_stale_message_names_every_module_and_both_ways_out() -> None:
    bad = [ModuleStatus("pkg.fast", STALE, Path("/x/pkg"), "/x/pkg/fast.py changed since it was compiled"),
           ModuleStatus("pkg.slow", UNKNOWN, Path("/x/pkg"), "/x/pkg/slow.so is in no manifest")]
    message = compiled.stale_message(bad)
    assert "pkg.fast (stale): /x/pkg/fast.py changed" in message
    assert "pkg.slow (unknown)" in message
    assert compiled.REBUILD in message and compiled.PURE in message


def test_the_pytest_plugin_stops_the_session_on_a_stale_module(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = ModuleStatus("pkg.fast", STALE, Path("/x/pkg"), "/x/pkg/fast.py changed since it was compiled")
    monkeypatch.setattr(compiled, "status", lambda: [stale])
    with pytest.raises(pytest.exit.Exception, match=r"pkg\.fast"):
        pytest_plugin.pytest_sessionstart(None)  # type: ignore[arg-type]  # the hook reads nothing of it
    monkeypatch.setattr(compiled, "status", lambda: [])
    pytest_plugin.pytest_sessionstart(None)  # type: ignore[arg-type]
