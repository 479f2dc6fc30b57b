"""A lower bound under industry40's simulated chaos day: four parts of its work, each done without Forge.

    python benchmarks/bench_industry40_floor.py [--hours 24] [--seed 7]

The plant's day (``bench_industry40_sim.py``) is two schedulers, two monitors, four factories, customers
over REST, an ERP over B2MML and chaos: too much to write again by hand as bench_sensor_floor.py does for
the sensor plant. Four parts of it are work any implementation of the same plant does, and can be measured
alone, exactly:

- **its SQL**: every statement the day's run sends to SQLite (recorded from the run, with its parameters,
  per connection, commits and rollbacks included; the connection pool's ``SELECT 1`` pings left out),
  replayed in the same order with plain ``sqlite3`` on a fresh file;
- **what the design asks of each message**: the compiled schema check of each of the day's messages
  (jsonschema-rs, the plant's schemas) and its trace line (the run's own ``TraceRecorder``), which proves the
  run deterministic;
- **the wake-ups**: the plant's periodic timers doing nothing (the bench's timers), from a heap of (time,
  timer) with no asyncio (the tightest discrete-event loop) and as ``call_at`` callbacks on Forge's virtual
  asyncio loop (no task: the least the design's asyncio costs); a task per timer is printed beside them;
- **the monitors' analysis**: each monitor life's beats (the factory, the arrival time and the body its
  ``BeatHistory`` was given) and its checks and silence wake-ups, recorded from the run and replayed in order
  on forge_mms's own analysis objects, built as the monitor builds them: ``BeatHistory.add`` and
  ``FaultDetector.observe`` per beat; per check the silence verdicts and, for each factory whose window
  changed, the risk strategy's assessment (a silence wake-up: the verdicts alone). It must find the run's
  status changes. The monitor's wiring (the bus, its component, the leader's reports, risk_hold, the writes)
  is left out.

Their sum with the heap's wake-ups is a floor; with the callbacks' it is the design's floor. The rest of the
plant's decisions (the schedulers' placement, the factories' work, the monitors' reports and failover, the REST
and XML handling, chaos) come on top of it, in any implementation. The script prints each part's CPU seconds,
the sums beside the 10 s target, and Forge's day from a clean run in the same invocation (the recording run
is not timed).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sqlite3.dbapi2
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
from bench_industry40_sim import TIMERS  # benchmarks/ is on sys.path when run as a script
from forge_mms.components.factory_monitor import FactoryMonitor
from forge_mms.components.factory_monitor_checks import CheckTimer
from forge_mms.monitoring.beats import BeatHistory
from forge_mms.monitoring.faults import FaultDetector
from forge_mms.tactics.risk import RuleBasedRisk
from industry40.testing import derive
from sim_day import Traced, simulate
from timer_floor import bare, callbacks, heap

from forge_core import VirtualClock
from forge_core.bus.stats import TraceRecorder
from forge_core.messages.envelope import Envelope
from forge_core.runtime import Runtime, load_plant

TARGET = 10.0  # s of wall time for 24 simulated hours (issue 17)
PING = "SELECT 1"  # SQLAlchemy's pool pre-ping: the pool's, not the plant's


@dataclass
class Recorded:
    """What the day's run did: its SQL calls in order, its messages, and their schemas."""

    #: (connection number, "x" execute / "m" executemany / "c" commit / "r" rollback, SQL, parameters)
    sql: list[tuple[int, str, str, Any]] = field(default_factory=list)
    #: the connections' isolation levels (as the run left them; the replay opens each alike)
    isolation: dict[int, str | None] = field(default_factory=dict)
    #: (time, topic, type, source, id, key, payload) of every message, as the trace saw it
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per monitor life (its FaultDetector's and BeatHistory's arguments): [faults args, history args, risk, window]
    monitors: list[list[Any]] = field(default_factory=list)
    #: in order: (life, "b", factory, at, payload) a beat, (life, "c" / "s", now, None, None) a check / silence wake-up,
    #: (life, "r", factory, at, status) a status restored at start
    monitor_events: list[tuple[Any, ...]] = field(default_factory=list)
    status_changes: int = 0  # the run's, every monitor life's (FactoryMonitor._changed)
    assessments: int = 0  # the run's risk assessments (RuleBasedRisk.assess)


