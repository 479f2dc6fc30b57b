"""``sched.blade_scheduler``: a blade scheduler for cutting machines with two blade types, active and shadow.

Run it with ``replicas: 2``. Every replica hears every heartbeat, death report, storage alert and
every command on the bus (``shared=False``), so the shadow's machine table is as warm as the
leader's. Only the holder of the ``scheduler`` lease sends commands, each through
``ctx.publish_fenced`` *and* with ``"epoch"`` in the payload (machines speak plain JSON), so a
deposed leader's late command is rejected by the machines.

What it guarantees:

* no machine gets a second AssignBlade unless it went through a swap or a recovery (a blade-less
  heartbeat after a blade-ful one, or removal and rediscovery) in between, or the first one was
  never confirmed within ``confirm_timeout`` (a *retry*, counted apart);
* blade counts A/B differ by at most one after each health check (when enough machines live);
* state (machines, fresh amount, cooldowns, offsets) is saved with fenced writes *before* each
  batch of commands and every ``persist_interval``, and the successor merges it into its own view
  in ``on_elected``: it does not re-assign what its predecessor assigned.

Per-heartbeat work is O(1) (a dedup check and dict updates); balance is kept as two counters,
and whole-table scans happen only on the health check.
"""

from __future__ import annotations

import re
from typing import Any

from forge_core import Check, Component, Envelope, epoch_of
from forge_core.tactics import NotLeader, StaleEpoch

from forge_sched.settings import BladeSchedulerParams

#: The message types this component speaks (schemas in ``forge_sched/schemas``).
HEARTBEAT = "sched.machine_heartbeat"
ASSIGN_BLADE = "sched.assign_blade"
SWAP_BLADE = "sched.swap_blade"
BLADE_SWAPPED = "sched.blade_swapped"
CHANGE_FRESH_AMOUNT = "sched.change_fresh_amount"
FRESH_AMOUNT_CHANGED = "sched.fresh_amount_changed"
STORAGE_ALERT = "sched.storage_alert"

BLADES = ("A", "B")
STATE_KEY = "state"


def _other(blade: str) -> str:
    return "B" if blade == "A" else "A"


class Machine:
    """What the scheduler knows of one cutting machine."""

    __slots__ = ("assigned", "blade", "confirmed", "id", "last_beat", "pending", "pending_since")

    def __init__(self, machine_id: int, last_beat: float) -> None:
        self.id = machine_id
        self.last_beat = last_beat
        #: The blade it has or was told to take (None: WAITING).
        self.blade: str | None = None
        #: True once a heartbeat showed ``blade``; False while an assign/swap is unconfirmed.
        self.confirmed = False
        #: "assign" / "swap" while a command is unconfirmed, with when it was sent.
        self.pending: str | None = None
        self.pending_since = 0.0
        #: An AssignBlade went to it and no swap/recovery/retry has happened since (for the check).
        self.assigned = False

    @property
    def state(self) -> str:
        if self.pending == "swap":
            return "SWAPPING"
        if self.blade is None:
            return "WAITING"
        return "WORKING" if self.confirmed else "ASSIGNED"

    def to_json(self) -> dict[str, Any]:
        return {"blade": self.blade, "last_beat": self.last_beat, "state": self.state, "confirmed": self.confirmed,
                "pending": self.pending, "pending_since": self.pending_since, "assigned": self.assigned}

    @classmethod
    def from_json(cls, machine_id: int, doc: dict[str, Any]) -> Machine:
        m = cls(machine_id, float(doc.get("last_beat", 0.0)))
        m.blade = doc.get("blade")
        m.confirmed = bool(doc.get("confirmed", False))
        m.pending = doc.get("pending")
        m.pending_since = float(doc.get("pending_since", 0.0))
        m.assigned = bool(doc.get("assigned", False))
        return m


