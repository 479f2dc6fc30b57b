"""Compile the modules each distribution lists under ``[tool.forge.compile]`` with mypyc, in place (docs/compiled.md).

    python -m forge_core.compiler            # compile (nothing to do when every manifest matches the sources)
    python -m forge_core.compiler --check    # exit 1 naming every stale or uncompiled listed module
    python -m forge_core.compiler --clean    # remove every compiled artefact: pure Python again
    python -m forge_core.compiler --project path/to/plugin ...   # default: . and ./plugins/* (Forge's checkout:
                                                                 # scripts/compile.py, from anywhere)

In forge_core, not only in Forge's scripts/, so that a plugin's author compiles their own modules the same way
(and gets the same staleness guard). It needs mypy (mypyc) and setuptools, imported only when building.

A project's pyproject.toml lists dotted module names::

    [tool.forge.compile]
    modules = ["forge_mms.monitoring.beats"]

All projects compile in ONE mypyc run (the type check dominates), one group per top-level package: the
group's shared library (``<package>/_mypyc__mypyc*.so``) lands inside the package, next to the modules'
extension modules (each shadows its ``.py``), and ``<package>/_compiled.json`` records what was built from
what (forge_core.compiled reads it: Forge's pytest plugin and ``forge --version`` report stale modules).
mypy's configuration is the one of the current directory's pyproject.toml (run it from the repo root).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.compiled import (
    EXT_SUFFIX,
    FORMAT,
    MANIFEST,
    PROBLEMS,
    binary_path,
    file_sha256,
    module_path,
    package_status,
)

LIBRARY = "_mypyc"  # the group's name inside its package: <package>/_mypyc__mypyc<EXT_SUFFIX>


class CompileError(Exception):
    """A listed module that cannot be compiled, naming the distribution and the file at fault."""


@dataclass
class Project:
    """One distribution: its pyproject.toml, source root and listed modules (grouped by top-level package)."""

    root: Path
    name: str
    source_root: Path
    modules: list[str] = field(default_factory=list)

    @property
    def packages(self) -> list[str]:
        return sorted({m.split(".")[0] for m in self.modules})

    def source(self, module: str) -> Path:
        path = module_path(self.source_root / module.split(".")[0], module)
        if not path.is_file():
            raise CompileError(f"{self.name} ({self.root / 'pyproject.toml'}): listed module {module} does not "
                               f"exist (no {path})")
        return path


def load_project(root: Path) -> Project:
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CompileError(f"{pyproject}: {exc}") from exc
    name = str(data.get("project", {}).get("name", root.name))
    listed = data.get("tool", {}).get("forge", {}).get("compile", {}).get("modules", [])
    if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
        raise CompileError(f"{name} ({pyproject}): [tool.forge.compile] modules must be a list of dotted names")
    source_root = root / "src" if (root / "src").is_dir() else root
    project = Project(root, name, source_root, sorted(set(listed)))
    for module in project.modules:
        project.source(module)
    return project


def imported_modules(path: Path, module: str, roots: dict[str, Path]) -> set[str]:
    """The first-party modules (of the packages in ``roots``) that ``module`` imports directly."""
    tree = ast.parse(path.read_bytes(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a module imports its parent packages too
            candidate = ".".join(parts[:i])
            root = roots.get(parts[0])
            if root is not None and candidate != module and module_path(root / parts[0], candidate).is_file():
                found.add(candidate)
    return found


def wanted_manifest(project: Project, package: str, roots: dict[str, Path]) -> dict[str, object]:
    """The manifest the package's compiled modules should have, from the sources as they are now."""
    import mypy.version

    package_dir = project.source_root / package
    modules = {}
    for module in (m for m in project.modules if m.split(".")[0] == package):
        source = project.source(module)
        depends = imported_modules(source, module, roots)
        modules[module] = {
            "source": source.relative_to(package_dir).as_posix(),
            "binary": binary_path(source).relative_to(package_dir).as_posix(),
            "sha256": file_sha256(source),
            "depends": {d: file_sha256(module_path(roots[d.split(".")[0]] / d.split(".")[0], d))
                        for d in sorted(depends)},
        }
    return {"format": FORMAT, "distribution": project.name, "compiler": f"mypyc (mypy {mypy.version.__version__})",
            "python": sys.implementation.cache_tag, "ext_suffix": EXT_SUFFIX,
            "library": LIBRARY + "__mypyc" + EXT_SUFFIX, "modules": modules}


def up_to_date(project: Project, package: str, wanted: dict[str, object]) -> bool:
    package_dir = project.source_root / package
    try:
        if json.loads((package_dir / MANIFEST).read_text(encoding="utf-8")) != wanted:
            return False
    except (OSError, ValueError):
        return False
    found = package_status(package_dir)
    return all(s.state == "compiled" for s in found) and (package_dir / str(wanted["library"])).is_file()


def clean(projects: list[Project]) -> int:
    """Remove every extension module and manifest under the projects' packages: back to pure Python."""
    removed = 0
    for project in projects:
        for package_dir in (p for p in project.source_root.iterdir() if (p / "__init__.py").is_file()):
            for path in [*package_dir.rglob("*.so"), *package_dir.rglob("*.pyd"), package_dir / MANIFEST]:
                if path.is_file():
                    path.unlink()
                    removed += 1
        for stray in project.source_root.glob("*__mypyc*"):  # a top-level group library (mypyc's default)
            stray.unlink()
            removed += 1
    return removed


