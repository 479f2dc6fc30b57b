"""The plugin layout checker (``forge check-plugin PATH``), Forge's hassfest.

Every plugin distribution has the same shape (docs/architecture.md, "The plugin layout"); this
module checks a plugin directory against it and returns every deviation at once, each naming the
plugin, the file and what is expected. The repository's meta-test (tests/test_plugin_layout.py)
runs it over ``plugins/forge_*/`` and over freshly scaffolded plugins of each kind.

The checks read files only (TOML, and Python through :mod:`ast`); nothing of the plugin is
imported, so a half-built plugin is reported, not crashed on.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.cli.start_order import late_state

__all__ = ["EXEMPTIONS", "KIND_PACKAGES", "MAX_MODULE_LINES", "TRANSPORT_MODULES", "Problem", "check_plugin",
           "find_docs_page"]

#: A module longer than this is to be split (FastStream's broker split is the model).
MAX_MODULE_LINES = 400

#: Modules allowed over :data:`MAX_MODULE_LINES`: ``"<package>/<path under src/<package>>"`` →
#: the reason, which must say why splitting it would make it worse. Empty on purpose.
EXEMPTIONS: dict[str, str] = {}

#: The packages that say what kind of plugin it is; a plugin has at least one (forge_kafka: two).
KIND_PACKAGES = ("components", "transport", "tactics")

#: What a ``transport/`` package holds (certificates.py, admin.py and others may be added).
TRANSPORT_MODULES = ("connection.py", "publisher.py", "subscriber.py", "transport.py")

#: Subdirectories of ``src/<package>/`` that hold data, not code, and need no tests directory.
_DATA_DIRS = {"schemas", "migrations", "xsd", "templates", "data", "__pycache__"}


@dataclass(frozen=True)
class Problem:
    """One deviation: which plugin, which file (relative to the plugin directory), what is expected."""

    plugin: str
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.plugin}: {self.file}: {self.message}"


class _Report:
    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.problems: list[Problem] = []

    def add(self, file: str | Path, message: str) -> None:
        self.problems.append(Problem(self.plugin, Path(file).as_posix(), message))


def check_plugin(root: Path, *, docs_dirs: Iterable[Path] | None = None,
                 exemptions: Mapping[str, str] | None = None) -> list[Problem]:
    """Every layout problem of the plugin distribution at ``root`` (``[]``: it conforms).

    ``docs_dirs``: where its docs page may live besides ``root/docs`` (default: the ``docs/``
    directory two levels up, i.e. the repository's when ``root`` is ``plugins/forge_X``).
    ``exemptions``: override :data:`EXEMPTIONS` (tests).
    """
    root = Path(root)
    report = _Report(root.name)
    if not root.is_dir():
        report.add(".", f"is not a directory ({root})")
        return report.problems
    pyproject = _read_pyproject(root, report)
    forge_eps = _entry_points(pyproject, "forge")
    package, short = _package_and_short(root, forge_eps, report)
    if package is None:
        return report.problems
    report.plugin = package
    pkg = root / "src" / package
    pkg_rel = Path("src") / package

    if not (root / "README.md").is_file():
        report.add("README.md", "missing: say what the plugin provides and how a plant uses it")
    _check_pytest11(root, pyproject, package, pkg, report)
    if not (pkg / "__init__.py").is_file():
        report.add(pkg_rel / "__init__.py", "missing: the plugin's public names, with __all__")
    elif not _defines(pkg / "__init__.py", "__all__"):
        report.add(pkg_rel / "__init__.py", "defines no __all__: list the plugin's public names")
    hooks = _check_plugin_module(pkg / "plugin.py", pkg_rel / "plugin.py", report)
    _check_settings(pkg / "settings.py", pkg_rel / "settings.py", report)
    _check_kind_packages(pkg, pkg_rel, report)
    _check_schemas(pkg, pkg_rel, short, hooks, report)
    _check_tests(root, pkg, pkg_rel, report)
    if short is not None and find_docs_page(root, short, docs_dirs) is None:
        where = " or ".join(f"{d}/{{plugins,transports}}/{short}.md" for d in _docs_dirs(root, docs_dirs))
        report.add(f"docs/plugins/{short}.md", f"no docs page: expected {where}")
    _check_sizes(root, pkg, package, exemptions if exemptions is not None else EXEMPTIONS, report)
    _check_start_order(root, pkg, report)
    return report.problems


def find_docs_page(root: Path, short: str, docs_dirs: Iterable[Path] | None = None) -> Path | None:
    """The plugin's docs page, ``<docs>/plugins/<short>.md`` or ``<docs>/transports/<short>.md``."""
    for docs in _docs_dirs(root, docs_dirs):
        for section in ("plugins", "transports"):
            page = docs / section / f"{short}.md"
            if page.is_file():
                return page
    return None


# -- the checks ------------------------------------------------------------------------------------
def _read_pyproject(root: Path, report: _Report) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        report.add("pyproject.toml", "missing: the distribution with its [project.entry-points.forge] entry")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        report.add("pyproject.toml", f"is not valid TOML: {exc}")
        return {}


def _entry_points(pyproject: Mapping[str, Any], group: str) -> dict[str, str]:
    eps = (pyproject.get("project") or {}).get("entry-points") or {}
    found = eps.get(group) or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}


