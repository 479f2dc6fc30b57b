"""``sched.blade_scheduler``: a blade scheduler for cutting machines with two blade types, active and shadow.

Run it with ``replicas: 2``. Every replica hears every heartbeat, death report, storage alert and
every command on the bus (``shared=False``), so the shadow's machine table is as warm as the
leader's. Only the holder of the ``scheduler`` lease sends commands, each through
``ctx.publish_fenced`` *and* with ``"epoch"`` in the payload (machines speak plain JSON), so a
deposed leader's late command is rejected by the machines (signed with ``command_secret``: a forger's too).

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

This module wires the scheduler to the bus, the lease and the state store; the decisions live in
:mod:`forge_sched.blades` (the machine table and balancing, the handover state, storage alerts).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from forge_core import Check, Component, Envelope, Publishes, Subscribes, epoch_of
from forge_core.tactics import NotLeader, StaleEpoch

from forge_sched.blades import handover, storage
from forge_sched.blades.handover import STATE_KEY
from forge_sched.blades.table import Machine, MachineTable
from forge_sched.blades.terms import Terms
from forge_sched.settings import BladeSchedulerParams

#: The message types this component speaks (schemas in ``forge_sched/schemas``).
HEARTBEAT = "sched.machine_heartbeat"
ASSIGN_BLADE = "sched.assign_blade"
SWAP_BLADE = "sched.swap_blade"
BLADE_SWAPPED = "sched.blade_swapped"
CHANGE_FRESH_AMOUNT = "sched.change_fresh_amount"
FRESH_AMOUNT_CHANGED = "sched.fresh_amount_changed"
STORAGE_ALERT = "sched.storage_alert"

__all__ = ["ASSIGN_BLADE", "BLADE_SWAPPED", "CHANGE_FRESH_AMOUNT", "FRESH_AMOUNT_CHANGED", "HEARTBEAT",
           "STORAGE_ALERT", "SWAP_BLADE", "BladeScheduler", "Machine"]


class BladeScheduler(Component):
    """Discover cutting machines, assign blades A/B balanced, swap on failure and on storage alerts."""

    Params = BladeSchedulerParams
    publishes = (Publishes(ASSIGN_BLADE, param="topics.assign", key="machineId"),
                 Publishes(SWAP_BLADE, param="topics.swap", key="machineId"),
                 Publishes(CHANGE_FRESH_AMOUNT, param="topics.change_fresh"),
                 Publishes("forge.leadership", topic="forge/leader/{lease}", key="lease"))
    subscribes = (Subscribes(HEARTBEAT, param="topics.heartbeats", shared=False),
                  Subscribes(BLADE_SWAPPED, param="topics.swapped", shared=False),
                  Subscribes(FRESH_AMOUNT_CHANGED, param="topics.fresh_changed", shared=False),
                  Subscribes(STORAGE_ALERT, param="topics.alert", shared=False),
                  Subscribes("forge.status", param="topics.status", shared=False),
                  Subscribes("forge.death", param="topics.death", shared=False),
                  # its own commands, observed: a shadow follows what the leader sent
                  Subscribes(ASSIGN_BLADE, param="topics.assign", shared=False),
                  Subscribes(SWAP_BLADE, param="topics.swap", shared=False),
                  Subscribes(CHANGE_FRESH_AMOUNT, param="topics.change_fresh", shared=False))
    params: BladeSchedulerParams

    async def start(self) -> None:
        p = self.params
        self.targets = p.targets.model_dump()
        self.fresh_amount = p.fresh_amount  # state from here on: storage alerts change it
        self.machine_sources = re.compile(p.machine_sources)
        self.topics = p.topics

        self.table = MachineTable()
        # The table's own containers under short names: the heartbeat handler (the hot path) reads
        # them without an indirection, and reports, tests and benchmarks read them too.
        self.machines: dict[int, Machine] = self.table.machines
        self.counts: dict[str, int] = self.table.counts
        self.waiting: set[int] = self.table.waiting
        self.cooldown_until: dict[str, float] = {}
        #: Messages handled per kind: the scheduler's "offsets" (the bus has none to commit).
        self.offsets = {"heartbeats": 0, "alerts": 0, "deaths": 0, "confirmations": 0}
        self.last_alert_id: str | None = None
        self.started_at = self.ctx.clock.time()
        self.ready_epoch: int | None = None
        self.newest_epoch_seen = -1
        self.terms = Terms()  # this life's terms as leader: a bare `leading` in two reports is two moments
        # report / checks (cheap counters)
        self.stats = {"assignments": 0, "assignment_retries": 0, "swaps": 0, "swaps_confirmed": 0,
                      "fresh_changes": 0, "elections": 0, "depositions": 0, "removed": 0, "recoveries": 0,
                      "saves": 0, "stale_saves": 0, "alerts_ignored": 0, "resumed_machines": 0,
                      "state_records_rejected": 0}
        self.sent_while_not_leader = 0
        self.ctx.fence.keys.update(p.command_keys())  # publish_fenced signs with them, on_command_seen checks

        self.dedup = self.ctx.tactics.deduplicator(window=p.dedup_window)
        self.store = self.ctx.tactics.state_store("blade_scheduler")
        # made before subscribing: a broker may deliver a backlog while start() awaits (start_order)
        self.elector = self.ctx.elector(p.lease, on_elected=self.on_elected, on_deposed=self.on_deposed)
        self._assigning = False
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

        self.ctx.every(p.assign_interval, self.tick, name="assign")
        # the end of the discovery phase is a moment to assign at, not only the next tick
        self.ctx.spawn(self._after_discovery(), name="discovery")
        self.ctx.every(self.params.health_check_interval, self.health_check, name="health_check")
        self.ctx.every(p.persist_interval, self._persist_periodically, name="persist")

    async def _after_discovery(self) -> None:
        await self.ctx.clock.sleep(max(0.0, self.started_at + self.params.discovery_time - self.ctx.clock.time()))
        self._assign_soon()

    # -- leadership --------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """Leads *and* has loaded its predecessor's state for this epoch."""
        return self.ready_epoch is not None and self.elector.is_leader and self.elector.epoch == self.ready_epoch

    @property
    def discovering(self) -> bool:
        """Still in the discovery phase: has not heard heartbeats for ``discovery_time`` yet."""
        return self.ctx.clock.time() < self.started_at + self.params.discovery_time

    async def on_elected(self, epoch: int) -> None:
        self.stats["elections"] += 1
        saved = await self.store.load(STATE_KEY)
        if saved:
            self._merge(saved)
        self.ready_epoch = epoch
        self.terms.begin(epoch, self.ctx.clock.time(), self._machine_commands())
        self._assign_soon()
        self.ctx.log.info("leading with epoch %d; %d machines known (A %d, B %d)", epoch, len(self.machines),
                          self.counts["A"], self.counts["B"])

    async def on_deposed(self, epoch: int) -> None:
        self.stats["depositions"] += 1
        self.ready_epoch = None
        self.terms.end(self._term_end(), self._machine_commands())

    def _term_end(self) -> float:
        """Now, or when the lease lapsed if that was earlier: a starved loop notices a lapse late, but
        the term (``leading``, and the fence on every command) ended at the lapse."""
        return min(self.ctx.clock.time(), self.elector.valid_until_time)

    def _machine_commands(self) -> int:
        return self.stats["assignments"] + self.stats["swaps"]

    # -- heartbeats (the hot path: O(1)) -----------------------------------------------------
    def on_heartbeat(self, envelope: Envelope) -> None:
        payload = envelope.payload
        mid = payload["machineId"]
        self.offsets["heartbeats"] += 1
        if self.dedup.seen(str(mid), HEARTBEAT):
            return
        event = self.table.beat(mid, payload.get("bladeType"), self.ctx.clock.time(), self.params.confirm_timeout)
        if event is None:
            return
        if event == "recovery":
            self.stats["recoveries"] += 1
        elif event == "retry":
            self.stats["assignment_retries"] += 1
        self._assign_soon()

    def _remove(self, mid: int, why: str) -> Machine | None:
        m = self.table.remove(mid)
        if m is None:
            return None
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
            self.table.set_blade(m, blade, confirmed=True)
        else:
            m.confirmed, m.pending = True, None

    def on_fresh_changed(self, envelope: Envelope) -> None:
        self.fresh_amount = int(envelope.payload["freshAmount"])

    def on_command_seen(self, envelope: Envelope) -> None:
        """A command from another scheduler (the leader, seen by the shadow): mirror its effect."""
        if envelope.source == self.name:
            return
        epoch = epoch_of(envelope)
        if epoch is None or epoch < self.newest_epoch_seen or not self.ctx.fence.verify_payload(
                epoch, self.elector.name, envelope.payload):
            return  # unfenced, stale or not signed by the leader (with a plant key): the machines drop it too
        self.newest_epoch_seen = epoch
        payload = envelope.payload
        if envelope.type == CHANGE_FRESH_AMOUNT:
            change = int(payload["change"])
            self.fresh_amount = storage.clamp(self.fresh_amount + change, self.params.fresh_amount_max)
            self.cooldown_until["fresh"] = self.ctx.clock.time() + self.params.alert_cooldown
            return
        self.table.command_seen(payload["machineId"], payload["bladeType"],
                                "assign" if envelope.type == ASSIGN_BLADE else "swap", self.ctx.clock.time())

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
        removed = self._remove(int(match.group(1)), f"reported dead as {source}") is not None
        if removed and (sending := self._rebalance()) is not None:
            await sending

    # -- periodic work -----------------------------------------------------------------------
    def tick(self) -> Awaitable[None] | None:
        """Time out unconfirmed commands; the leader assigns blades to waiting machines (a safety net:
        assignment normally happens as soon as a machine is seen waiting), returned to await (a timer's call)."""
        now = self.ctx.clock.time()
        self.stats["assignment_retries"] += self.table.expire_unconfirmed(now, self.params.confirm_timeout)
        return self.assign() if self.leading and not self.discovering and self.waiting else None

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
        if not self.leading or self.discovering or not self.waiting:
            return
        plan = self.table.plan_assignments(self.ctx.clock.time())
        if not plan:
            return
        if not await self.persist():
            return
        for m, blade in plan:
            if not await self._command(self.topics.assign, ASSIGN_BLADE,
                                       {"title": "AssignBlade", "machineId": m.id, "bladeType": blade}):
                return
            self.stats["assignments"] += 1

    def health_check(self) -> Awaitable[None] | None:
        """Remove machines silent for ``machine_timeout``; then rebalance blades (swaps returned to await)."""
        now = self.ctx.clock.time()
        silent = [mid for mid, m in self.machines.items() if now - m.last_beat > self.params.machine_timeout]
        for mid in silent:
            self._remove(mid, f"silent for {now - self.machines[mid].last_beat:.1f}s")
        return self._rebalance()

    def _rebalance(self) -> Awaitable[None] | None:
        """While one type outnumbers the other by more than one, swap a machine over: the leader's sending."""
        swaps = self.table.plan_rebalance(self.ctx.clock.time()) if self.leading and not self.discovering else None
        return self._send_swaps(swaps) if swaps else None

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
        now = self.ctx.clock.time()
        reaction = storage.react(envelope.payload, self.table, targets=self.targets,
                                 threshold=self.params.threshold, fresh_amount=self.fresh_amount,
                                 fresh_max=self.params.fresh_amount_max,
                                 cooldown_until=self.cooldown_until, now=now)
        if reaction is None:
            self.stats["alerts_ignored"] += 1
            return
        self.cooldown_until[reaction.kind] = now + self.params.alert_cooldown
        if reaction.machine is None:
            self.fresh_amount = reaction.fresh_amount
            if await self.persist() and await self._command(
                    self.topics.change_fresh, CHANGE_FRESH_AMOUNT, {"title": "ChangeFreshAmount",
                                                                    "change": reaction.change}):
                self.stats["fresh_changes"] += 1
        else:
            self.table.plan_swap(reaction.machine, reaction.blade, now)
            await self._send_swaps([(reaction.machine, reaction.blade)])

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
        return handover.snapshot(self.table, fresh_amount=self.fresh_amount, cooldown_until=self.cooldown_until,
                                 offsets=self.offsets, last_alert_id=self.last_alert_id)

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

    def _merge(self, saved: Any) -> None:
        """Take the predecessor's state; what this replica heard later (newer beats) wins per field.
        A bad record is dead-lettered (``invalid``, with its path and why) and skipped."""
        rejected: list[tuple[str, str]] = []
        self.fresh_amount, self.last_alert_id, resumed = handover.merge(
            saved, self.table, fresh_amount=self.fresh_amount, cooldown_until=self.cooldown_until,
            offsets=self.offsets, last_alert_id=self.last_alert_id, rejected=rejected)
        self.stats["resumed_machines"] += resumed
        self.stats["state_records_rejected"] += len(rejected)
        for letter in handover.rejected_letters(rejected, self.name, self.ctx.clock.time()):
            self.ctx.bus.dead_letters.put(letter)

    # -- reporting ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"leading": self.leading, "machines": len(getattr(self, "machines", {})),
                "blades": dict(getattr(self, "counts", {}))}

    def report(self) -> dict[str, Any]:
        if not self.leading:
            self.terms.end(self._term_end(), self._machine_commands())  # lapsed, no on_deposed yet
        return {**self.stats, "leading": self.leading, "epoch": self.elector.epoch,
                "terms": self.terms.view(self._machine_commands(), self.ctx.clock.time()),
                "machines": len(self.machines),
                "blades": dict(self.counts), "fresh_amount": self.fresh_amount, "offsets": dict(self.offsets),
                "heartbeats_deduplicated": self.dedup.dropped,
                "mirrored_reassignments": self.table.mirrored_reassignments}

    def checks(self) -> list[Check]:
        doubles = sorted(set(self.table.double_assignments))
        return [
            Check("no machine assigned twice without a swap or recovery in between", not doubles,
                  f"machines {doubles}" if doubles else f"{self.stats['assignments']} assignments sent"),
            Check("no command sent while not leading", self.sent_while_not_leader == 0,
                  f"{self.sent_while_not_leader} commands sent without the lease"),
        ]