def _recording_connection(log: Recorded) -> type[sqlite3.Connection]:
    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            log.sql.append((self.connection.number, "x", sql, parameters))  # type: ignore[attr-defined]
            return super().execute(sql, parameters)

        def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:
            rows = list(seq)
            log.sql.append((self.connection.number, "m", sql, rows))  # type: ignore[attr-defined]
            return super().executemany(sql, rows)

    class Connection(sqlite3.Connection):
        count = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            Connection.count += 1
            self.number = Connection.count

        def cursor(self, factory: Any = Cursor) -> Any:
            return super().cursor(factory)

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            log.sql.append((self.number, "x", sql, parameters))
            return super().execute(sql, parameters)

        def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:
            rows = list(seq)
            log.sql.append((self.number, "m", sql, rows))
            return super().executemany(sql, rows)

        def commit(self) -> None:
            log.isolation[self.number] = self.isolation_level
            log.sql.append((self.number, "c", "", None))
            super().commit()

        def rollback(self) -> None:
            log.isolation[self.number] = self.isolation_level
            log.sql.append((self.number, "r", "", None))
            super().rollback()

    return Connection


class _MonitorRecording:
    """Patches forge_mms's monitor to log its analysis's inputs (see the module docstring); ``undo`` restores it.

    A monitor life's FaultDetector and BeatHistory are made one after the other in ``FactoryMonitor.start``
    (no await between), so the n-th of each belong to the same life."""

    def __init__(self, log: Recorded) -> None:
        self.saved = [(cls, name, getattr(cls, name)) for cls, name in (
            (FaultDetector, "__init__"), (FaultDetector, "restore"), (BeatHistory, "__init__"), (BeatHistory, "add"),
            (FactoryMonitor, "check"), (FactoryMonitor, "_changed"), (CheckTimer, "_wake"), (RuleBasedRisk, "assess"))]
        original = {(cls, name): f for cls, name, f in self.saved}
        events, lives = log.monitor_events, log.monitors

        def faults_init(faults: Any, heartbeat: Any, *, max_gap: float, missed_beats: int) -> None:
            faults.floor_life = len(lives)
            lives.append([(heartbeat, max_gap, missed_beats), None, None, None])
            original[FaultDetector, "__init__"](faults, heartbeat, max_gap=max_gap, missed_beats=missed_beats)

        def restore(faults: Any, factory: str, status: str, at: float) -> None:
            events.append((faults.floor_life, "r", factory, at, status))
            original[FaultDetector, "restore"](faults, factory, status, at)

        def history_init(history: Any, horizon: float, *, late_after: float, errors: Any = "cumulative") -> None:
            history.floor_life = len(lives) - 1
            lives[-1][1] = (horizon, late_after, errors)
            original[BeatHistory, "__init__"](history, horizon, late_after=late_after, errors=errors)

        def add(history: Any, factory: str, at: float, payload: dict[str, Any]) -> Any:
            events.append((history.floor_life, "b", factory, at, payload))
            return original[BeatHistory, "add"](history, factory, at, payload)

        async def check(monitor: Any) -> None:
            life = lives[monitor.history.floor_life]
            life[2], life[3] = monitor.risk, monitor.risk_window
            events.append((monitor.history.floor_life, "c", monitor.ctx.clock.time(), None, None))
            await original[FactoryMonitor, "check"](monitor)

        async def changed(monitor: Any, change: Any) -> None:
            log.status_changes += 1
            await original[FactoryMonitor, "_changed"](monitor, change)

        def assess(risk: Any, factory: str, beats: Any, now: float) -> Any:
            log.assessments += 1
            return original[RuleBasedRisk, "assess"](risk, factory, beats, now)

        def wake(timer: Any) -> Any:
            now = timer.time()
            if not now >= timer._tick - 1e-9:  # a silence wake-up (a check is logged by check itself)
                events.append((timer.monitor.history.floor_life, "s", now, None, None))
            return original[CheckTimer, "_wake"](timer)

        for cls, name, f in ((FaultDetector, "__init__", faults_init), (FaultDetector, "restore", restore),
                             (BeatHistory, "__init__", history_init), (BeatHistory, "add", add),
                             (FactoryMonitor, "check", check), (FactoryMonitor, "_changed", changed),
                             (CheckTimer, "_wake", wake), (RuleBasedRisk, "assess", assess)):
            setattr(cls, name, f)

    def undo(self) -> None:
        for cls, name, f in self.saved:
            setattr(cls, name, f)


