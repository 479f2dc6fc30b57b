"""window_inputs: PostgreSQL's and SQLite's reductions in SQL give what the machine-by-machine Python path gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from oee_line.oee import LossSettings, counter_deltas, machine_window
from oee_line.storage.store import GOOD, TOTAL, Sample, TimeSeriesStore
from oee_line.storage.window import window_inputs
from sqlalchemy import Engine

from .conftest import migrated


def _history(rng: random.Random, machine: str, t_end: float) -> tuple[list[Sample], list]:
    """Counters that mostly climb, with bad parts (TotalCount alone), PLC restarts (both back near 0), samples
    of one counter only, and state changes."""
    from oee_line.oee import StateChange

    samples, states = [], []
    good = total = 0
    t = rng.uniform(0, 50)
    while t < t_end:
        kind = rng.random()
        before = good
        if kind < 0.02:  # restart: counters from 0 (with the parts made since)
            total = rng.randint(0, 2)
            good = rng.randint(0, total)
        elif kind < 0.2:  # a bad part: only the total changes, only it is reported
            total += 1
            samples.append(Sample(machine, TOTAL, t, float(total)))
            t += rng.uniform(0.5, 30)
            continue
        else:
            made = rng.randint(0, 3)
            total += made
            good += made - (1 if made and rng.random() < 0.1 else 0)
        samples.append(Sample(machine, TOTAL, t, float(total)))
        if good != before or kind < 0.02 or rng.random() < 0.5:  # unchanged: reported or not
            samples.append(Sample(machine, GOOD, t, float(good)))
        if rng.random() < 0.05:
            states.append((machine, StateChange(t, rng.choice(["running", "idle", "down", "setup"]),
                                                rng.randint(0, 9))))
        t += rng.uniform(0.5, 30)
    return samples, states


def _reduction_equals_the_python_path(series_db: Engine) -> None:
    rng = random.Random(5)
    store = TimeSeriesStore(series_db)
    for m in ("A", "B", "C"):
        samples, states = _history(rng, m, 20_000.0)
        store.write(samples, states)
    store.write([Sample("C", "IdealCycleTime", 10.0, 3.5)])
    store.write([Sample("D", TOTAL, 15_000.0, 4.0)])  # only one counter, only inside the later windows
    machines = ["A", "B", "C", "D", "E"]  # E: nothing stored at all
    for t0, t1 in [(0.0, 20_000.0), (5_000.0, 9_000.0), (14_999.0, 15_001.0), (19_000.0, 30_000.0)]:
        got = window_inputs(store, machines, t0, t1, 2.0)
        for m in machines:
            want = counter_deltas(store.counters(m, t0, t1), t0, t1)
            assert got[m].counters == want, (m, t0, t1)
            assert got[m].states == store.states(m, t0, t1)
            assert got[m].ideal_cycle_time == store.ideal_cycle_time(m, 2.0)
            settings = LossSettings(small_stop_threshold=120, startup_window=600)
            fast = machine_window(got[m].states, got[m].counters, 2.0, t0, t1, settings=settings)
            slow = machine_window(store.states(m, t0, t1), store.counters(m, t0, t1), 2.0, t0, t1,
                                  settings=settings)
            assert fast == slow
    assert any(e.reset for e in got["A"].counters.events + got["B"].counters.events)  # the case was exercised


@pytest.mark.servers
def test_postgresql_reduction_equals_the_python_path(pg_series_db: Engine) -> None:
    _reduction_equals_the_python_path(pg_series_db)


def test_sqlite_reduction_equals_the_python_path(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    try:
        _reduction_equals_the_python_path(engine)
    finally:
        engine.dispose()


def test_sqlite_reduces_in_sql(series_db: Engine) -> None:
    store = TimeSeriesStore(series_db)
    store.write([Sample("M1", TOTAL, 1.0, 0.0), Sample("M1", GOOD, 1.0, 0.0), Sample("M1", TOTAL, 5.0, 3.0),
                 Sample("M1", GOOD, 5.0, 2.0)])
    got = window_inputs(store, ["M1"], 0.0, 10.0, 2.0)["M1"]
    assert (got.counters.total, got.counters.good, got.ideal_cycle_time) == (3, 2, 2.0)
    assert [(e.ts, e.d_total, e.d_good, e.reset) for e in got.counters.events] == [(5.0, 3, 2, False)]
