"""On TimescaleDB the window reads bound ``sec``, the partition column, so a window's plan touches only its chunks
(EXPLAIN of the statements ``TimeSeriesStore.counters`` and ``window_inputs`` really send)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from oee_line.storage.store import GOOD, TOTAL, Sample, TimeSeriesStore
from oee_line.storage.window import _counters, window_inputs
from sqlalchemy import Engine

pytestmark = pytest.mark.servers

DAY = 86_400.0
#: a 1 h window on the third day of four: telemetry chunks are one day each
T0, T1 = 2 * DAY + 3_600.0, 2 * DAY + 7_200.0


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) sent on ``engine`` inside the block."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _scans(engine: Engine, statement: str, parameters: Any) -> list[tuple[str, str]]:
    """(chunk, its scan's conditions) of every chunk the statement read (EXPLAIN ANALYZE: the scans that ran;
    chunks excluded when planning are not in the plan, those excluded at run time never ran)."""
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()
    out: list[tuple[str, str]] = []

    def walk(node: dict[str, Any]) -> None:
        if re.match(r"_hyper_\d+_\d+_chunk$", node.get("Relation Name", "")) and node.get("Actual Loops", 0) > 0:
            out.append((node["Relation Name"], " ".join(str(node.get(k, "")) for k in ("Index Cond", "Filter"))))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return out


def _chunks(engine: Engine) -> dict[int, str]:
    """Each telemetry chunk by the day it holds."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT chunk_name, range_start_integer FROM timescaledb_information.chunks "
            "WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'")).all()
    return {int(start // DAY): name for name, start in rows}


def _telemetry_reads(sent: list[tuple[str, Any]], match: Callable[[str], bool]) -> list[tuple[str, Any]]:
    return [(s, p) for s, p in sent if "telemetry" in s and match(s)]


@pytest.fixture
def four_days(ts_series_db: Engine) -> TimeSeriesStore:
    store = TimeSeriesStore(ts_series_db)
    samples = [Sample("M1", metric, t * 120.0, float(t)) for t in range(int(4 * DAY / 120)) for metric in (GOOD, TOTAL)]
    for i in range(0, len(samples), 2_000):
        store.write(samples[i:i + 2_000])
    assert sorted(_chunks(ts_series_db)) == [0, 1, 2, 3]
    return store


def test_a_counters_window_reads_only_its_chunk_and_none_after_it(four_days: TimeSeriesStore) -> None:
    engine, chunks = four_days.engine, _chunks(four_days.engine)
    with _statements(engine) as sent:
        rows = four_days.counters("M1", T0, T1)
    assert len(rows) == 3_600 / 120 + 1  # the window's samples and the one before it
    reads = _telemetry_reads(sent, lambda s: "ORDER BY" in s)
    assert len(reads) == 3  # the two counters' baselines and the window's rows
    window = [p for s, p in reads if ">=" in s]
    assert len(window) == 1
    assert {c for c, _ in _scans(engine, *next((s, p) for s, p in reads if ">=" in s))} == {chunks[2]}
    for statement, parameters in reads:  # the probes before the window look back, never at the day after
        assert chunks[3] not in {c for c, _ in _scans(engine, statement, parameters)}


def test_the_oee_windows_counter_reads_touch_only_the_windows_chunk(four_days: TimeSeriesStore) -> None:
    engine, chunks = four_days.engine, _chunks(four_days.engine)
    # a PLC restart in the window, TotalCount alone: the reset probes GoodCount's value before it
    four_days.write([Sample("M1", TOTAL, T0 + 1_860.0, 0.0)])
    with _statements(engine) as sent:
        inputs = window_inputs(four_days, ["M1"], T0, T1, 2.0)
    assert [e.reset for e in inputs["M1"].counters.events] == [True, False]  # the restart, then the climb back
    (statement, parameters), = _telemetry_reads(sent, lambda s: "lag(" in s)
    scans = _scans(engine, statement, parameters)
    in_window = {c for c, cond in scans if ">=" in cond}  # the window's range reads (the rest: probes before it)
    assert in_window == {chunks[2]}
    assert chunks[3] not in {c for c, _ in scans}, "\n".join(f"{c}: {cond}" for c, cond in scans)
    # the same statement without the sec bounds (the plain tables' text) reads every chunk for its range
    plain = str(_counters(False).compile(engine, compile_kwargs={}))
    unbounded = _scans(engine, plain, {k: parameters[k] for k in ("machines", "t0", "t1")})
    assert {c for c, cond in unbounded if ">=" in cond} == set(chunks.values())