def record_day(seconds: float, seed: int, tmp: Path) -> Recorded:
    """The plant's day (profile chaos) with its SQL, messages and monitors' analysis recorded."""
    log = Recorded()
    connection = _recording_connection(log)
    connect = sqlite3.dbapi2.connect
    trace_record = TraceRecorder.record

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, **{**kwargs, "factory": connection})

    def record(self: TraceRecorder, topic: str, env: Envelope) -> None:
        log.messages.append((env.time, topic, env.type, env.source, env.id, env.key, env.payload))
        trace_record(self, topic, env)

    sqlite3.dbapi2.connect = sqlite3.connect = recording_connect  # type: ignore[assignment]
    TraceRecorder.record = record  # type: ignore[method-assign]
    monitors = _MonitorRecording(log)
    try:
        plugins, manifest = load_plant(derive(tmp / "recorded"), profile="chaos")
        clock = VirtualClock()
        runtime = Runtime(manifest, plugins, clock=clock, seed=seed, record_trace=True, serve_health=False)
        try:
            clock.run(runtime.run(seconds))
        finally:
            clock.close()
        log.schemas = {s.type: s.schema for s in runtime.bus.schemas}
    finally:
        sqlite3.dbapi2.connect = sqlite3.connect = connect
        TraceRecorder.record = trace_record  # type: ignore[method-assign]
        monitors.undo()
    return log


def replay_sql(log: Recorded, path: Path) -> tuple[float, int, int]:
    """(CPU s, calls, errors) of the recorded SQL replayed on a fresh ``path`` (pings left out)."""
    conns: dict[int, sqlite3.Connection] = {}
    calls = errors = 0
    cpu = time.process_time()
    for number, op, sql, parameters in log.sql:
        conn = conns.get(number)
        if conn is None:
            conn = conns[number] = sqlite3.connect(path, isolation_level=log.isolation.get(number, ""),
                                                   check_same_thread=False)
        try:
            if op == "x":
                if sql == PING:
                    continue
                conn.execute(sql, parameters)
            elif op == "m":
                conn.executemany(sql, parameters)
            elif op == "c":
                conn.commit()
            else:
                conn.rollback()
            calls += 1
        except sqlite3.Error:
            errors += 1  # as in the run (a unique key hit on purpose, a lease taken): counted, replayed on
    took = time.process_time() - cpu
    for conn in conns.values():
        conn.close()
    return took, calls, errors


def check_and_trace(log: Recorded) -> tuple[float, str]:
    """(CPU s, digest) of a schema check and a trace line for each recorded message."""
    checks: dict[str, Callable[[Any], bool]] = {
        type_: jsonschema_rs.validator_for(schema).is_valid for type_, schema in log.schemas.items()}
    trace = TraceRecorder()  # the run's own recorder: the same line, rounding and hashing per message
    line = Traced("", "")
    cpu = time.process_time()
    for at, topic, type_, source, message_id, key, payload in log.messages:
        if not checks[type_](payload):
            raise SystemExit(f"a recorded {type_} does not pass its schema: {payload}")
        line.time, line.type, line.source, line.id, line.key, line.payload = \
            at, type_, source, message_id, key, payload
        trace.record(topic, line)  # type: ignore[arg-type]  # an Envelope's traced fields
    digest = trace.digest
    return time.process_time() - cpu, digest


