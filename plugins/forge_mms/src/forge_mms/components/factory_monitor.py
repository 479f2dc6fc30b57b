"""``mms.factory_monitor``: factory heartbeats → UP/DEGRADED/DOWN, risk, and status reports to the PMS.

The wiring of the monitoring and maintenance parts, each in its own module:

* every beat (``mms.factory_heartbeat``) is read (:mod:`forge_mms.monitoring.beats`), kept in memory
  for the risk and error windows, counted by the fault detector
  (:mod:`forge_mms.monitoring.faults`, core's heartbeat status tactic) and, by the leader, written to
  ``heartbeats`` in batches (:mod:`forge_mms.storage.store`, pruned after ``retention``);
* every ``check_every`` s: silence verdicts, the risk strategy (tactic ``risk``) per factory, the
  preemptive drain, and the reports still pending;
* status changes → the failover and recovery managers → status reports through the
  ``status_reporter`` tactic (:mod:`forge_mms.maintenance.reports`).

Replicas (``replicas: 2``, or two components with the same ``lease``) all follow every beat, so a
successor knows every factory's state; only the one holding the lease (``ctx.elector``) reports,
publishes ``forge.status``/``mms.risk_changed``/``mms.failover_event`` and writes the tables. A new
leader reads the statuses the PMS last accepted from ``factory_status`` and reports only what differs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable
from typing import Any

from forge_core import Component, DeadLetter, Envelope, Publishes, Subscribes, dead_letters
from forge_core.tactics import LeaderElector, Status, StatusChange
from forge_core.transport import topic_level

from forge_mms.components.factory_monitor_checks import CheckTimer
from forge_mms.components.factory_monitor_rows import announce_pending, capacity_columns, status_row
from forge_mms.maintenance.capacity import CapacityQuery
from forge_mms.maintenance.failover import FailoverManager
from forge_mms.maintenance.recovery import RecoveryManager
from forge_mms.maintenance.reports import FAILOVER_EVENT, StatusReports
from forge_mms.monitoring.beats import Beat, BeatHistory, BeatRefused, BeatWindow, factory_of
from forge_mms.monitoring.faults import FaultDetector
from forge_mms.monitoring.starvation import StarvationGuard
from forge_mms.monitoring.unheard import UnheardFactories
from forge_mms.settings import FactoryMonitorParams
from forge_mms.storage.store import MonitorStore
from forge_mms.tactics.risk import Risk, RiskAssessment, RiskStrategy, RuleBasedRisk
from forge_mms.tactics.status_reporter import CAPACITY_QUERY, STATUS_REPORT, StatusReporter

__all__ = ["FORGE_STATUS", "RISK_CHANGED", "FactoryMonitor"]

FORGE_STATUS = "forge.status"
RISK_CHANGED = "mms.risk_changed"
_RANK = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}
_NUMBER = (int, float)  # isinstance with a tuple: `int | float` builds a union object on every beat (~3x the test)


class FactoryMonitor(Component):
    """Factory heartbeats → UP/DEGRADED/DOWN and risk; the leader reports changes to the PMS."""

    Params = FactoryMonitorParams
    params: FactoryMonitorParams
    publishes = (Publishes(FORGE_STATUS, param="status_topic", key="factory"),
                 Publishes(RISK_CHANGED, param="risk_topic", key="factory"),
                 Publishes(FAILOVER_EVENT, param="failover_topic", key="factory"),
                 # the status_reporter tactic's (use: bus; its default request topic: the tactic's settings)
                 Publishes(STATUS_REPORT, topic="mms/status_report", description="with tactics.status_reporter "
                           "use: bus, on its request_topic (default shown); the answers come back to the tactic"),
                 Publishes(CAPACITY_QUERY, topic="mms/status_report", description="with tactics.status_reporter "
                           "use: bus (the capacity query on DOWN and before a risk drain), as mms.status_report"),
                 Publishes("forge.leadership", topic="forge/leader/{lease}", key="lease"))
    # the bus status reporter's answers (sched.status_report_result) are not declared: forge-sched owns that
    # type, and a plant may use the monitor without forge-sched (or with the gRPC reporter)
    subscribes = (Subscribes((), param="topics", types_param="types", shared=False),)

    async def start(self) -> None:
        p = self.params
        tactics = self.ctx.tactics
        heartbeat = tactics.settings("heartbeat")
        self.faults = FaultDetector(heartbeat, max_gap=p.max_gap, missed_beats=p.missed_beats)
        self.risk: RiskStrategy = tactics.get("risk")
        # risk.rules judges the window's beats alone (not the time): on a check that finds the same
        # beats as the last one (3 checks of 4 at 0.25 s checks and 1 s beats) its assessment is the
        # last one. Another strategy may read the time, so it is asked on every check.
        self._same_beats_same_risk = type(self.risk) is RuleBasedRisk
        # factory -> (its window, the window's version, the assessment, its oldest beat's arrival): the same
        # version is the same beats, so the same oldest beat, due to leave the window at oldest + window
        self._assessed: dict[str, tuple[BeatWindow, int, RiskAssessment, float]] = {}
        self.risk_window = float(tactics.settings("risk").window)
        self.history = BeatHistory(max(self.risk_window, heartbeat.error_window), late_after=self.faults.late_after,
                                   errors=p.errors)
        self.risks: dict[str, Risk] = {}
        self.assessments: dict[str, RiskAssessment] = {}
        self._lower_since: dict[str, float] = {}
        self._accepted_rows: dict[str, dict[str, Any]] = {}  # a report's accepted row, until its event
        self.changes: deque[StatusChange] = deque(maxlen=1000)
        # what the last full check saw (_settled): its statuses, the beats counted, the oldest beat judged
        self._statuses: dict[str, Status] = {}
        self._factory_ids: dict[str, str] = {}  # a beat's factoryId -> the factory (factory_of, checked)
        self._settled_at_beats = -1
        self._oldest_beat = math.inf
        self.stats = {"beats": 0, "refused": 0, "status_changes": 0, "risk_changes": 0}
        try:
            self.ctx.storage  # noqa: B018 - the engine, created on first use
            engine: Any = lambda: self.ctx.storage
        except RuntimeError:
            self.ctx.log.warning("%s: the runtime has no storage; beats, statuses and events are not recorded",
                                 self.name)
            engine = None
        virtual = getattr(self.ctx.clock, "is_virtual", False)
        # a simulated run writes inline on one kept connection (no pool checkout per write: MonitorStore)
        self.store = MonitorStore(engine, offload=not virtual, batch_size=p.batch_size,
                                  keep_connection=virtual and engine is not None)
        if self.store.keep_connection:
            self.ctx.at_end(self.store.close, name="connection")  # stopped, crashed or killed: none leaks
        # a factory known before a restart and silent since is still judged (DOWN one timeout later)
        for factory, status in (await self.store.known()).items():
            self.faults.restore(factory, status, self.ctx.clock.time())
        self.guard = StarvationGuard.for_component(self.ctx, window=self.faults.late_after, every=p.check_every)
        self.reporter: StatusReporter = tactics.get("status_reporter")
        reporter_start = getattr(self.reporter, "start", None)
        if reporter_start is not None:
            await reporter_start(self.ctx)
        self.elector: LeaderElector | None = None
        self.reports = StatusReports(self.ctx, self.reporter, tactics.retry(name="mms.status_report"),
                                     elector=lambda: self.elector, topic=p.failover_topic,
                                     resend_after=p.resend_after, record=self._record_event, accepted=self._accepted)
        self.reports.gated = True  # reported in an epoch once _elected has judged (see there)
        self.capacity = CapacityQuery(self.ctx, self.reporter, timeout=p.capacity_timeout, max_age=p.capacity_max_age)
        self.unheard = UnheardFactories(self.faults, self.capacity, started=self.ctx.clock.time(), name=self.name,
                                        log=self.ctx.log, tracked=self._judge_next_check)
        self.failover = FailoverManager(self.reports, drain_on_high_risk=p.drain_on_high_risk, capacity=self.capacity,
                                        statuses=self.faults.statuses)
        self.recovery = RecoveryManager(
            self.reports, draining=lambda factory: self.failover.draining(factory, self.risks, self.faults.statuses()))
        for pattern in p.topics:  # not shared: every replica follows every factory
            await self.ctx.subscribe(pattern, self.on_beat, types=p.types, shared=False)
        self.elector = self.ctx.elector(p.lease, on_elected=self._elected, on_deposed=self._deposed)
        # the replica that leads checks every check_every; a shadow every shadow_check_every (it only
        # keeps its state ready), and at takeover it checks at once before acting (_elected)
        self.shadow_every = p.check_every if p.shadow_check_every is None else p.shadow_check_every
        self._checks = CheckTimer(self, p.check_every)  # on a timer callback, not a task
        # Under a virtual clock a beat flush every second was 7 % of industry40's simulated day (SQLAlchemy's
        # fixed cost per transaction); no power cut falls inside virtual time and a killed leader's
        # unwritten beats are its successor's to write (catch_up), so the simulation writes fewer, larger
        # batches: the flush timer runs every simulated_flush_every (a follower trims its buffer as often).
        flush_every = p.simulated_flush_every if virtual and p.simulated_flush_every is not None else p.flush_every
        self.ctx.every(flush_every, self._flush_pass, name="flush")
        self.ctx.every(p.prune_every, self.prune, name="prune")

    @property
    def leading(self) -> bool:
        return self.elector is not None and self.elector.is_leader

    # -- beats ------------------------------------------------------------------------------------
    def on_beat(self, envelope: Envelope) -> Awaitable[None] | None:
        """Read and count a beat. Sync (the bus delivers a run of beats without a coroutine each, ~1 µs a
        beat per replica); a full batch to flush or a status change comes back as a coroutine, which the
        bus awaits before the next beat, as it awaited the whole handler before."""
        payload = envelope.payload
        try:
            # the id in the body, checked once per id (factory_of's topic-level check, every beat before)
            named = payload.get("factoryId") if type(payload) is dict else None
            factory = self._factory_ids.get(named) if type(named) is str else None
            if factory is None:
                factory = factory_of(envelope, self.params.factory_level)
                if type(named) is str and named and len(self._factory_ids) < 10_000:
                    self._factory_ids[named] = factory
            if not isinstance(payload, dict) or not isinstance(payload.get("timestamp"), _NUMBER):
                raise BeatRefused("not a factory heartbeat: a JSON object with a numeric timestamp is expected")
        except BeatRefused as exc:
            self.stats["refused"] += 1
            self.ctx.bus.dead_letters.put(DeadLetter(
                dead_letters.REFUSED, f"{self.name}: beat {exc}; ignored", envelope.topic or "",
                self.ctx.transport or "", self.ctx.clock.time(), [], self.name, envelope))
            return None
        self.stats["beats"] += 1
        # heard when the transport read it, not when a backlog let it through (StarvationGuard)
        beat = self.history.add(factory, self.ctx.clock.time() - self.guard.backlog_age(), payload)
        # every replica buffers every beat; the leader writes them, a new leader those of the handover
        if self.params.record_beats and self.store.add_beat(beat) and self.leading:
            return self._flush_then_observe(beat)
        change = self.faults.observe(beat)
        return self._changed(change) if change is not None else None

    async def _flush_then_observe(self, beat: Beat) -> None:
        """The rest of :meth:`on_beat` when the leader's batch is full: the flush, then the beat counted."""
        await self.flush()
        change = self.faults.observe(beat)
        if change is not None:
            await self._changed(change)

    def calculate_error_rate(self, factory: str, window: float) -> float:
        """Failed beats (new errors or timeouts) / beats of ``factory`` in the last ``window`` s."""
        return self.history.calculate_error_rate(factory, window, self.ctx.clock.time())

    # -- every check_every --------------------------------------------------------------------------
    async def _check_now(self) -> None:
        """At takeover: a check runs now (a shadow's sleep is cut short), then every ``check_every``,
        with the leader's wake-ups for silence verdicts."""
        if not self._checks.sleeping:
            return  # mid-check: its next sleep is the leader's
        self._checks.cancel()
        await self.check()
        self._checks = CheckTimer(self, self.params.check_every)

    async def judge_silence(self, now: float) -> None:
        """Silence verdicts at ``now``; none while the loop starves the monitor (StarvationGuard)."""
        if self.guard.verdicts_allowed(self.ctx.clock.monotonic()):
            for change in self.faults.evaluate(self.guard.judged_at(now)):
                await self._changed(change)

    async def check(self) -> None:
        """Silence verdicts, then the risk of every factory, the drain and the reports still pending."""
        now = self.ctx.clock.time()
        ask_after = self.unheard.ask_after
        if ask_after is not None and now >= ask_after and self.leading:
            self.unheard.ask()  # the PMS's factories this replica never heard from (monitoring/unheard.py)
        await self.judge_silence(now)
        if self._settled(now):  # the loop below would skip every factory: no beat, change or expiry since
            self.failover.on_risks(self.risks, self._statuses)
            self.reports.tick()
            return
        statuses = self._statuses = self.faults.statuses()
        assessed, risks, lower_since = self._assessed, self.risks, self._lower_since
        # what _settled compares the next check with, noted as the loop goes (a second pass over the
        # factories after it cost as much again): settled when every factory ends judged on its
        # window's current beats with its verdict standing, nothing is held lower, and no beat came in
        # while the loop awaited a publish (then the next check runs the loop: the same verdicts)
        beats_before, settles, oldest = self.stats["beats"], self._same_beats_same_risk, math.inf
        self._settled_at_beats = -1
        expired = now - self.risk_window  # a beat that arrived before this has left the window
        for factory in statuses:
            last = assessed.get(factory)
            if (last is not None and last[1] == last[0].version and not last[3] < expired
                    and factory not in lower_since and risks.get(factory) is last[2].risk):
                oldest = min(oldest, last[3])
                continue  # the same beats as the last check judged, whose verdict stands: nothing to do
            window = self.history.window(factory, self.risk_window, now)
            window_oldest = window.oldest_at()
            if last is not None and last[0] is window and last[1] == window.version:
                assessment = last[2]
            else:
                assessment = self.risk.assess(factory, window, now)
                if settles:  # risk.rules (another strategy keeps nothing: every check runs the loop)
                    assessed[factory] = (window, window.version, assessment, window_oldest)
            self.assessments[factory] = assessment
            previous = risks.get(factory, Risk.LOW)
            if _RANK[assessment.risk] < _RANK[previous]:  # lowered only after risk_hold s of lower assessments
                since = lower_since.setdefault(factory, now)
                if now - since < self.params.risk_hold:
                    settles = False
                    continue
            lower_since.pop(factory, None)
            risks[factory] = assessment.risk
            oldest = min(oldest, window_oldest)
            if assessment.risk is not previous:
                await self._risk_changed(factory, previous, assessment)
        self.failover.on_risks(risks, statuses)
        self.reports.tick()
        if settles and not lower_since and self.stats["beats"] == beats_before:
            self._oldest_beat = oldest
            self._settled_at_beats = beats_before

    def _judge_next_check(self) -> None:
        self._settled_at_beats = -1

    def _settled(self, now: float) -> bool:
        """Whether the last check's risk loop left nothing for this one: no beat and no status change
        since, no risk held lower, and no beat due to leave a risk window (every factory's verdict is
        the one of the same beats). Only for ``risk.rules`` (judged from the beats alone)."""
        return (self._settled_at_beats == self.stats["beats"] and not self._lower_since
                and not (self._oldest_beat < now - self.risk_window))

    async def _changed(self, change: StatusChange) -> None:
        self._settled_at_beats = -1  # the next check runs its risk loop
        self.changes.append(change)
        self.stats["status_changes"] += 1
        # The report first (want() only starts its task), and the status row written once the PMS
        # has answered it (_accepted / _record_event): written before, the report waited for the
        # store's worker thread (and a beat flush holding it); written meanwhile, it contended with
        # the PMS's reassignment for the database's write lock.
        self.failover.on_change(change)
        self.recovery.on_change(change)
        if self.leading:
            factory = topic_level(change.source)
            await self.ctx.publish(self.params.status_topic.format(factory=factory), FORGE_STATUS, {
                "source": change.source, "status": str(change.new), "previous": str(change.old) if change.old else None,
                "at": change.at, "reason": change.reason, "monitor": self.name}, key=change.source)
            if not self.reports.in_flight(change.source):
                await self.store.save_status(change.source, self._row(change.source))

    async def _risk_changed(self, factory: str, previous: Risk, assessment: RiskAssessment) -> None:
        self.stats["risk_changes"] += 1
        if not self.leading:
            return
        await self.ctx.publish(self.params.risk_topic.format(factory=topic_level(factory)), RISK_CHANGED, {
            "factoryId": factory, "risk": str(assessment.risk), "previous": str(previous),
            "errorRate": round(assessment.error_rate, 6),
            "latencySlope": None if assessment.latency_slope is None else round(assessment.latency_slope, 6),
            "reason": assessment.reason}, key=factory)
        await self.store.save_status(factory, self._row(factory))

    # -- leadership, storage ------------------------------------------------------------------------
    async def _elected(self, epoch: int) -> None:
        """Take over: what the PMS already accepted needs no second report; the beats heard while no
        replica led (and those the predecessor had not written) are written now. Nothing is reported
        before this replica has judged (its reports are gated until then: a shadow checks less often,
        so what it wanted may be stale), and each status the PMS does not hold is announced on
        ``status_topic`` first: changes seen while standby were published by nobody."""
        try:
            self.reports.accepted = await self.store.reported()
            if self.params.record_beats:
                await self.store.catch_up(self.faults.interval / 2)
                await self.flush()
            self.ctx.log.info("leading %s at epoch %d; %d report(s) pending", self.params.lease, epoch,
                              len(self.reports.pending()))
            if getattr(self, "_checks", None) is not None:
                await self._check_now()  # a shadow that checked less often judges now, before it acts
            await announce_pending(self)
        finally:
            self.reports.ready_epoch = epoch
        self.reports.tick()

    async def _deposed(self, epoch: int) -> None:
        if self.store.buffered:  # what it heard up to now (a shutdown releases the lease before stop)
            await self.store.flush()

    def _row(self, factory: str) -> dict[str, Any]:
        return status_row(self, factory)

    async def _accepted(self, factory: str, status: str, epoch: int) -> None:
        # the row with the status the PMS accepted, written with the report's event (_record_event,
        # which StatusReports calls next): one transaction for both
        self._accepted_rows[factory] = {**self._row(factory), "reported_status": status, "reported_epoch": epoch,
                                        "reported_at": self.ctx.clock.time()}

    async def _record_event(self, event: dict[str, Any]) -> None:
        factory = event["factoryId"]
        row = self._accepted_rows.pop(factory, None) if event["outcome"] == "accepted" else None
        await self.store.save_status(factory, row or self._row(factory), event={
            "factory_id": factory, "status": event["status"], "reason": event["reason"],
            "epoch": event["epoch"], "lease": self.params.lease, "attempts": event["attempts"],
            "outcome": event["outcome"], "detail": event["detail"], "orders_moved": event["ordersMoved"],
            "at": self.ctx.clock.time(), "holder": self.name, **capacity_columns(event.get("capacity"))})

    async def flush(self) -> None:
        """Write the buffered beats now (the leader); a follower forgets those older than handover_keep."""
        writing = self._flush_pass()
        if writing is not None:
            await writing

    def _flush_pass(self) -> Awaitable[None] | None:
        """:meth:`flush`, sync where nothing is written (``ctx.every`` calls it on a timer callback): the
        leader's write is returned, to await."""
        if not self.leading:  # a follower keeps handover_keep s of beats for the day it takes over
            self.store.trim(self.ctx.clock.time() - self.params.handover_keep)
            return None
        return self._write_beats() if self.store.buffered else None

    async def _write_beats(self) -> None:
        await self.store.flush()

    def prune(self) -> Awaitable[None] | None:
        """Delete beats older than retention (the leader recording beats: the delete, to await)."""
        if self.leading and self.params.record_beats:
            return self._delete_old_beats()
        return None

    async def _delete_old_beats(self) -> None:
        await self.store.prune(self.ctx.clock.time() - self.params.retention)

    async def stop(self) -> None:
        await self.flush()
        close = getattr(getattr(self, "reporter", None), "aclose", None)
        if close is not None:
            await close()

    # -- what the runtime asks ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        faults = getattr(self, "faults", None)
        if faults is None:
            return {}
        return {"leading": self.leading, "factories": {f: str(s) for f, s in faults.statuses().items()},
                "risks": {f: str(r) for f, r in self.risks.items()}, "pending_reports": len(self.reports.pending()),
                **self.guard.health()}

    def report(self) -> dict[str, Any]:
        if not hasattr(self, "stats"):
            return {}
        return {**self.stats, **{f"reports_{k}": v for k, v in self.reports.stats.items()},
                "failovers": self.failover.failovers, "recoveries": self.recovery.recoveries,
                "drains": self.failover.drains, "capacity_queries": self.capacity.stats["queries"],
                "capacity_failed": self.capacity.stats["failed"], "storage": dict(self.store.stats),
                "elections": getattr(self.elector, "elections", 0)}

