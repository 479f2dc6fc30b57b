"""Which of Forge's modules run compiled (mypyc), and whether any compiled one is stale (docs/compiled.md).

``python scripts/compile.py`` compiles the modules each distribution lists under ``[tool.forge.compile]``
in its pyproject.toml and writes a manifest, ``<package>/_compiled.json``, beside the extension modules:
per compiled module the SHA-256 of its source (and of the first-party modules it imports: mypyc bakes
their types and ``Final`` constants into the compiled code), plus the compiler's version and the
interpreter's extension suffix. A compiled module's ``.so`` shadows its ``.py``: after an edit without
a rebuild the old code would run, silently. :func:`status` compares the manifests with the sources
(a hash of a few dozen small files, milliseconds); Forge's pytest plugin stops a session on a stale
module and ``forge --version`` reports the count. Nothing here runs at ``import forge_core``.

Standard library only: the build (mypyc, setuptools) is a development tool, the status is not.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: The manifest's file name, in the top-level package directory of each compiled distribution.
MANIFEST = "_compiled.json"
#: The manifest format's version: a manifest of another format counts as stale (rebuild).
FORMAT = 1
#: The suffix of this interpreter's extension modules (".cpython-311-x86_64-linux-gnu.so").
EXT_SUFFIX: str = importlib.machinery.EXTENSION_SUFFIXES[0]
REBUILD = "python scripts/compile.py"
PURE = "python scripts/compile.py --clean"

#: A module's states. Only "stale" and "unknown" are problems: they run code that is not the source.
COMPILED = "compiled"  # the .so is there and was built from the source as it is now
STALE = "stale"  # the .so is there but the source (or a module it imports) changed since it was built
UNKNOWN = "unknown"  # a .so this interpreter would load that no manifest accounts for
MISSING = "missing"  # in the manifest, but its .so is gone: the pure-Python module runs
INACTIVE = "inactive"  # built for another interpreter: this one ignores the .so and runs the .py
PROBLEMS = (STALE, UNKNOWN)


@dataclass(frozen=True)
class ModuleStatus:
    """One compiled (or formerly compiled) module: its dotted name, state, and why, naming the file."""

    module: str
    state: str
    package_dir: Path
    detail: str = ""


def file_sha256(path: Path) -> str:
    import hashlib  # here, not at import: a pure-Python install never hashes

    return hashlib.sha256(path.read_bytes()).hexdigest()


def module_path(package_dir: Path, module: str) -> Path:
    """The source file of ``module`` (dotted) inside the top-level package at ``package_dir``."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts) if parts else package_dir
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def binary_path(source: Path) -> Path:
    """Where a source's compiled extension module sits for this interpreter (it shadows the ``.py``)."""
    return source.with_name(source.stem + EXT_SUFFIX)


def read_manifest(package_dir: Path) -> dict[str, object] | None:
    """The manifest of the package at ``package_dir``, or None when it has none (pure Python)."""
    import json
    try:
        data = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"format": -1, "error": str(exc)}
    return data if isinstance(data, dict) else {"format": -1, "error": "not a JSON object"}


def find_package_dir(package: str) -> Path | None:
    """The directory of the top-level ``package`` on sys.path, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def compiled_packages() -> dict[str, Path]:
    """The top-level packages to check, by name, as imports would find them (the first on sys.path wins):
    every package holding a manifest (Forge's and any plugin's own) and every ``forge_*`` package (for a
    stray ``.so``). A directory listing per sys.path entry, the standard library's skipped: no metadata
    scan, no import (``forge --version`` stays fast)."""
    stdlib = Path(os.__file__).resolve().parent  # and its lib-dynload: no package of ours there
    found: dict[str, Path] = {}
    for entry in sys.path:
        directory = Path(entry or ".")
        try:
            if directory.resolve() in (stdlib, stdlib / "lib-dynload") or not directory.is_dir():
                continue
            children = list(os.scandir(directory))
        except OSError:
            continue
        for child in children:
            name = child.name
            if name in found or not name.isidentifier() or not child.is_dir():
                continue
            ours = name.startswith("forge_") or os.path.isfile(os.path.join(child.path, MANIFEST))
            if ours and os.path.isfile(os.path.join(child.path, "__init__.py")):
                found[name] = Path(child.path)
    return found


def _dependency_state(package_dir: Path, depends: dict[str, str]) -> str:
    """Why a compiled module's imports make it stale ("" when they do not)."""
    changed = []
    for dep, digest in sorted(depends.items()):
        top = dep.split(".")[0]
        root = package_dir if top == package_dir.name else find_package_dir(top)
        path = module_path(root, dep) if root is not None else None
        if path is None or not path.is_file() or file_sha256(path) != digest:
            changed.append(f"{dep} ({path})" if path is not None else dep)
    return "imports changed since it was compiled: " + ", ".join(changed) if changed else ""


