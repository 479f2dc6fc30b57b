"""Where a ``forge run --simulate`` keeps its state: a fresh directory of its own, every run.

A simulated run must be reproducible (same seed, same result, same trace digest) and must not touch
the plant's real state. Before this, a simulation used the plant's own database and folders: the
second run of ``forge run examples/industry40 --simulate 2h --seed 1 --profile chaos`` in one
directory found the first run's orders, leader epochs, ERP ledger and inbox/outbox files (its clock
starts at 2024-01-01 again, the stored state was "newer"), crash-looped its PMS on stale epochs and
failed its checks, with a different digest. So a simulated run gets ``DATA_DIR/simulation/``
(``DATA_DIR`` is ``--data-dir``, default ``PLANT/.forge``), emptied at its start and kept after it
for inspection; the run sees it as its plant directory:

* a SQLite database file moves there: one under the plant directory keeps its relative path
  (``PLANT/.forge/plant.db`` -> ``simulation/.forge/plant.db``), one elsewhere goes to
  ``simulation/.forge/<name>``; ``:memory:`` stays;
* relative paths that components resolve against the plant directory (an inbox, an outbox) and the
  runtime's data directory (``.forge``) resolve there;
* a server database (PostgreSQL) cannot be emptied by us: it is left as configured, and
  :func:`fresh_state` says so (``note``) for the CLI to print.

The manifest's schemas and local plugins were resolved to absolute paths at load and are untouched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from forge_core.manifest.model import Manifest

#: The directory a simulated run keeps its state in, under the data directory.
SIMULATION_DIR = "simulation"


@dataclass
class SimulationState:
    """The run directory a simulated run was given, and what the user should know about it."""

    directory: Path
    note: str | None = None

    @property
    def shown(self) -> str:
        """The directory as the user would type it: relative to the working directory when that is shorter."""
        try:
            relative = os.path.relpath(self.directory)
        except ValueError:  # another drive (Windows)
            return str(self.directory)
        return min(relative, str(self.directory), key=len)


def _moved_sqlite(url: str, plant_dir: Path, directory: Path) -> str | None:
    """``url`` pointing into ``directory`` when it is a SQLite file database; None when it is not one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    if not path.is_absolute():
        return None  # resolved against the plant directory when the engine is made: the run directory now
    try:
        target = directory / path.resolve().relative_to(plant_dir.resolve())
    except ValueError:
        target = directory / ".forge" / path.name
    return parsed.set(database=str(target)).render_as_string(hide_password=False)


def fresh_state(manifest: Manifest, data_dir: Path | None = None) -> SimulationState:
    """Empty ``(data_dir or PLANT/.forge)/simulation/`` and point ``manifest`` (changed in place) at it."""
    plant_dir = manifest.plant_dir
    directory = (data_dir or plant_dir / ".forge") / SIMULATION_DIR
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    note = None
    moved = _moved_sqlite(manifest.storage.url, plant_dir, directory)
    if moved is not None:
        manifest.storage.url = moved
    elif make_url_backend(manifest.storage.url) not in ("sqlite", None):
        note = (f"storage is a {make_url_backend(manifest.storage.url)} server: its tables keep what earlier runs "
                "wrote, so this run may not replay the same (use a SQLite storage url to simulate)")
    manifest.plant_dir = directory
    return SimulationState(directory, note)


def make_url_backend(url: str) -> str | None:
    """The backend a database URL names (``sqlite``, ``postgresql``), None when it does not parse."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return None
