"""``storage.pool_size`` and ``storage.prepared_statements``: what a database URL cannot say about the plant's
engine (a one-connection pool for a single-session server, no psycopg prepared statements), validated with the
manifest and given to the runtime's engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from forge_core.errors import ManifestError
from forge_core.manifest import load_manifest
from forge_core.plugin import get_plugin_manager
from forge_core.runtime import Runtime

PLANT = """
    version: 1
    plant: {name: pooled}
    transports:
      bus: {type: memory}
    storage: {url: "%s", migrate_on_start: false%s}
"""


def _write(directory: Path, url: str, extra: str = "") -> Path:
    path = directory / "plant.yaml"
    path.write_text(textwrap.dedent(PLANT % (url, extra)).lstrip("\n"), encoding="utf-8")
    return path


def test_the_defaults_leave_the_engine_as_sqlalchemy_makes_it(tmp_path: Path) -> None:
    storage = load_manifest(_write(tmp_path, "sqlite:///{plant_dir}/plant.db")).storage
    assert (storage.pool_size, storage.prepared_statements) == (None, True)
    assert storage.engine_kwargs() == {}


def test_a_one_connection_pool_without_prepared_statements(tmp_path: Path) -> None:
    storage = load_manifest(_write(tmp_path, "postgresql://forge@127.0.0.1/plant",
                                   ", pool_size: 1, prepared_statements: false")).storage
    assert storage.engine_kwargs() == {"pool_size": 1, "max_overflow": 0, "connect_args": {"prepare_threshold": None}}


def test_prepared_statements_is_psycopgs_only(tmp_path: Path) -> None:
    storage = load_manifest(_write(tmp_path, "sqlite:///{plant_dir}/plant.db", ", prepared_statements: false")).storage
    assert storage.engine_kwargs() == {}  # sqlite3.connect has no prepare_threshold


def test_bad_values_are_named_with_their_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "sqlite:///{plant_dir}/plant.db", ", pool_size: 0, prepared_statements: 'no'")
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path)
    problems = {(p.path, p.line): p.message for p in excinfo.value.problems}
    assert problems == {("storage.pool_size", 5): "0 is less than the minimum of 1",
                        ("storage.prepared_statements", 5): "expected boolean, got string 'no'"}


def test_the_runtimes_engine_gets_the_pool(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, "sqlite:///{plant_dir}/plant.db", ", pool_size: 1"))
    runtime = Runtime(manifest, get_plugin_manager())
    engine = runtime.storage()
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (1, 0)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_forge_db_makes_the_engine_as_the_runtime_does(tmp_path: Path) -> None:
    from forge_core.cli.db import _engine

    manifest = load_manifest(_write(tmp_path, "sqlite:///{plant_dir}/plant.db", ", pool_size: 1"))
    with _engine(manifest) as engine:
        assert (engine.pool.size(), engine.pool._max_overflow) == (1, 0)  # type: ignore[attr-defined]