def package_status(package_dir: Path) -> list[ModuleStatus]:
    """The state of every compiled module of the package at ``package_dir`` (empty: pure Python)."""
    manifest = read_manifest(package_dir)
    found: list[ModuleStatus] = []
    accounted: set[Path] = set()
    if manifest is not None:
        if manifest.get("format") != FORMAT:
            why = manifest.get("error") or f"manifest format {manifest.get('format')}, not {FORMAT}"
            found.append(ModuleStatus(package_dir.name, STALE, package_dir, f"{package_dir / MANIFEST}: {why}"))
            manifest = {"ext_suffix": EXT_SUFFIX, "modules": {}}
        library = manifest.get("library")
        if isinstance(library, str):
            accounted.add(package_dir / library)
        active = manifest.get("ext_suffix") == EXT_SUFFIX
        modules = manifest.get("modules")
        for name, entry in sorted(modules.items() if isinstance(modules, dict) else []):
            found.append(_module_status(package_dir, name, entry, active, accounted))
    for binary in _binaries(package_dir):
        if binary not in accounted:
            found.append(ModuleStatus(_module_of(package_dir, binary), UNKNOWN, package_dir,
                                      f"{binary} is in no manifest ({MANIFEST}): it may not match its source"))
    return found


def _module_status(package_dir: Path, name: str, entry: object, active: bool, accounted: set[Path]) -> ModuleStatus:
    entry = entry if isinstance(entry, dict) else {}
    source = package_dir / str(entry.get("source", ""))
    binary = package_dir / str(entry.get("binary", ""))
    accounted.add(binary)
    if not active:
        return ModuleStatus(name, INACTIVE, package_dir, "compiled for another interpreter: the .py runs")
    if not binary.is_file():
        return ModuleStatus(name, MISSING, package_dir, f"{binary} is gone: the .py runs")
    if not source.is_file():
        return ModuleStatus(name, STALE, package_dir, f"its source {source} is gone but {binary} still loads")
    if file_sha256(source) != entry.get("sha256"):
        return ModuleStatus(name, STALE, package_dir, f"{source} changed since it was compiled")
    depends = entry.get("depends")
    why = _dependency_state(package_dir, depends) if isinstance(depends, dict) else ""
    return ModuleStatus(name, STALE if why else COMPILED, package_dir, why)


def _binaries(package_dir: Path) -> list[Path]:
    """Every extension module this interpreter would load from the package's directory tree."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        found.extend(Path(dirpath) / f for f in filenames if f.endswith(EXT_SUFFIX))
    return sorted(found)


def _module_of(package_dir: Path, binary: Path) -> str:
    relative = binary.relative_to(package_dir).as_posix()[: -len(EXT_SUFFIX)]
    return ".".join([package_dir.name, *relative.split("/")]).removesuffix(".__init__")


def status(packages: Iterable[str] | None = None) -> list[ModuleStatus]:
    """The compiled modules of ``packages`` (default: :func:`compiled_packages`, Forge's and every plugin's)."""
    if packages is None:
        directories = list(compiled_packages().values())
    else:
        directories = [d for d in map(find_package_dir, packages) if d is not None]
    found: list[ModuleStatus] = []
    for directory in directories:
        found.extend(package_status(directory))
    return found


def problems(found: Iterable[ModuleStatus]) -> list[ModuleStatus]:
    return [s for s in found if s.state in PROBLEMS]


def summary(found: list[ModuleStatus]) -> str:
    """One line: "pure Python", "compiled: N modules (mypyc)", or the count and the stale modules."""
    compiled = sum(1 for s in found if s.state == COMPILED)
    bad = problems(found)
    if not compiled and not bad:
        return "pure Python"
    line = f"compiled: {compiled} module{'s' if compiled != 1 else ''} (mypyc)"
    if bad:
        line += f"; {len(bad)} STALE: " + ", ".join(s.module for s in bad)
    return line


def describe() -> str:
    """What runs here, in one line (benchmarks print it in their heading): :func:`summary` of :func:`status`."""
    return summary(status())


def stale_message(bad: list[ModuleStatus]) -> str:
    """What to tell a developer whose compiled modules no longer match their sources."""
    lines = [f"{len(bad)} compiled module{'s' if len(bad) != 1 else ''} would run code that is not the source:"]
    lines += [f"  {s.module} ({s.state}): {s.detail}" for s in bad]
    lines += ["Either rebuild them:          " + REBUILD,
              "or run pure Python instead:   " + PURE + "   (see docs/compiled.md)",
              "(a plugin's own modules: python -m forge_core.compiler [--clean] in its project)"]
    return "\n".join(lines)