def _package_and_short(root: Path, forge_eps: dict[str, str], report: _Report) -> tuple[str | None, str | None]:
    packages = sorted(p.name for p in (root / "src").glob("*") if p.is_dir() and p.name.isidentifier()) \
        if (root / "src").is_dir() else []
    if not forge_eps:
        if (root / "pyproject.toml").is_file():
            report.add("pyproject.toml", "has no [project.entry-points.forge] entry: add "
                       "`<short> = \"<package>.plugin\"` so Forge finds the plugin")
        if len(packages) == 1:
            return packages[0], None
        report.add("src", f"expected exactly one package under src/, found {packages or 'none'}")
        return None, None
    if len(forge_eps) > 1:
        report.add("pyproject.toml", f"[project.entry-points.forge] has {len(forge_eps)} entries "
                   f"({', '.join(sorted(forge_eps))}); a distribution is one plugin: keep one")
    short, target = next(iter(forge_eps.items()))
    package, _, module = target.partition(".")
    if module != "plugin" or ":" in target:
        report.add("pyproject.toml", f"[project.entry-points.forge] {short} = {target!r}: expected "
                   f"\"{package}.plugin\" (the module holding the @hookimpl functions)")
    if not (root / "src" / package).is_dir():
        report.add(f"src/{package}", f"missing: the entry point names package {package!r}; "
                   f"found {packages or 'no package'} under src/")
        return None, short
    return package, short


def _check_pytest11(root: Path, pyproject: Mapping[str, Any], package: str, pkg: Path, report: _Report) -> None:
    eps = _entry_points(pyproject, "pytest11")
    wanted = f"{package}.testing"
    has_testing = (pkg / "testing.py").is_file()
    pointing = {name: value for name, value in eps.items() if value == wanted}
    if has_testing and not pointing:
        report.add("pyproject.toml", f"src/{package}/testing.py exists but no [project.entry-points.pytest11] "
                   f"entry points at it: add `{package} = \"{wanted}\"` so its fixtures load in users' tests")
    for name, value in eps.items():
        if value != wanted or not has_testing:
            report.add("pyproject.toml", f"[project.entry-points.pytest11] {name} = {value!r}: expected "
                       + (f"\"{wanted}\"" if has_testing else f"none (there is no src/{package}/testing.py)"))


def _parse(path: Path, rel: Path, report: _Report) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        report.add(rel, f"does not parse: line {exc.lineno}: {exc.msg}")
        return None


def _defines(path: Path, name: str) -> bool:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookimpl") or (
        isinstance(target, ast.Attribute) and target.attr == "hookimpl")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _check_plugin_module(path: Path, rel: Path, report: _Report) -> set[str]:
    """plugin.py holds imports and @hookimpl functions named forge_*, nothing else; returns the hooks."""
    if not path.is_file():
        report.add(rel, "missing: the module the forge entry point names, holding the @hookimpl functions")
        return set()
    tree = _parse(path, rel, report)
    if tree is None:
        return set()
    hooks: set[str] = set()
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue  # the docstring
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not node.orelse and all(
                isinstance(n, ast.Import | ast.ImportFrom) for n in node.body):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not any(_is_hookimpl(d) for d in node.decorator_list):
                report.add(rel, f"line {node.lineno}: function {node.name}() is not a @hookimpl; plugin.py holds "
                           "only hook implementations: move it to another module of the plugin")
            elif not node.name.startswith("forge_"):
                report.add(rel, f"line {node.lineno}: @hookimpl {node.name}() is not a Forge hook (forge_*)")
            else:
                hooks.add(node.name)
            continue
        what = type(node).__name__.lower()
        name = getattr(node, "name", None) or ", ".join(
            t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name))
        report.add(rel, f"line {node.lineno}: {what}{' ' + name if name else ''} at module level; plugin.py holds "
                   "only imports and @hookimpl functions: inline it in the hook that uses it, or move it to another "
                   "module of the plugin")
    if not hooks:
        report.add(rel, "implements no hook: expected @hookimpl functions such as forge_register_schemas")
    return hooks


