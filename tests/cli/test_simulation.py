"""``forge run --simulate`` state: a fresh directory of its own each run (forge_core.cli.simulation)."""

from __future__ import annotations

import json
from pathlib import Path

from forge_core.cli.simulation import SIMULATION_DIR, fresh_state
from forge_core.manifest.model import StorageSpec


class FakeManifest:
    """The two fields fresh_state reads and changes."""

    def __init__(self, plant_dir: Path, url: str) -> None:
        self.plant_dir = plant_dir
        self.storage = StorageSpec(url=url)


def test_a_sqlite_file_under_the_plant_moves_into_an_emptied_run_directory(tmp_path: Path) -> None:
    manifest = FakeManifest(tmp_path, f"sqlite:///{tmp_path}/.forge/plant.db")
    left = tmp_path / ".forge" / SIMULATION_DIR / "outbox" / "old.xml"
    left.parent.mkdir(parents=True)
    left.write_text("from the run before")
    state = fresh_state(manifest)  # type: ignore[arg-type]
    assert state.directory == tmp_path / ".forge" / SIMULATION_DIR and state.note is None
    assert not left.exists() and state.directory.is_dir(), "what an earlier simulation left is gone"
    assert manifest.storage.url == f"sqlite:///{state.directory}/.forge/plant.db"
    assert manifest.plant_dir == state.directory


def test_a_sqlite_file_elsewhere_moves_too_memory_and_relative_stay(tmp_path: Path) -> None:
    elsewhere = FakeManifest(tmp_path / "plant", f"sqlite:///{tmp_path}/shared/state.db")
    state = fresh_state(elsewhere, data_dir=tmp_path / "data")  # type: ignore[arg-type]
    assert state.directory == tmp_path / "data" / SIMULATION_DIR
    assert elsewhere.storage.url == f"sqlite:///{state.directory}/.forge/state.db"
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///relative.db"):  # relative: against plant_dir
        manifest = FakeManifest(tmp_path / "plant", url)
        assert fresh_state(manifest).note is None and manifest.storage.url == url  # type: ignore[arg-type]


def test_a_server_database_is_left_alone_and_said_so(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/forge"
    manifest = FakeManifest(tmp_path, url)
    state = fresh_state(manifest)  # type: ignore[arg-type]
    assert manifest.storage.url == url and state.note is not None and "postgresql" in state.note


def test_a_simulation_keeps_its_state_out_of_the_plant_directory(invoke, bakery: Path) -> None:
    """The plant's own .forge/plant.db is never written by a simulation; the run's is in .forge/simulation/
    (examples/industry40/tests/test_simulation.py: two chaos runs in one directory, same digest, checks pass)."""
    runs = [invoke("run", bakery, "--simulate", "1m", "--seed", "2", "--json") for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["trace_digest"] == second["trace_digest"]
    assert (bakery / ".forge" / SIMULATION_DIR / ".forge" / "plant.db").exists()
    assert not (bakery / ".forge" / "plant.db").exists(), "the plant's own database is not touched"