class BladeScheduler(Component):
    """Discover cutting machines, assign blades A/B balanced, swap on failure and on storage alerts."""

    Params = BladeSchedulerParams
    params: BladeSchedulerParams

    async def start(self) -> None:
        p = self.params
        self.discovery_time = p.discovery_time
        self.health_check_interval = p.health_check_interval
        self.machine_timeout = p.machine_timeout
        self.confirm_timeout = p.confirm_timeout
        self.alert_cooldown = p.alert_cooldown
        self.targets = p.targets.model_dump()
        self.threshold = p.threshold
        self.fresh_max = p.fresh_amount_max
        self.fresh_amount = p.fresh_amount
        self.machine_sources = re.compile(p.machine_sources)
        self.topics = p.topics

        self.machines: dict[int, Machine] = {}
        self.counts = {"A": 0, "B": 0}
        self.waiting: set[int] = set()
        self.cooldown_until: dict[str, float] = {}
        #: Messages handled per kind: the scheduler's "offsets" (the bus has none to commit).
        self.offsets = {"heartbeats": 0, "alerts": 0, "deaths": 0, "confirmations": 0}
        self.last_alert_id: str | None = None
        self.started_at = self.ctx.clock.time()
        self.ready_epoch: int | None = None
        self.newest_epoch_seen = -1
        # report / checks (cheap counters)
        self.stats = {"assignments": 0, "assignment_retries": 0, "swaps": 0, "swaps_confirmed": 0,
                      "fresh_changes": 0, "elections": 0, "depositions": 0, "removed": 0, "recoveries": 0,
                      "saves": 0, "stale_saves": 0, "alerts_ignored": 0, "resumed_machines": 0}
        self.double_assignments: list[int] = []
        self.sent_while_not_leader = 0

        self.dedup = self.ctx.tactics.deduplicator(window=p.dedup_window)
        self.store = self.ctx.tactics.state_store("blade_scheduler")
        t = self.topics
        await self.ctx.subscribe(t.heartbeats, self.on_heartbeat, types=[HEARTBEAT], shared=False)
        await self.ctx.subscribe(t.swapped, self.on_blade_swapped, types=[BLADE_SWAPPED], shared=False)
        await self.ctx.subscribe(t.fresh_changed, self.on_fresh_changed, types=[FRESH_AMOUNT_CHANGED], shared=False)
        await self.ctx.subscribe(t.alert, self.on_storage_alert, types=[STORAGE_ALERT], shared=False)
        await self.ctx.subscribe(t.status, self.on_status, types=["forge.status"], shared=False)
        await self.ctx.subscribe(t.death, self.on_death, types=["forge.death"], shared=False)
        # The shadow watches the leader's commands go by, so it knows them even if a save was lost.
        await self.ctx.subscribe(t.assign, self.on_command_seen, types=[ASSIGN_BLADE], shared=False)
        await self.ctx.subscribe(t.swap, self.on_command_seen, types=[SWAP_BLADE], shared=False)
        await self.ctx.subscribe(t.change_fresh, self.on_command_seen, types=[CHANGE_FRESH_AMOUNT], shared=False)

        self.elector = self.ctx.elector(p.lease, on_elected=self.on_elected, on_deposed=self.on_deposed)
        self._assigning = False
        self.ctx.every(p.assign_interval, self.tick, name="assign")
        # the end of the discovery phase is a moment to assign at, not only the next tick
        self.ctx.spawn(self._after_discovery(), name="discovery")
        self.ctx.every(self.health_check_interval, self.health_check, name="health_check")
        self.ctx.every(p.persist_interval, self._persist_periodically, name="persist")

    async def _after_discovery(self) -> None:
        await self.ctx.clock.sleep(max(0.0, self.started_at + self.discovery_time - self.ctx.clock.time()))
        self._assign_soon()

    # -- leadership --------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """Leads *and* has loaded its predecessor's state for this epoch."""
        return self.ready_epoch is not None and self.elector.is_leader and self.elector.epoch == self.ready_epoch

    @property
    def discovering(self) -> bool:
        """Still in the discovery phase: has not heard heartbeats for ``discovery_time`` yet."""
        return self.ctx.clock.time() < self.started_at + self.discovery_time

    async def on_elected(self, epoch: int) -> None:
        self.stats["elections"] += 1
        saved = await self.store.load(STATE_KEY)
        if saved:
            self._merge(saved)
        self.ready_epoch = epoch
        self._assign_soon()
        self.ctx.log.info("leading with epoch %d; %d machines known (A %d, B %d)", epoch, len(self.machines),
                          self.counts["A"], self.counts["B"])

    async def on_deposed(self, epoch: int) -> None:
        self.stats["depositions"] += 1
        self.ready_epoch = None

    # -- heartbeats (the hot path: O(1)) -----------------------------------------------------
    def on_heartbeat(self, envelope: Envelope) -> None:
        payload = envelope.payload
        mid = payload["machineId"]
        self.offsets["heartbeats"] += 1
        if self.dedup.seen(str(mid), HEARTBEAT):
            return
        now = self.ctx.clock.time()
        blade = payload.get("bladeType")
        m = self.machines.get(mid)
        if m is None:
            m = self.machines[mid] = Machine(mid, now)
            if blade is None:
                self.waiting.add(mid)
                self._assign_soon()
            else:
                self._set_blade(m, blade, confirmed=True)
            return
        m.last_beat = now
        if blade is not None:
            if blade == m.blade:
                if not m.confirmed:
                    m.confirmed, m.pending = True, None
                return
            if m.pending is not None and now - m.pending_since < self.confirm_timeout:
                return  # still swapping (or the assignment is on its way): the beat predates it
            self._set_blade(m, blade, confirmed=True)
            self.waiting.discard(mid)
            return
        # no blade: WAITING (or mid-swap, or the assignment is on its way)
        if m.blade is None:
            self.waiting.add(mid)
            self._assign_soon()
            return
        if m.pending is not None and now - m.pending_since < self.confirm_timeout:
            return
        if m.confirmed:
            self.stats["recoveries"] += 1  # it had a blade and lost it: went through RECOVERY
        elif m.pending == "assign":
            self.stats["assignment_retries"] += 1
        self._set_blade(m, None, confirmed=False)
        m.assigned = False
        self.waiting.add(mid)
        self._assign_soon()

    def _set_blade(self, m: Machine, blade: str | None, *, confirmed: bool) -> None:
        if m.blade is not None:
            self.counts[m.blade] -= 1
        if blade is not None:
            self.counts[blade] += 1
        m.blade = blade
        m.confirmed = confirmed
        m.pending = None

    def _remove(self, mid: int, why: str) -> Machine | None:
        m = self.machines.pop(mid, None)
        if m is None:
            return None
        if m.blade is not None:
            self.counts[m.blade] -= 1
        self.waiting.discard(mid)
        self.stats["removed"] += 1
        self.ctx.log.info("machine %d removed (%s); blades A %d, B %d", mid, why, self.counts["A"], self.counts["B"])
        return m

    # -- confirmations and what others command --------------------------------------------
    def on_blade_swapped(self, envelope: Envelope) -> None:
        self.offsets["confirmations"] += 1
        m = self.machines.get(envelope.payload["machineId"])
        if m is None:
            return
        blade = envelope.payload.get("bladeType") or m.blade
        if m.pending == "swap":
            self.stats["swaps_confirmed"] += 1
        if blade != m.blade:
            self._set_blade(m, blade, confirmed=True)
        else:
            m.confirmed, m.pending = True, None

    def on_fresh_changed(self, envelope: Envelope) -> None:
        self.fresh_amount = int(envelope.payload["freshAmount"])

    def on_command_seen(self, envelope: Envelope) -> None:
        """A command from another scheduler (the leader, seen by the shadow): mirror its effect."""
        if envelope.source == self.name:
            return
        epoch = epoch_of(envelope)
        if epoch is None or epoch < self.newest_epoch_seen:
            return  # unfenced or stale: the machines drop it too
        self.newest_epoch_seen = epoch
        payload = envelope.payload
        if envelope.type == CHANGE_FRESH_AMOUNT:
            self.fresh_amount = self._clamp(self.fresh_amount + int(payload["change"]))
            self.cooldown_until["fresh"] = self.ctx.clock.time() + self.alert_cooldown
            return
        mid, blade = payload["machineId"], payload["bladeType"]
        now = self.ctx.clock.time()
        m = self.machines.get(mid)
        if m is None:
            m = self.machines[mid] = Machine(mid, now)
        if envelope.type == ASSIGN_BLADE:
            self._note_assignment(m)
            self._set_blade(m, blade, confirmed=False)
            m.pending, m.pending_since = "assign", now
        else:
            m.assigned = False
            self._set_blade(m, blade, confirmed=False)
            m.pending, m.pending_since = "swap", now
        self.waiting.discard(mid)

    def _note_assignment(self, m: Machine) -> None:
        if m.assigned:
            self.double_assignments.append(m.id)
        m.assigned = True

    # -- death reports -----------------------------------------------------------------------
    async def on_status(self, envelope: Envelope) -> None:
        if envelope.payload.get("status") == "DOWN":
            await self._dead(envelope.payload.get("source"))

    async def on_death(self, envelope: Envelope) -> None:
        await self._dead(envelope.payload.get("source"))

    async def _dead(self, source: Any) -> None:
        match = self.machine_sources.match(str(source))
        if match is None:
            return  # not a machine (a scheduler, a bridge, ...)
        self.offsets["deaths"] += 1
        if self._remove(int(match.group(1)), f"reported dead as {source}") is not None:
            await self._rebalance()

    # -- periodic work -----------------------------------------------------------------------
    async def tick(self) -> None:
        """Time out unconfirmed commands; the leader assigns blades to waiting machines (a safety
        net: assignment normally happens as soon as a machine is seen waiting)."""
        now = self.ctx.clock.time()
        for m in self.machines.values():
            if m.pending is not None and now - m.pending_since >= self.confirm_timeout and not m.confirmed:
                if m.pending == "assign":  # never confirmed: a retry is allowed
                    self.stats["assignment_retries"] += 1
                    m.assigned = False
                    self._set_blade(m, None, confirmed=False)
                    self.waiting.add(m.id)
                else:
                    m.pending = None  # the swap went unconfirmed: believe the heartbeats from now on
        await self.assign()

    def _assign_soon(self) -> None:
        """React to a waiting machine now instead of on the next tick (and wake no one idle)."""
        if self._assigning or not self.waiting or not self.leading or self.discovering:
            return
        self._assigning = True
        self.ctx.spawn(self._assign_task(), name="assign-now")

    async def _assign_task(self) -> None:
        try:
            await self.assign()
        finally:
            self._assigning = False

    async def assign(self) -> None:
        """The leader gives each waiting machine the blade that keeps A and B balanced."""
        now = self.ctx.clock.time()
        if not self.leading or self.discovering or not self.waiting:
            return
        plan: list[tuple[Machine, str]] = []
        for mid in sorted(self.waiting):
            m = self.machines.get(mid)
            if m is None or m.blade is not None:
                continue
            blade = "A" if self.counts["A"] <= self.counts["B"] else "B"
            self._note_assignment(m)
            self._set_blade(m, blade, confirmed=False)
            m.pending, m.pending_since = "assign", now
            plan.append((m, blade))
        self.waiting.clear()
        if not plan:
            return
        if not await self.persist():
            return
        for m, blade in plan:
            if not await self._command(self.topics.assign, ASSIGN_BLADE,
                                       {"title": "AssignBlade", "machineId": m.id, "bladeType": blade}):
                return
            self.stats["assignments"] += 1

    async def health_check(self) -> None:
        """Remove machines silent for ``machine_timeout``; then rebalance blades."""
        now = self.ctx.clock.time()
        silent = [mid for mid, m in self.machines.items() if now - m.last_beat > self.machine_timeout]
        for mid in silent:
            self._remove(mid, f"silent for {now - self.machines[mid].last_beat:.1f}s")
        await self._rebalance()

    async def _rebalance(self) -> None:
        """While one blade type outnumbers the other by more than one, swap a machine over."""
        if not self.leading or self.discovering:
            return
        swaps: list[tuple[Machine, str]] = []
        while True:
            high = "A" if self.counts["A"] > self.counts["B"] else "B"
            missing = _other(high)
            if self.counts[missing] >= self.counts[high] - 1:
                break
            m = self._swap_candidate(high)
            if m is None:
                break
            self._plan_swap(m, missing)
            swaps.append((m, missing))
        await self._send_swaps(swaps)

    def _swap_candidate(self, blade: str) -> Machine | None:
        """The machine with ``blade`` and the most recent heartbeat, not already mid-command."""
        best: Machine | None = None
        for m in self.machines.values():
            if m.blade == blade and m.pending is None and (best is None or m.last_beat > best.last_beat):
                best = m
        return best

    def _plan_swap(self, m: Machine, blade: str) -> None:
        m.assigned = False
        self._set_blade(m, blade, confirmed=False)
        m.pending, m.pending_since = "swap", self.ctx.clock.time()

    async def _send_swaps(self, swaps: list[tuple[Machine, str]]) -> None:
        if not swaps or not await self.persist():
            return
        for m, blade in swaps:
            if not await self._command(self.topics.swap, SWAP_BLADE,
                                       {"title": "SwapBlade", "machineId": m.id, "bladeType": blade}):
                return
            self.stats["swaps"] += 1

    # -- storage alerts ----------------------------------------------------------------------
    async def on_storage_alert(self, envelope: Envelope) -> None:
        """The category furthest from its target decides: fresh/dry → fresh amount, A/B → a swap."""
        self.offsets["alerts"] += 1
        if envelope.id == self.last_alert_id:
            return  # redelivered
        self.last_alert_id = envelope.id
        if not self.leading:
            return
        p = envelope.payload
        levels = {"fresh": (p["aFresh"] + p["bFresh"]) / 2, "dry": (p["aDry"] + p["bDry"]) / 2,
                  "A": (p["aFresh"] + p["aDry"]) / 2, "B": (p["bFresh"] + p["bDry"]) / 2}
        category = max(levels, key=lambda c: abs(levels[c] - self.targets[c]))
        off = levels[category] - self.targets[category]
        if abs(off) <= self.threshold:
            self.stats["alerts_ignored"] += 1
            return
        kind = "fresh" if category in ("fresh", "dry") else "blade"
        now = self.ctx.clock.time()
        if now < self.cooldown_until.get(kind, float("-inf")):
            self.stats["alerts_ignored"] += 1
            return
        if kind == "fresh":
            await self._change_fresh(category, off, now)
        else:
            await self._swap_toward(category if off < 0 else _other(category), now)

    async def _change_fresh(self, category: str, off: float, now: float) -> None:
        more_fresh = (off < 0) == (category == "fresh")
        step = 4 if abs(off) > 2 * self.threshold else 2
        change = step if more_fresh else -step
        if self._clamp(self.fresh_amount + change) == self.fresh_amount:
            self.stats["alerts_ignored"] += 1  # already at the limit
            return
        self.cooldown_until["fresh"] = now + self.alert_cooldown
        self.fresh_amount = self._clamp(self.fresh_amount + change)
        if not await self.persist():
            return
        if await self._command(self.topics.change_fresh, CHANGE_FRESH_AMOUNT,
                               {"title": "ChangeFreshAmount", "change": change}):
            self.stats["fresh_changes"] += 1

    async def _swap_toward(self, needed: str, now: float) -> None:
        other = _other(needed)
        if self.counts[needed] + 1 - (self.counts[other] - 1) > 1:
            self.stats["alerts_ignored"] += 1  # would unbalance beyond one
            return
        m = self._swap_candidate(other)
        if m is None:
            self.stats["alerts_ignored"] += 1
            return
        self.cooldown_until["blade"] = now + self.alert_cooldown
        self._plan_swap(m, needed)
        await self._send_swaps([(m, needed)])

    def _clamp(self, amount: int) -> int:
        return max(0, min(self.fresh_max, amount))

    # -- commands and persistence ------------------------------------------------------------
    async def _command(self, topic: str, type_: str, payload: dict[str, Any]) -> bool:
        """Send a fenced command (epoch in headers and payload); False if no longer leading."""
        if not self.leading:
            return False
        epoch = self.elector.epoch
        try:
            await self.ctx.publish_fenced(self.elector, topic, type_, {**payload, "epoch": epoch},
                                          key=str(payload.get("machineId", "")) or None)
        except NotLeader:
            self.ctx.log.warning("lost the lease before sending %s; not sent", type_)
            return False
        if not self.elector.is_leader:
            self.sent_while_not_leader += 1  # cannot happen: publish_fenced checks the lease first
        return True

    def snapshot(self) -> dict[str, Any]:
        """What the successor needs: machines, fresh amount, cooldowns, offsets."""
        return {"machines": {str(mid): m.to_json() for mid, m in self.machines.items()},
                "fresh_amount": self.fresh_amount, "cooldown_until": dict(self.cooldown_until),
                "offsets": dict(self.offsets), "last_alert_id": self.last_alert_id}

    async def persist(self) -> bool:
        """Fenced save of the state (leader only); False if deposed or superseded."""
        epoch = self.elector.epoch
        if not self.leading or epoch is None:
            return False
        try:
            await self.store.save(STATE_KEY, self.snapshot(), epoch=epoch)
        except StaleEpoch as exc:
            self.stats["stale_saves"] += 1
            self.ctx.log.warning("state not saved, a newer leader exists: %s", exc)
            self.ready_epoch = None
            return False
        self.stats["saves"] += 1
        return True

    async def _persist_periodically(self) -> None:
        await self.persist()

    def _merge(self, saved: dict[str, Any]) -> None:
        """Take the predecessor's state; what this replica heard later (newer beats) wins per field."""
        for key, doc in (saved.get("machines") or {}).items():
            mid = int(key)
            theirs = Machine.from_json(mid, doc)
            mine = self.machines.get(mid)
            if mine is None:
                self.machines[mid] = theirs
                if theirs.blade is not None:
                    self.counts[theirs.blade] += 1
                else:
                    self.waiting.add(mid)
                self.stats["resumed_machines"] += 1
                continue
            mine.last_beat = max(mine.last_beat, theirs.last_beat)
            mine.assigned = mine.assigned or theirs.assigned
            if mine.blade is None and theirs.blade is not None and not mine.confirmed:
                # assigned by the predecessor; this replica has not yet heard it confirmed
                self._set_blade(mine, theirs.blade, confirmed=theirs.confirmed)
                mine.pending, mine.pending_since = theirs.pending, theirs.pending_since
                self.waiting.discard(mid)
                self.stats["resumed_machines"] += 1
        self.fresh_amount = int(saved.get("fresh_amount", self.fresh_amount))
        for kind, until in (saved.get("cooldown_until") or {}).items():
            self.cooldown_until[kind] = max(until, self.cooldown_until.get(kind, float("-inf")))
        for kind, count in (saved.get("offsets") or {}).items():
            self.offsets[kind] = max(int(count), self.offsets.get(kind, 0))
        self.last_alert_id = self.last_alert_id or saved.get("last_alert_id")

    # -- reporting ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"leading": self.leading, "machines": len(getattr(self, "machines", {})),
                "blades": dict(getattr(self, "counts", {}))}

    def report(self) -> dict[str, Any]:
        return {**self.stats, "leading": self.leading, "machines": len(self.machines),
                "blades": dict(self.counts), "fresh_amount": self.fresh_amount, "offsets": dict(self.offsets),
                "heartbeats_deduplicated": self.dedup.dropped}

    def checks(self) -> list[Check]:
        doubles = sorted(set(self.double_assignments))
        return [
            Check("no machine assigned twice without a swap or recovery in between", not doubles,
                  f"machines {doubles}" if doubles else f"{self.stats['assignments']} assignments sent"),
            Check("no command sent while not leading", self.sent_while_not_leader == 0,
                  f"{self.sent_while_not_leader} commands sent without the lease"),
        ]