def build(projects: list[Project], roots: dict[str, Path], build_dir: Path) -> None:
    """One mypyc run for every listed module, a group per top-level package, copied into the source trees."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]  # (no stubs; only built here)

    groups: list[tuple[list[str], str | None]] = [
        ([str(p.source(m)) for m in p.modules if m.split(".")[0] == package], f"{package}.{LIBRARY}")
        for p in projects for package in p.packages]
    paths = [path for files, _ in groups for path in files]
    try:
        extensions = mypycify(paths, separate=groups, target_dir=str(build_dir / "c"))
    except SystemExit as exc:  # mypyc prints the type errors, then exits
        raise CompileError(f"mypyc failed (exit {exc.code}); its errors are above") from exc
    with tempfile.TemporaryDirectory(prefix="forge-compile-") as lib:
        dist = Distribution({"name": "forge-compiled", "ext_modules": extensions})
        dist.verbose = False
        command: Any = dist.get_command_obj("build_ext")
        command.build_lib, command.build_temp = lib, str(build_dir / "temp")
        command.parallel = os.cpu_count() or 1
        dist.run_command("build_ext")
        for extension in extensions:
            relative = extension.name.replace(".", "/") + EXT_SUFFIX
            target = roots[extension.name.split(".")[0]] / relative
            shutil.copyfile(Path(lib) / relative, target.with_name(target.name + ".tmp"))
            os.replace(target.with_name(target.name + ".tmp"), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 naming every stale or uncompiled module")
    parser.add_argument("--clean", action="store_true", help="remove every compiled artefact (pure Python)")
    parser.add_argument("--project", action="append", type=Path, help="a project directory (repeatable)")
    parser.add_argument("--build-dir", type=Path, default=Path("build/forge-compile"), help="mypyc's C and objects")
    args = parser.parse_args(argv)
    try:
        here = Path.cwd()
        roots_given = args.project or [here, *sorted(p.parent for p in (here / "plugins").glob("*/pyproject.toml"))]
        projects = [load_project(root.resolve()) for root in roots_given]
        roots = {pkg.name: p.source_root for p in projects for pkg in p.source_root.iterdir()
                 if (pkg / "__init__.py").is_file()}
        if args.clean:
            print(f"pure Python: removed {clean(projects)} compiled file(s)")
            return 0
        wanted = {(p.name, pkg): (p, wanted_manifest(p, pkg, roots)) for p in projects for pkg in p.packages}
        if args.check:
            return check(projects, wanted)
        count = sum(len(p.modules) for p in projects)
        if all(up_to_date(p, pkg, w) for (_, pkg), (p, w) in wanted.items()) and not unlisted(projects, wanted):
            print(f"compiled: {count} modules, up to date")
            return 0
        clean(projects)
        if count:
            build(projects, roots, args.build_dir.resolve())
        for (_, package), (project, manifest) in wanted.items():
            (project.source_root / package / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
        print(f"compiled: {count} modules in {len(wanted)} group(s)")
        return 0
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def unlisted(projects: list[Project], wanted: dict[tuple[str, str], tuple[Project, dict[str, object]]]) -> list[str]:
    """Compiled packages that no longer list any module (their artefacts must go)."""
    listed = {pkg for _, pkg in wanted}
    return [pkg.name for p in projects for pkg in p.source_root.iterdir()
            if pkg.name not in listed and ((pkg / MANIFEST).is_file() or any(pkg.rglob("*" + EXT_SUFFIX)))]


def check(projects: list[Project], wanted: dict[tuple[str, str], tuple[Project, dict[str, object]]]) -> int:
    """Name every listed module not compiled from its current source, and every stray compiled file."""
    bad = []
    for (name, package), (project, manifest) in wanted.items():
        package_dir = project.source_root / package
        found = {s.module: s for s in package_status(package_dir)}
        for module in project.modules:
            state = found.get(module)
            if state is None or state.state != "compiled":
                why = f"{state.state}: {state.detail}" if state is not None else "listed but not compiled"
                bad.append(f"{name}: {module} ({why})")
        bad += [f"{name}: {s.module} ({s.state}: {s.detail})" for s in found.values()
                if s.module not in project.modules and s.state in PROBLEMS]
        current = json.loads((package_dir / MANIFEST).read_text("utf-8")) if (package_dir / MANIFEST).is_file() else {}
        for key in ("compiler", "python", "ext_suffix"):
            if current and current.get(key) != manifest[key]:
                bad.append(f"{name}: {package} built by {current.get(key)}, now {manifest[key]}")
    bad += [f"{pkg}: compiled artefacts but no module listed" for pkg in unlisted(projects, wanted)]
    for line in bad:
        print(f"stale: {line}")
    total = sum(len(p.modules) for p in projects)
    print(f"{len(bad)} problem(s); rebuild: python -m forge_core.compiler" if bad
          else f"compiled: {total} modules, up to date")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