def replay_monitors(log: Recorded) -> tuple[float, int, int]:
    """(CPU s, status changes, assessments) of the monitors' analysis replayed on fresh objects."""
    lives: list[tuple[Any, ...]] = []
    for (heartbeat, max_gap, missed_beats), (horizon, late_after, errors), risk, window in log.monitors:
        faults = FaultDetector(heartbeat, max_gap=max_gap, missed_beats=missed_beats)
        # a life that never checked (killed first) never assessed: its window is not read
        lives.append((faults, BeatHistory(horizon, late_after=late_after, errors=errors), risk, window, {}))
    changes = assessments = 0
    cpu = time.process_time()
    for life, kind, a, b, c in log.monitor_events:
        faults, history, risk, length, assessed = lives[life]
        if kind == "b":  # a, b, c: factory, arrival, body
            changes += faults.observe(history.add(a, b, c)) is not None
        elif kind == "r":  # restored at start: no change reported (the monitor's own rule)
            faults.restore(a, c, b)
        else:  # a: now
            changes += len(faults.evaluate(a))
            if kind == "c":
                for factory in faults.statuses():
                    window = history.window(factory, length, a)
                    if assessed.get(factory) != window.version:  # the same beats: the same assessment
                        assessed[factory] = window.version
                        risk.assess(factory, window, a)
                        assessments += 1
    return time.process_time() - cpu, changes, assessments


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    seconds, per_day = args.hours * 3600, TARGET * args.hours / 24
    print(f"examples/industry40, {args.hours:g} simulated h with chaos, seed {args.seed}; load average "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; target {per_day:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        log = record_day(seconds, args.seed, Path(tmp))
        sql, calls, errors = replay_sql(log, Path(tmp) / "replayed.db")
    pings = sum(1 for _n, op, text, _p in log.sql if op == "x" and text == PING)
    messages, digest = check_and_trace(log)
    tasks_s, wakeups = bare(TIMERS, seconds)
    callbacks_s, _ = callbacks(TIMERS, seconds)
    heap_s, _ = heap(TIMERS, seconds)
    analysis, changes, assessments = replay_monitors(log)
    if changes != log.status_changes:
        raise SystemExit(f"the monitors' replay found {changes} status changes, the run {log.status_changes}")
    floor = sql + messages + heap_s + analysis
    design = floor - heap_s + callbacks_s
    _wall, forge, summary = simulate(derive, "industry40", seconds, args.seed, "chaos")
    print(f"  the plant's SQL, replayed:      {sql:6.2f} s CPU  ({calls} calls, {errors} raising as in the run; "
          f"{pings} pool pings left out)")
    print(f"  a check and a trace line each:  {messages:6.2f} s CPU  ({len(log.messages)} messages, digest "
          f"{digest[:16]}; the run's {summary.trace_digest[:16]})")
    print(f"  the wake-ups:                   {heap_s:6.2f} s CPU  ({wakeups} from a heap; as call_at callbacks on the "
          f"virtual asyncio loop {callbacks_s:.2f} s, a task per timer {tasks_s:.2f} s wall)")
    beats = sum(1 for event in log.monitor_events if event[1] == "b")
    print(f"  the monitors' analysis:         {analysis:6.2f} s CPU  ({len(log.monitors)} monitor lives, {beats} "
          f"beats, {assessments} assessments, the run {log.assessments}; {changes} status changes, as in the run)")
    print(f"  the floor (their sum):          {floor:6.2f} s CPU  {floor / per_day:.2f} of the target; with the "
          f"callbacks' wake-ups (the design's) {design:.2f} s, {design / per_day:.2f}")
    print(f"  Forge, a clean run:             {forge:6.2f} s CPU  {forge / per_day:.2f} of the target; "
          f"floor / Forge {floor / forge:.2f}, the design's {design / forge:.2f}; "
          f"{len(summary.checks) - sum(not c.passed for c in summary.checks)}/{len(summary.checks)} checks")
    print(f"  load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
