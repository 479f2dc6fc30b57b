"""``pasta.monitor``: a live view of the plant for a person.

It keeps, from the plant's messages: each machine's state (from its beats and the commands it
got), blade and last beat; stock levels; the latest alerts and chaos events; message rates per
topic. The leader and its epoch are read from the lease backend (``tactics.leader``) every
``refresh`` — the same place the schedulers campaign — because a component cannot implement the
``forge_leadership_changed`` hook and the schedulers' own messages say nothing about the lease.
Every ``grants_every`` it reads the lease's grant history (``LeaseBackend.grants``) and reports
the epochs ever granted as ``granted_epochs``; epochs only announced on ``forge/leader/+``
(a leader elected after the last read) as ``announced_epochs``. ``epoch_checks`` compares the
machines' accepted epochs with them.

With ``render: auto`` it draws a ``rich`` Live table only when stdout is a terminal and the
clock is real (``forge run examples/pasta_plant`` in a terminal); under ``--simulate`` or in
tests it only keeps state. ``report()`` is the final snapshot.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from typing import Any

from forge_core import Check, Component, Envelope, Subscribes
from forge_core.tactics import LeaseBackendUnavailable
from pasta_plant.ledger import ledger
from pasta_plant.settings import MonitorParams

TOPICS = ("heartbeats", "productionPlan/#", "updateManager/#", "sorting/#", "storage/#", "experiment",
          "forge/deadletter/#", "forge/leader/+")


class Monitor(Component):
    Params = MonitorParams
    subscribes = tuple(Subscribes((), topic=pattern, shared=False) for pattern in TOPICS)
    params: MonitorParams

    async def start(self) -> None:
        self.machines: dict[int, dict[str, Any]] = {}
        self.leader: dict[str, Any] | None = None
        self.failovers = 0
        self.levels: dict[str, float] = {}
        self.fresh_amount: int | None = None
        self.alerts: deque[dict[str, Any]] = deque(maxlen=self.params.keep_events)
        self.chaos: deque[dict[str, Any]] = deque(maxlen=self.params.keep_events)
        self.counts: Counter[str] = Counter()
        self.alert_count = 0
        self.swaps = 0
        self.assigns = 0
        self.dead_letters = 0
        self._window: deque[tuple[float, str]] = deque()
        #: epochs ever granted on the lease (its backend's history); epochs leaders announced
        self.granted: set[int] = set()
        self.announced: set[int] = set()
        self._newest_granted = -1  # the highest epoch read from the grant history so far
        self.grants_read = 0
        self.grants_truncated = False
        for pattern in TOPICS:
            await self.ctx.subscribe(pattern, self.on_message, shared=False)
        self.live = None
        render = self.params.render
        real = not getattr(self.ctx.clock, "is_virtual", False)
        if render == "always" or (render == "auto" and real and sys.stdout.isatty()):
            from rich.live import Live

            self.live = Live(self.view(), auto_refresh=False, transient=False)
            self.live.start()
        if self.live is not None:  # redraws only matter to a person watching; the state is message-driven
            self.ctx.every(self.params.refresh, self.tick, name="refresh", initial_delay=0)
        self.ctx.every(self.params.grants_every, self.read_grants, name="grants", initial_delay=0)

    async def read_grants(self) -> None:
        """The lease's grant history (report() is synchronous, so it is read ahead, not at the end)."""
        newest = self._newest_granted
        try:  # only the epochs granted since the last read: a read costs the new grants, not the history
            grants = await self.ctx.tactics.lease_backend().grants(self.params.lease, after=max(newest, 0))
        except (LeaseBackendUnavailable, RuntimeError) as exc:  # unreachable, or a runtime without tactics
            self.ctx.log.info("grant history of %r not read: %s", self.params.lease, exc)
            return
        self.grants_read += 1
        if grants:
            # Epochs rise by one per grant: a gap between the last epoch read and the oldest one kept
            # is history the backend forgot (more than GRANT_HISTORY grants between two reads).
            if grants[0].epoch > max(newest, 0) + 1:
                self.grants_truncated = True
            self.granted.update(g.epoch for g in grants)
            self._newest_granted = grants[-1].epoch

    async def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # -- state -----------------------------------------------------------------------------
    def on_message(self, envelope: Envelope) -> None:
        now = self.ctx.clock.time()
        self.counts[envelope.topic] += 1
        self._window.append((now, envelope.topic))
        self._trim(now)
        p = envelope.payload if isinstance(envelope.payload, dict) else {}
        kind = envelope.type
        if kind == "sched.machine_heartbeat":
            m = self._machine(p["machineId"])
            m["last_beat"] = now
            m["blade"] = p.get("bladeType")
            m["state"] = "WORKING" if p.get("bladeType") else "WAITING_FOR_ASSIGNMENT"
        elif kind == "sched.assign_blade":
            self.assigns += 1
            self._machine(p["machineId"])["commanded"] = f"assign {p['bladeType']}"
        elif kind == "sched.swap_blade":
            self._machine(p["machineId"])["commanded"] = f"swap to {p['bladeType']}"
        elif kind == "sched.blade_swapped":
            self.swaps += 1
            m = self._machine(p["machineId"])
            m["blade"] = p.get("bladeType", m.get("blade"))
        elif kind == "pasta.kill_machine":
            self._machine(p["machineId"])["state"] = "RECOVERY"
        elif kind == "mms.storage_levels":
            self.levels = {k: p[k] for k in ("aFresh", "aDry", "bFresh", "bDry")}
        elif kind == "sched.storage_alert":
            self.alert_count += 1
            self.alerts.append({"at": round(now, 3), **{k: p[k] for k in ("aFresh", "aDry", "bFresh", "bDry")}})
        elif kind == "sched.fresh_amount_changed":
            self.fresh_amount = p["freshAmount"]
        elif kind in ("pasta.killing_machine", "pasta.killing_scheduler"):
            self.chaos.append({"at": round(now, 3), **p})
            if kind == "pasta.killing_machine":
                self._machine(p["machineId"])["state"] = "KILLED"
        elif kind == "forge.deadletter":
            self.dead_letters += 1
        elif kind == "forge.leadership" and p.get("lease") == self.params.lease and p.get("leading"):
            if self.leader is not None and p["epoch"] != self.leader["epoch"]:
                self.failovers += 1
            self.announced.add(int(p["epoch"]))
            self.leader = {"holder": p["holder"], "epoch": p["epoch"], "since": round(now, 3)}

    def _machine(self, machine_id: int) -> dict[str, Any]:
        return self.machines.setdefault(int(machine_id), {"state": "?", "blade": None, "last_beat": None,
                                                           "commanded": None})

    def _trim(self, now: float) -> None:
        window = self.params.rate_window
        while self._window and self._window[0][0] < now - window:
            self._window.popleft()

    async def tick(self) -> None:
        self._trim(self.ctx.clock.time())
        if self.live is not None:
            self.live.update(self.view(), refresh=True)

    def rates(self) -> dict[str, float]:
        self._trim(self.ctx.clock.time())
        window = self.params.rate_window
        return {topic: round(n / window, 2) for topic, n in sorted(Counter(t for _, t in self._window).items())}

    # -- views -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        now = self.ctx.clock.time()
        return {
            "machines": {i: {**m, "last_beat_ago": None if m["last_beat"] is None else round(now - m["last_beat"], 1)}
                         for i, m in sorted(self.machines.items())},
            "leader": self.leader, "leader_changes": self.failovers, "levels": self.levels,
            "fresh_amount": self.fresh_amount, "alerts": self.alert_count, "latest_alerts": list(self.alerts)[-3:],
            "assigns": self.assigns, "swaps": self.swaps, "chaos_events": list(self.chaos)[-3:],
            "dead_letters": self.dead_letters, "rates_per_s": self.rates(),
        }

    def view(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        snap = self.snapshot()
        machines = Table(title="machines", expand=False)
        for col in ("id", "state", "blade", "last beat", "last command"):
            machines.add_column(col)
        for i, m in snap["machines"].items():
            colour = {"WORKING": "green", "RECOVERY": "yellow", "KILLED": "red"}.get(m["state"], "white")
            ago = "-" if m["last_beat_ago"] is None else f"{m['last_beat_ago']} s ago"
            machines.add_row(str(i), f"[{colour}]{m['state']}[/]", m["blade"] or "-", ago, m["commanded"] or "-")
        plant = Table(title="plant", show_header=False)
        leader = snap["leader"]
        plant.add_row("leader", f"{leader['holder']} (epoch {leader['epoch']})" if leader else "[red]none[/]")
        plant.add_row("stock %", "  ".join(f"{k} {v:.0f}" for k, v in snap["levels"].items()) or "-")
        plant.add_row("freshAmount", str(snap["fresh_amount"] if snap["fresh_amount"] is not None else "-"))
        plant.add_row("alerts / swaps", f"{snap['alerts']} / {snap['swaps']}")
        plant.add_row("chaos", "; ".join(e["title"] + " " + str(e.get("machineId", e.get("scheduler")))
                                         for e in snap["chaos_events"]) or "-")
        plant.add_row("msg/s", "  ".join(f"{t} {r}" for t, r in snap["rates_per_s"].items()) or "-")
        return Group(machines, plant)

    def report(self) -> dict[str, Any]:
        return {**self.snapshot(), "lease": self.params.lease, "granted_epochs": sorted(self.granted),
                "announced_epochs": sorted(self.announced - self.granted), "grant_history_reads": self.grants_read,
                "grant_history_truncated": self.grants_truncated}

    def checks(self) -> list[Check]:
        """Over every machine, killed ones included (their own checks die with them)."""
        records = ledger(self.ctx).machines.values()
        doubles = [d for r in records for d in r.double_assigns]
        stale = sum(r.rejected_stale for r in records)
        bad = [r.machine_id for r in records if not r.epochs_monotonic()]
        return [
            Check("fleet: no machine assigned twice without a swap", not doubles,
                  f"{len(doubles)} double assignment(s)" + (f", first: {doubles[0][1]}" if doubles else "")),
            Check("fleet: no command with a stale epoch applied", not bad,
                  f"{stale} stale command(s) rejected" + (f"; epochs went back on machines {bad}" if bad else "")),
        ]
