"""Hatchling build hook: a wheel of a distribution that lists modules under ``[tool.forge.compile]`` carries them
compiled with mypyc when ``FORGE_COMPILE=1`` (docs/compiled.md: off by default, it did not cut CPU time here);
otherwise, or with ``FORGE_PURE=1``, a pure-Python wheel (py3-none-any).

Used by forge-core (this directory's pyproject.toml; the sdist carries this file). The plugins do not use it:
a hook outside a plugin's directory (``../../hatch_build.py``) is missing from its sdist, whose wheel then could
not be built. forge-core's modules compile as their own group (``forge_core.compiler --project .``, in place,
with the checkout's mypy configuration). The
extension modules and the manifest are git-ignored, hence left out of a wheel unless added here; the
wheel's tag is inferred (cp311-cp311-<platform>). The type check needs the code's dependencies: in an
isolated build environment (pip's default) the wheel is pure Python, with a note; ``pip wheel
--no-build-isolation`` in Forge's environment builds the compiled one.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CHECKOUT = Path(__file__).resolve().parent


class CompiledModulesHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "forge-compiled"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if (self.target_name != "wheel" or version == "editable" or os.environ.get("FORGE_COMPILE", "0") != "1"
                or os.environ.get("FORGE_PURE", "0") == "1"):
            return
        root = Path(self.root)
        config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        modules = config.get("tool", {}).get("forge", {}).get("compile", {}).get("modules", [])
        if not modules:
            return
        missing = self.missing_for_type_check(config)
        if missing:  # an isolated build environment: mypyc could not type-check the code as it runs
            print(f"forge: a pure-Python wheel of {config['project']['name']}: {', '.join(missing)} not installed "
                  "here; for a compiled one build with --no-build-isolation in Forge's environment", file=sys.stderr)
            return
        # This checkout's forge_core.compiler and .compiled (standard library only), without forge_core's
        # __init__ (its lazy exports need the runtime dependencies, absent from an isolated build environment).
        if "forge_core" not in sys.modules:
            package = types.ModuleType("forge_core")
            package.__path__ = [str(CHECKOUT / "src" / "forge_core")]
            sys.modules["forge_core"] = package
        from forge_core.compiled import EXT_SUFFIX, MANIFEST
        from forge_core.compiler import main

        here = os.getcwd()
        os.chdir(CHECKOUT)  # the checkout's mypy configuration: it knows every distribution's sources
        try:
            if main(["--project", str(root)]) != 0:
                raise RuntimeError(f"compiling {config['project']['name']}'s modules failed (above); "
                                   "FORGE_PURE=1 builds a pure-Python wheel")
        finally:
            os.chdir(here)
        sources = root / "src" if (root / "src").is_dir() else root
        for package in sorted({m.split(".")[0] for m in modules}):
            for path in [*sorted((sources / package).rglob("*" + EXT_SUFFIX)), sources / package / MANIFEST]:
                build_data["force_include"][str(path)] = path.relative_to(sources).as_posix()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    @staticmethod
    def missing_for_type_check(config: dict[str, Any]) -> list[str]:
        """The distributions mypyc needs and this environment lacks: mypy, setuptools, forge-core's and the
        distribution's own dependencies (their types are what the compiled code is built against)."""
        core = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))
        wanted = ["mypy", "setuptools", *core["project"]["dependencies"], *config["project"].get("dependencies", [])]
        missing = []
        for requirement in wanted:
            name = re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0]
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(name)
        return missing
