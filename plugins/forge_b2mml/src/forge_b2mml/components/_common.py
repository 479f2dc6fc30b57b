"""Small helpers the components share: the plant directory and atomic file writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def plant_dir(ctx: Any) -> Path:
    """The plant's directory (relative paths in params are relative to it); the cwd without a runtime."""
    runtime = ctx.services.get("runtime")
    manifest = getattr(runtime, "manifest", None)
    return Path(getattr(manifest, "plant_dir", None) or Path.cwd())


def resolve(ctx: Any, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else plant_dir(ctx) / p


def write_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so readers see the whole file or none: a temporary name, fsync, os.replace.
    ``durable=False`` skips the fsync (still atomic for readers, not across a power cut): for a
    simulated run (:func:`durable_files`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, target)


def durable_files(ctx: Any) -> bool:
    """Whether files are fsynced: not under a virtual clock, where no power cut falls (as the plant's
    SQLite database and the outbox commit without fsync there)."""
    return not getattr(ctx.clock, "is_virtual", False)


def free_name(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name.1``, ``name.2``... when taken (never overwrite an earlier file)."""
    target = directory / name
    n = 0
    while target.exists():
        n += 1
        target = directory / f"{name}.{n}"
    return target