def _check_settings(path: Path, rel: Path, report: _Report) -> None:
    if not path.is_file():
        report.add(rel, "missing: the plugin's forge_core.Settings models (transport settings, component Params)")
        return
    tree = _parse(path, rel, report)
    if tree is None:
        return
    settings_classes: set[str] = set()
    changed = True
    while changed:  # a class whose base is Settings, or a class of this module that is one
        changed = False
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name not in settings_classes:
                for base in node.bases:
                    name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(
                        base, ast.Name) else None
                    if name == "Settings" or name in settings_classes:
                        settings_classes.add(node.name)
                        changed = True
                        break
    if not settings_classes:
        report.add(rel, "defines no forge_core.Settings subclass: declare the settings/params as "
                   "`class XParams(Settings)` with pydantic Field(default, description=...)")


def _check_kind_packages(pkg: Path, pkg_rel: Path, report: _Report) -> None:
    kinds = [pkg / name for name in KIND_PACKAGES]
    if not any(k.is_dir() for k in kinds):
        report.add(pkg_rel, "has none of components/, transport/, tactics/: a component plugin keeps one module "
                   "per component in components/, a transport plugin its client in transport/, a tactic plugin "
                   "one module per tactic kind in tactics/")
    for package in kinds:
        if package.is_dir() and not (package / "__init__.py").is_file():
            report.add(pkg_rel / package.name / "__init__.py", "missing: make it a package")
    transport = pkg / "transport"
    if transport.is_dir():
        missing = [m for m in TRANSPORT_MODULES if not (transport / m).is_file()]
        if missing:
            report.add(pkg_rel / "transport", f"missing {', '.join(missing)}: a transport is split into "
                       "connection.py (the client on the loop), publisher.py, subscriber.py (delivery) and a "
                       "thin transport.py composing them")


def _check_schemas(pkg: Path, pkg_rel: Path, short: str | None, hooks: set[str], report: _Report) -> None:
    schemas = pkg / "schemas"
    if not schemas.is_dir():
        report.add(pkg_rel / "schemas", "missing: the JSON Schemas of the message types the plugin owns "
                   "(may be empty, e.g. with a .gitkeep, for a transport)")
    elif short is not None:
        for schema in sorted(schemas.glob("*.json")):
            if not schema.name.startswith(f"{short}."):
                report.add(pkg_rel / "schemas" / schema.name, f"message type {schema.stem!r} is not prefixed "
                           f"with the plugin's short name: expected {short}.<name>.json")
    if "forge_register_schemas" not in hooks and (pkg / "plugin.py").is_file():
        report.add(pkg_rel / "plugin.py", "does not implement forge_register_schemas: register schemas/ with "
                   "registry.add_directory(Path(__file__).parent / \"schemas\")")


def _modules(directory: Path) -> list[Path]:
    return [p for p in directory.glob("*.py") if p.name != "__init__.py"]


def _check_tests(root: Path, pkg: Path, pkg_rel: Path, report: _Report) -> None:
    tests = root / "tests"
    if not tests.is_dir() or not any(tests.rglob("test_*.py")):
        report.add("tests", "missing or without test_*.py: the plugin's tests, mirroring src/")
        return
    for sub in sorted(p for p in pkg.rglob("*") if p.is_dir()):
        rel = sub.relative_to(pkg)
        if set(rel.parts) & _DATA_DIRS or not _modules(sub):
            continue
        if not (tests / rel).is_dir():
            report.add(Path("tests") / rel, f"missing: tests mirror src/ ({pkg_rel / rel}/ has modules; "
                       f"put their tests in tests/{rel.as_posix()}/test_<module>.py)")


def _check_sizes(root: Path, pkg: Path, package: str, exemptions: Mapping[str, str], report: _Report) -> None:
    for module in sorted(pkg.rglob("*.py")):
        if "__pycache__" in module.parts:
            continue
        key = f"{package}/{module.relative_to(pkg).as_posix()}"
        lines = len(module.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES and key not in exemptions:
            report.add(module.relative_to(root), f"{lines} lines, over {MAX_MODULE_LINES}: split it (or add "
                       f"{key!r} with a reason to EXEMPTIONS in forge_core/cli/layout.py)")


def _check_start_order(root: Path, pkg: Path, report: _Report) -> None:
    """A handler subscribed in start() must not read state start() makes only later (start_order)."""
    for module in sorted(pkg.rglob("*.py")):
        if "__pycache__" not in module.parts:
            for problem in late_state(module):
                report.add(module.relative_to(root), str(problem))


def _docs_dirs(root: Path, docs_dirs: Iterable[Path] | None) -> list[Path]:
    found = [root / "docs"]
    found += list(docs_dirs) if docs_dirs is not None else [root.resolve().parent.parent / "docs"]
    return found
