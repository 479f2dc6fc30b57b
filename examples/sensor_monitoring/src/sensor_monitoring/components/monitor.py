"""``sensor_monitoring.monitor``: a live view of the sensor plant for a person.

Figures and where they come from:

* **produced/s**: readings the monitor sees on ``topic`` (``sensor-data``) with a non-shared batch subscription
  of its own (its own consumer on Kafka, not the processors' group; on the memory bus a batch is what came within
  the transport's ``batch_wait``, 1 s in the plant, so the figure lags by up to that, as the stored figures do:
  one delivery a second instead of one per reading); ``count_produced: false`` (the cluster_secure
  profile, where no principal may read outside its group) leaves the figure out;
* **stored**: the running count the processors keep per sensor in each batch's transaction
  (``sum(sensors.stored)``, forge-mms ``mms_0003``): a read over the sensors, not the readings;
* **stored/s**, **processing time**: the readings stored in the last ``rate_window`` seconds (``stored_at -
  ts``: sensor timestamp -> row written, end to end), found by the ``stored_at`` index, so a poll reads the
  window's rows, not the table;
* **active alerts**: the ``alerts`` table (``state = 'raised'``);
* **assignments per processor** and the **latest rebalances**: the ``system_events`` rows the processors
  write (``partitions_assigned``/``revoked``/``lost``; detail ``{group, partitions, held}``);
* **group lag per partition** and **batch time per processor**: the newest ``consumer_status`` row of each
  processor (forge-mms ``status_every``; detail ``{group, lag, held, batch_ms, readings}``); a partition's
  lag is taken from the processor that holds it by the partition events (rows of the last
  ``STATUS_HORIZON`` seconds are read at the first poll, then every newer one);
* **monitor lag / partitions** (report only): ``Subscription.lag()``/``assignment()`` of the monitor's own
  subscription: whether the produced/s figure keeps up.

Producer errors (each sensor's ``publish_errors``) live in the sensors' processes: they are in the
components' reports and OpenTelemetry metrics, not in this view.

The database is read every ``refresh`` seconds; under a real clock in a thread (``asyncio.to_thread``,
as forge-mms's stores do). With ``render: auto`` a ``rich`` Live table is drawn only when stdout is a
terminal and the clock is real; ``report()`` is the final snapshot. Under virtual time with no table
drawn, nobody looks between two snapshots: the database is read (on the loop) when a snapshot is taken
(``report()``, the dashboard, ``stop()``) and the last read is ``refresh`` seconds old, not every
``refresh`` seconds. A read once counted every stored row (``count(*)``, and scanned them for the last
``rate_window`` seconds' rows): each poll's cost grew with the table, a simulated day's with the square
of its length (86,400 reads of up to 777,600 rows), and a real plant's view slowed as its table grew.
Now a poll reads the sensors' running counts and the window's rows by index: its cost is the sensors and
the readings of the last ``rate_window`` seconds, however long the plant has run.

**stored/s** is the readings stored in the last ``rate_window`` seconds (``stored_at``) over that window
(shorter while the view is younger than it), the same rows as the processing time's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from forge_core import Component, Envelope, Flow, Subscribes
from sensor_monitoring.settings import MonitorParams

READING = "mms.sensor_reading"
PARTITION_KINDS = ("partitions_assigned", "partitions_revoked", "partitions_lost")
#: Seconds of consumer_status history the first poll reads (later polls read the rows after the last id).
STATUS_HORIZON = 60.0


@dataclass
class StorageView:
    """What one poll of the database read."""

    stored: int = 0
    latency_ms: dict[str, float] | None = None
    active_alerts: int = 0
    latest_alerts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # partition events after the last id read
    statuses: list[dict[str, Any]] = field(default_factory=list)  # consumer_status rows after the last id read


def _detail(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def read_storage(engine: sa.Engine, *, after_event: int, after_status: int, status_since: float, since: float,
                 keep: int) -> StorageView:
    """One poll (blocking: a thread under a real clock)."""
    view = StorageView()
    with engine.connect() as conn:
        view.stored = int(conn.execute(sa.text("SELECT coalesce(sum(stored), 0) FROM sensors")).scalar_one())
        n, mean, top = conn.execute(sa.text("SELECT count(*), avg(stored_at - ts), max(stored_at - ts) "
                                            "FROM readings WHERE stored_at >= :since"), {"since": since}).one()
        if n:
            view.latency_ms = {"readings": int(n), "mean": round(float(mean) * 1000, 1),
                               "max": round(float(top) * 1000, 1)}
        view.active_alerts = int(conn.execute(sa.text("SELECT count(*) FROM alerts WHERE state = 'raised'"))
                                 .scalar_one())
        rows = conn.execute(sa.text("SELECT sensor_id, rule, severity, value, raised_at FROM alerts "
                                    "WHERE state = 'raised' ORDER BY raised_at DESC LIMIT :n"), {"n": keep})
        view.latest_alerts = [{"sensor": r[0], "rule": r[1], "severity": r[2], "value": r[3],
                               "at": round(float(r[4]), 3)} for r in rows]
        rows = conn.execute(sa.text("SELECT id, at, kind, source, detail FROM system_events WHERE id > :after "
                                    "AND kind IN ('partitions_assigned', 'partitions_revoked', 'partitions_lost') "
                                    "ORDER BY id"), {"after": after_event})
        for r in rows:
            detail = _detail(r[4])
            view.events.append({"id": int(r[0]), "at": round(float(r[1]), 3), "kind": r[2], "source": r[3],
                                "partitions": detail.get("partitions", []), "held": detail.get("held", [])})
        rows = conn.execute(sa.text("SELECT id, at, source, detail FROM system_events WHERE kind = 'consumer_status' "
                                    "AND id > :after AND at >= :since ORDER BY id"),
                            {"after": after_status, "since": status_since})
        for r in rows:
            detail = _detail(r[3])
            view.statuses.append({"id": int(r[0]), "at": round(float(r[1]), 3), "source": r[2],
                                  "lag": detail.get("lag"), "batch_ms": detail.get("batch_ms"),
                                  "readings": detail.get("readings")})
    return view


class Monitor(Component):
    Params = MonitorParams
    params: MonitorParams
    subscribes = (Subscribes(READING, param="topic", shared=False),)

    @classmethod
    def flows(cls, params: MonitorParams) -> list[Flow]:
        """Its own subscription only while it counts what was produced."""
        return super().flows(params) if params.count_produced else []

    async def start(self) -> None:
        self.produced = 0
        self.started_at = self.ctx.clock.time()
        #: (clock time, readings) of the batches seen in the last rate_window, and their readings: a batch's
        #: entry, not one per reading (trimmed a batch at a time)
        self._seen: deque[tuple[float, int]] = deque()
        self._seen_readings = 0
        self._read_at: float | None = None  # clock time of the last database read
        self.lazy = False  # set below, once it is known whether a table is drawn
        self.storage_view = StorageView()
        self.assignments: dict[str, set[tuple[str, int]]] = {}
        self.rebalances: deque[dict[str, Any]] = deque(maxlen=self.params.keep_events)
        self.rebalance_count = 0
        self._last_event = 0
        self._last_status = 0
        self.statuses: dict[str, dict[str, Any]] = {}  # processor -> its newest consumer_status
        self.polls = 0
        self.db_error: str | None = None
        self._polling = False
        self.real = not getattr(self.ctx.clock, "is_virtual", False)
        self.sub = None
        if self.params.count_produced:
            self.sub = await self.ctx.subscribe(self.params.topic, self.on_readings, types=[READING], shared=False,
                                                batch=True)
        try:
            self.engine: sa.Engine | None = self.ctx.storage
        except RuntimeError:
            self.engine = None
            self.ctx.log.warning("%s: the runtime has no storage; stored, alerts and assignments are not shown",
                                 self.name)
        self.live = None
        render = self.params.render
        if render == "always" or (render == "auto" and self.real and sys.stdout.isatty()):
            from rich.live import Live

            self.live = Live(self.view(), auto_refresh=False, transient=False)
            self.live.start()
        #: virtual time without a table: read when a snapshot is taken, not every refresh (see the module doc)
        self.lazy = not self.real and self.live is None
        if not self.lazy:
            self.ctx.every(self.params.refresh, self.tick, name="refresh", initial_delay=0)

    async def stop(self) -> None:
        await self.poll()  # the final snapshot has the last rows
        if self.live is not None:
            self.live.update(self.view(), refresh=True)
            self.live.stop()
            self.live = None

    # -- state -------------------------------------------------------------------------------
    def on_readings(self, envelopes: list[Envelope]) -> None:
        """Readings delivered, a batch at a time (what the transport holds: on the memory bus, what came within
        its ``batch_wait``), so the figures lag by up to that (1 s in the plant), as the stored figures do."""
        count = len(envelopes)
        self.produced += count
        now = self.ctx.clock.time()
        seen = self._seen
        seen.append((now, count))
        self._seen_readings += count
        if seen[0][0] < now - self.params.rate_window:  # kept to the window between two snapshots too
            self._trim(now)

    async def tick(self) -> None:
        await self.poll()
        if self.live is not None:
            self.live.update(self.view(), refresh=True)

    async def poll(self) -> None:
        if self.engine is None or self._polling:
            return
        if not self.real:
            self._read()
            return
        self._polling = True
        try:
            now = self.ctx.clock.time()
            try:
                view = await asyncio.to_thread(read_storage, self.engine, **self._args(now))
            except sa.exc.SQLAlchemyError as exc:  # a view that cannot read says so; it does not crash
                self._failed(exc)
                return
            self._apply_view(view, now)
        finally:
            self._polling = False

    def _args(self, now: float) -> dict[str, Any]:
        return {"after_event": self._last_event, "after_status": self._last_status,
                "status_since": now - STATUS_HORIZON if not self._last_status else 0.0,
                "since": now - self.params.rate_window, "keep": self.params.keep_events}

    def _read(self) -> None:
        """Read the database on the loop (virtual time)."""
        if self.engine is None:
            return
        now = self.ctx.clock.time()
        try:
            view = read_storage(self.engine, **self._args(now))
        except sa.exc.SQLAlchemyError as exc:
            self._failed(exc)
            return
        self._apply_view(view, now)

    def _failed(self, exc: Exception) -> None:
        self.db_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"

    def _apply_view(self, view: StorageView, now: float) -> None:
        self.db_error = None
        self.polls += 1
        self._read_at = now
        self.storage_view = view
        for event in view.events:
            self._apply(event)
        for status in view.statuses:
            self._last_status = status["id"]
            self.statuses[status["source"]] = status

    def _apply(self, event: dict[str, Any]) -> None:
        """Held partitions of the event's processor: ``held`` as recorded, then the change applied (so it
        is right whether ``held`` was taken before or after the change)."""
        self._last_event = event["id"]
        held = {(t, int(p)) for t, p in event["held"]}
        changed = {(t, int(p)) for t, p in event["partitions"]}
        held = held | changed if event["kind"] == "partitions_assigned" else held - changed
        self.assignments[event["source"]] = held
        self.rebalance_count += 1
        self.rebalances.append({k: event[k] for k in ("at", "kind", "source", "partitions")})

    def group_lag(self) -> dict[str, dict[str, Any]]:
        """``topic[partition]`` -> ``{lag, processor, at}``: from the newest consumer_status of the processor
        that holds the partition (by the partition events; a processor without any: as its row says)."""
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for source, status in sorted(self.statuses.items(), key=lambda item: item[1]["at"]):  # newest wins
            held = self.assignments.get(source)
            for key, n in (status["lag"] or {}).items():
                topic, _, part = key.rpartition(":")
                tp = (topic, int(part))
                if held is None or tp in held:
                    out[tp] = {"lag": n, "processor": source, "at": status["at"]}
        return {f"{t}[{p}]": out[(t, p)] for t, p in sorted(out)}

    def _trim(self, now: float) -> None:
        start = now - self.params.rate_window
        seen = self._seen
        while seen and seen[0][0] < start:
            self._seen_readings -= seen.popleft()[1]

    # -- views -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        now = self.ctx.clock.time()
        if self.lazy and not self._polling and (self._read_at is None or now - self._read_at >= self.params.refresh):
            self._read()
        self._trim(now)
        seen_over = min(self.params.rate_window, now - self.started_at)  # a young view has a shorter window
        db = self.storage_view
        stored_rate = None
        if self.polls and self._read_at is not None:
            window = min(self.params.rate_window, self._read_at - self.started_at)
            if window > 0:
                stored_rate = round((db.latency_ms or {}).get("readings", 0) / window, 2)
        lag = self.sub.lag() if self.sub is not None else None
        return {
            "produced": self.produced if self.sub is not None else None,
            "produced_per_s": round(self._seen_readings / seen_over, 2) if self.sub is not None and seen_over else None,
            "stored": db.stored if self.polls else None, "stored_per_s": stored_rate,
            "processing_ms": db.latency_ms, "active_alerts": db.active_alerts, "latest_alerts": db.latest_alerts,
            "assignments": {name: [list(tp) for tp in sorted(held)] for name, held in sorted(self.assignments.items())},
            "rebalances": self.rebalance_count, "latest_rebalances": list(self.rebalances),
            "group_lag": self.group_lag(),
            "processors": {name: {k: s[k] for k in ("at", "batch_ms", "readings")}
                           for name, s in sorted(self.statuses.items())},
            "monitor_partitions": [list(tp) for tp in self.sub.assignment()] if self.sub is not None else [],
            "monitor_lag": {f"{t}[{p}]": n for (t, p), n in sorted(lag.items())} if lag is not None else None,
            "db_error": self.db_error,
            "not_shown": ["producer errors (sensors' reports: publish_errors)"],
        }

    def view(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        snap = self.snapshot()

        def figure(value: Any, unit: str = "") -> str:
            return "-" if value is None else f"{value}{unit}"

        plant = Table(title="sensor plant", show_header=False)
        plant.add_row("produced", f"{figure(snap['produced'])} ({figure(snap['produced_per_s'], '/s')})")
        plant.add_row("stored", f"{figure(snap['stored'])} ({figure(snap['stored_per_s'], '/s')})")
        ms = snap["processing_ms"]
        plant.add_row("reading -> stored", f"mean {ms['mean']} ms, max {ms['max']} ms" if ms else "-")
        alerts = "; ".join(f"[red]{a['severity']}[/] {a['sensor']} {a['rule']}" for a in snap["latest_alerts"])
        plant.add_row("active alerts", f"{snap['active_alerts']}" + (f": {alerts}" if alerts else ""))
        lag = snap["group_lag"]
        plant.add_row("group lag", f"{sum(v['lag'] for v in lag.values())} records" if lag else "-")
        if snap["db_error"]:
            plant.add_row("database", f"[red]{snap['db_error']}[/]")
        groups = Table(title="partitions", expand=False)
        for col in ("processor", "held (lag)", "batch ms p50/max", "readings (last status)"):
            groups.add_column(col)

        def held_with_lag(name: str) -> str:
            if name not in snap["assignments"]:  # no partition events from it: the partitions its status names
                return " ".join(f"{k} ({v['lag']})" for k, v in lag.items() if v["processor"] == name) or "-"
            parts = []
            for t, p in snap["assignments"][name]:
                known = lag.get(f"{t}[{p}]")
                parts.append(f"{t}[{p}]" + (f" ({known['lag']})" if known and known["processor"] == name else ""))
            return " ".join(parts) or "[yellow]none[/]"

        for name in sorted({*snap["assignments"], *snap["processors"]}):
            status = snap["processors"].get(name, {})
            ms = status.get("batch_ms")
            groups.add_row(name, held_with_lag(name),
                           f"{ms['p50']}/{ms['max']}" if ms else "-", figure(status.get("readings")))
        if not snap["assignments"]:
            groups.add_row("-", "no partition events (a transport without partitions, or none yet)", "-", "-")
        events = Table(title=f"rebalances ({snap['rebalances']})", expand=False)
        for col in ("at", "processor", "kind", "partitions"):
            events.add_column(col)
        for e in reversed(snap["latest_rebalances"]):
            events.add_row(f"{e['at']:.1f}", e["source"], e["kind"].removeprefix("partitions_"),
                           " ".join(f"{t}[{p}]" for t, p in e["partitions"]))
        return Group(plant, groups, events)

    def report(self) -> dict[str, Any]:
        if not hasattr(self, "polls"):  # never started
            return {}
        return {**self.snapshot(), "polls": self.polls}
