"""Shared by the multi-process runner tests (test_processes.py, test_process_dead_letters.py,
test_process_ports.py): the machine plugin with an exiting component, the plant, and waiting helpers."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from tests.conftest import MACHINE_PLUGIN

PLUGIN = MACHINE_PLUGIN.replace("@hookimpl", '''
class Exiter(Component):
    """Its process dies at once: a crash the parent must see."""

    async def start(self):
        import os
        os._exit(3)


@hookimpl
def forge_plant_checks(summary):
    from forge_core import Check

    return [Check("plant: instances seen", True, ", ".join(sorted(summary.components)))]


@hookimpl''', 1).replace('registry.add("test.machine", Machine)',
                         'registry.add("test.machine", Machine)\n    registry.add("test.exiter", Exiter)')


MANIFEST = """
version: 1
plant: {name: procs}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 0.2}, replicas: 2}
  m2: {type: test.machine, params: {interval: 0.2}}
runtime:
  processes: per_component
  health: {port: false}
  restart: {initial_backoff: 0.2, max_backoff: 0.4, max_restarts: 2, window: 60.0}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie not yet reaped by its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def up(child) -> bool:
    """Every life of ``child`` got as far as running its component (a SIGTERM before that kills it
    while Python is still importing, without a summary)."""
    return child.log_path.read_text(errors="replace").count("running plant") == len(child.lives)


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
