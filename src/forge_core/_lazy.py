"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``).

A package lists ``{public name: "module:attribute"}``; the module is imported on first access
and the value cached on the package, so ``from forge_core.tactics import SqlLeaseBackend`` still
works while ``import forge_core`` loads no SQLAlchemy, Alembic or jsonschema (docs/performance.md,
start-up). Type checkers see the same names through eager imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], tuples: Mapping[str, Sequence[str]] | None = None,
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``exports`` is imported on
    first access; each name in ``tuples`` is the tuple of those exported names' values (a
    plugin's ``MESSAGE_TYPES``), built on first access too; another name that is a submodule of
    ``package`` is imported as such (as an eager ``__init__`` importing it used to make it an attribute)."""
    groups = dict(tuples or {})

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if name in groups:
            value: Any = tuple(__getattr__(member) for member in groups[name])
        elif target is None:
            if name.startswith("__"):
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            module_name, _, attribute = target.partition(":")
            module = importlib.import_module(module_name)
            value = getattr(module, attribute) if attribute else module
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports) | set(groups))

    return __getattr__, __dir__
