"""The historian's writes in a forge_core.storage.CommitGroup under a virtual clock (virtual_commit_samples):
every write runs at its call in one kept transaction; a reader through the engine, a stop and a kill see
what a commit per write gives; a failing write dead-letters what it held, the earlier writes kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from oee_line.components.historian import Historian
from oee_line.storage.tables import ROLLUPS, telemetry
from oee_line.testing import host_messages, machines

from forge_core.testing import TestPlant

from .test_historian_oee import _held_plant

TOPIC = "sparkplug/data/line1/edge-1/M1"


def _bodies(seconds: float) -> list[dict]:
    return [body for _, body in host_messages(machines({"M1": 2.0}, seed=9), seconds)]


def _publish(plant: TestPlant, historian: Historian, bodies: list[dict]) -> None:
    for body in bodies:
        plant.publish(TOPIC, "sparkplug.metrics", body)
    plant.run_until(lambda: historian.report()["messages"] >= len(bodies), timeout=5)


def _numeric(bodies: list[dict]) -> int:
    return len({(x["name"], x["timestamp"]) for b in bodies for x in b["metrics"] if x["name"] != "State"})


def test_writes_share_a_transaction_and_a_reader_finds_every_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bodies = _bodies(120.0)
    with _held_plant(tmp_path, group=1_000_000) as plant:
        historian = plant.component("historian")
        assert isinstance(historian, Historian) and historian.group is not None
        _publish(plant, historian, bodies + bodies[:20])  # with a replay of the first 20
        plant.advance(10.5)
        group = historian.group
        assert historian.held == [] and group.commits == 0 and group.pending  # written, not committed
        with historian.store.engine.connect() as conn:  # a checkout: the group commits first
            rows = conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar()
            one_minute = conn.execute(sa.select(sa.func.sum(ROLLUPS[0].table.c.count))).scalar()
        assert group.commits == 1
        assert rows == one_minute == historian.report()["stored"] == _numeric(bodies)


@pytest.mark.parametrize("end", ["stop", "kill"])
def test_a_stop_and_a_kill_commit_what_was_written(tmp_path, end: str) -> None:  # type: ignore[no-untyped-def]
    bodies = _bodies(60.0)
    with _held_plant(tmp_path, group=1_000_000) as plant:
        historian = plant.component("historian")
        assert isinstance(historian, Historian) and historian.group is not None
        _publish(plant, historian, bodies)
        plant.advance(10.5)
        stored = historian.report()["stored"]
        assert stored == _numeric(bodies) and historian.group.commits == 0
        url = str(historian.store.engine.url)
        if end == "kill":  # as SIGKILL: no stop(); the group's guard is cancelled
            plant.kill("historian")
            assert _committed(url) == stored
    assert _committed(url) == stored


def _committed(url: str) -> int:
    """Rows another engine sees (another process's view): only what is committed; each rollup level counts
    them all (its rows upserted before the commit)."""
    other = sa.create_engine(url)
    try:
        with other.connect() as conn:
            rows = int(conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar() or 0)
            for rollup in ROLLUPS:
                assert int(conn.execute(sa.select(sa.func.sum(rollup.table.c.count))).scalar() or 0) == rows
            return rows
    finally:
        other.dispose()


def test_a_failing_write_dead_letters_what_it_held_and_keeps_the_earlier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bodies = _bodies(120.0)
    with _held_plant(tmp_path, group=1_000_000) as plant:
        historian = plant.component("historian")
        assert isinstance(historian, Historian) and historian.group is not None
        half = len(bodies) // 2
        _publish(plant, historian, bodies[:half])
        plant.advance(10.5)
        stored = historian.report()["stored"]
        assert stored > 0 and historian.group.commits == 0
        write_in = historian.store.write_in

        def broken(conn, samples, states=()):  # type: ignore[no-untyped-def]
            write_in(conn, samples, states)  # the statements ran, then the write fails: all rolled back
            raise RuntimeError("disk full")

        historian.store.write_in = broken  # type: ignore[method-assign]
        _publish(plant, historian, bodies[half:])
        plant.advance(10.5)
        letters = [d for d in plant.dead_letters if d.component == "historian"]
        assert [d.envelope.payload for d in letters if d.envelope is not None] == bodies[half:]
        assert "disk full" in letters[0].detail
        with historian.store.engine.connect() as conn:  # the earlier writes: run again and committed
            assert conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar() == stored
            # their rollups once (held for the transaction, upserted before its commit), the failed write's not
            for rollup in ROLLUPS:
                assert conn.execute(sa.select(sa.func.sum(rollup.table.c.count))).scalar() == stored
