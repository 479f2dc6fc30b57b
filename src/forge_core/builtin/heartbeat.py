"""``forge.heartbeat`` (emitter) and ``forge.heartbeat_monitor``: liveness as components.

The emitter publishes ``forge.heartbeat`` every interval (± jitter), with fields plugins add
through ``forge_heartbeat_payload``. The monitor tracks every source it hears of (discovered
from its first beat, whatever the message type: plain JSON machines typed by bindings count
too), runs the UP → DEGRADED → DOWN state machine of
:class:`~forge_core.tactics.heartbeat_status.HeartbeatStatusMonitor` with the configured failure
detector, accepts death certificates (an MQTT Last Will) as a DOWN verdict, publishes every
change as ``forge.status`` and calls ``forge_source_status_changed``; with ``failover: true`` it
asks the configured failover policy where a DOWN source's work goes and publishes the decision.

A source name comes from a message (a header, or a payload field through a binding) and becomes a
topic level (``forge/status/{source}``): a beat or certificate whose source is no topic level
(``+``, ``#``, ``/``, NUL, ...: :func:`~forge_core.transport.topics.topic_level`) is refused with
a ``refused`` dead letter saying so, and the source is never tracked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field

from forge_core.builtin.sight import Sight
from forge_core.components import Component
from forge_core.errors import ForgeError, ManifestProblem
from forge_core.flows import Publishes, Subscribes
from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter
from forge_core.messages.envelope import Envelope
from forge_core.settings import Settings
from forge_core.tactics.failover import FailoverContext
from forge_core.tactics.heartbeat_status import Status, StatusChange
from forge_core.transport.topics import topic_level

if TYPE_CHECKING:
    from forge_core.manifest.model import Manifest
    from forge_core.transport.base import Transport


class HeartbeatEmitterParams(Settings):
    interval: float | None = Field(None, gt=0,
                                   description="seconds between beats (default: tactics.heartbeat.interval)")
    jitter: float = Field(0.0, ge=0, le=0.5, description="each wait varies by up to this fraction, from ctx.random")
    topic: str = Field("forge/heartbeat/{source}", description="where beats go; {source} is the source name")
    source: str | None = Field(None, description="default: the instance name")


class HeartbeatMonitorParams(Settings):
    topics: list[str] = Field(["forge/heartbeat/+"], description="where beats arrive (MQTT-style patterns)")
    types: list[str] | None = Field(None, description="message types that count as beats (default: any on those "
                                                      "topics)")
    death_topics: list[str] = Field(["forge/death/+", "forge/birth/+"],
                                    description="where birth and death certificates arrive")
    certificate_sources: str | None = Field(
        None, description="regex over a birth/death certificate's source whose group 1 is the source its beats name "
                          "(e.g. '^machine-(\\d+)$' when the MQTT client is machine-0 and its beats say machineId 0); "
                          "default: the same name")
    status_topic: str = Field("forge/status/{source}", description="where status changes go")
    healthy_field: str = Field("healthy", description="a payload field that, when false, counts as an unhealthy beat")
    interval: float | None = Field(None, gt=0, description="expected beat interval (default: "
                                                           "tactics.heartbeat.interval)")
    evaluate_every: float | None = Field(None, gt=0, description="how often silence is checked (default: a quarter "
                                                                 "interval, ≤ 1 s)")
    failover: bool = Field(False, description="ask tactics.failover where a DOWN source's work goes")
    reconnect_grace: float | None = Field(
        None, gt=0, description="seconds after the monitor's own transport reconnects during which silence gives no "
                                "verdict and a death certificate waits for a beat that cancels it (sources reconnect "
                                "with their own backoff; a broker hands over Wills it kept); default: 10 intervals")
    death_confirm: float = Field(
        1.0, ge=0, description="seconds a death certificate waits before it is a DOWN verdict, for this monitor's own "
                               "connection to show whether it came from a broker shutting down (then it is held "
                               "like one heard while disconnected); a beat meanwhile cancels it")


class HeartbeatEmitter(Component):
    """Publish forge.heartbeat every interval (± jitter)."""

    Params = HeartbeatEmitterParams
    params: HeartbeatEmitterParams
    publishes = (Publishes("forge.heartbeat", param="topic", key="source"),)

    async def start(self) -> None:
        self.interval = self.params.interval or self.ctx.tactics.settings("heartbeat").interval
        self.jitter = self.params.jitter
        self.source = self.params.source or self.name
        self.topic = self.params.topic.format(source=topic_level(self.source))
        self.seq = 0
        self.ctx.spawn(self._beat(), name="heartbeat")

    async def _beat(self) -> None:
        while True:
            self.seq += 1
            extra = self.ctx.plugins.heartbeat_payload(self.name) if self.ctx.plugins is not None else {}
            payload = {**extra, "source": self.source, "seq": self.seq}
            await self.ctx.publish(self.topic, "forge.heartbeat", payload, key=self.source)
            wait = self.interval
            if self.jitter:
                wait *= 1.0 + self.ctx.random.uniform(-self.jitter, self.jitter)
            await self.ctx.clock.sleep(wait)

    def health(self) -> dict[str, Any]:
        return {"beats": getattr(self, "seq", 0)}


class HeartbeatMonitor(Component):
    """Track sources from their beats; publish UP/DEGRADED/DOWN changes as forge.status."""

    Params = HeartbeatMonitorParams
    params: HeartbeatMonitorParams
    publishes = (Publishes("forge.status", param="status_topic", key="source"),
                 Publishes("forge.failover", topic="forge/failover/{source}", key="source",
                           description="only with a failover policy (tactics.failover)"))
    subscribes = (Subscribes((), param="topics", types_param="types", shared=False),
                  Subscribes(("forge.death", "forge.birth"), param="death_topics", shared=False))

    async def start(self) -> None:
        heartbeat = self.ctx.tactics.settings("heartbeat")
        self.interval = self.params.interval or heartbeat.interval
        self.monitor = self.ctx.tactics.heartbeat_monitor(interval=self.interval)
        self.births: dict[str, int] = {}
        pattern = self.params.certificate_sources
        self.certificate_sources = re.compile(pattern) if pattern else None  # checked by forge_validate_manifest
        self.changes: list[StatusChange] = []
        self.failover = self.ctx.tactics.failover([]) if self.params.failover else None
        self.healthy_field = self.params.healthy_field
        types = self.params.types
        try:  # the transport the beats come through: how far behind its delivery is (backlog_age)
            self.beats_transport: Transport | None = self.ctx.bus.transport(self.ctx.transport)
        except ForgeError:
            self.beats_transport = None
        self.backlog = {"age": 0.0, "max_age": 0.0, "behind": False, "behind_evaluations": 0}
        self.sight = Sight(self.params.reconnect_grace or 10 * self.interval)
        #: source -> (seq, heard at, outages seen then, blind then): a death certificate, not a verdict yet
        self.held_deaths: dict[str, tuple[int, float, int, bool]] = {}
        for pattern in self.params.topics:
            await self.ctx.subscribe(pattern, self.on_beat, types=types, shared=False)
        for pattern in self.params.death_topics:
            await self.ctx.subscribe(pattern, self.on_certificate, types=["forge.death", "forge.birth"], shared=False)
        every = self.params.evaluate_every or min(self.interval / 4, 1.0)
        self.ctx.every(every, self.evaluate, name="evaluate")

    def _refused(self, source: str, envelope: Envelope) -> bool:
        """Whether ``source`` is no topic level (then ``envelope`` is dead-lettered as refused)."""
        try:
            topic_level(source)
        except ValueError as exc:
            self.ctx.bus.dead_letters.put(DeadLetter(
                dl.REFUSED, f"monitor {self.name!r}: source {exc} (it would be the last level of "
                f"{self.params.status_topic!r}); source not tracked", envelope.topic or "", self.ctx.transport or "",
                self.ctx.clock.time(), [], self.name, envelope))
            return True
        return False

    async def on_beat(self, envelope: Envelope) -> None:
        payload = envelope.payload
        source = envelope.source
        if self.monitor.status(source) is None and self._refused(source, envelope):  # checked once per source
            return
        healthy = not (isinstance(payload, dict) and payload.get(self.healthy_field) is False)
        if source in self.held_deaths and self._suspect(source):
            del self.held_deaths[source]  # it beats after an outage: the Will the broker kept was not its end
        # heard when the transport read it, not when a backlog let it through (see evaluate)
        transport = self.beats_transport
        at = self.ctx.clock.time() - (transport.backlog_age() if transport is not None else 0.0)
        change = self.monitor.observe(source, at, healthy)
        if change is not None:
            await self._report(change)

    async def on_certificate(self, envelope: Envelope) -> None:
        source, seq = str(envelope.payload["source"]), int(envelope.payload["seq"])
        if self.certificate_sources is not None:
            match = self.certificate_sources.match(source)
            if match is not None:
                source = match.group(1)
        if self._refused(source, envelope):
            return
        if envelope.type == "forge.birth":
            self.births[source] = max(seq, self.births.get(source, -1))
            held = self.held_deaths.get(source)
            if held is not None and seq > held[0]:
                del self.held_deaths[source]  # a newer session: the held death was the old one's
            return
        if seq < self.births.get(source, -1):
            self.ctx.log.info("ignored stale death of %s (seq %d < birth %d)", source, seq, self.births[source])
            return
        # not a verdict yet: a broker shutting down hands out its clients' Wills before this monitor
        # sees its own connection drop (and again after the restart): see evaluate()
        now = self.ctx.clock.time()
        blind = self._blind(now)
        self.held_deaths[source] = (seq, now, self.sight.outages, blind)
        if not blind:  # the verdict comes death_confirm after the Will, not at the next evaluation
            self.ctx.spawn(self._confirm_after(self.params.death_confirm), name=f"confirm-death:{source}")

    async def _confirm_after(self, delay: float) -> None:
        if delay:
            await self.ctx.clock.sleep(delay)
        now = self.ctx.clock.time()
        if not self._blind(now):
            await self._confirm_deaths(now)

    def _suspect(self, source: str) -> bool:
        """Whether ``source``'s held death came with an outage of this monitor's transport (heard
        while blind, or an outage began since): then a beat from it cancels the death. Otherwise a
        beat may be one sent before the death and read after it, and the death stands."""
        _, _, outages, blind = self.held_deaths[source]
        self._blind(self.ctx.clock.time())  # brings the outage count up to date
        return blind or self.sight.outages > outages

    async def _confirm_deaths(self, now: float) -> None:
        """Held deaths whose confirmation wait is over, with this monitor connected: DOWN."""
        for source, (_, heard_at, _, _) in list(self.held_deaths.items()):
            if now - heard_at < self.params.death_confirm:
                continue
            del self.held_deaths[source]
            change = self.monitor.report_dead(source, now)
            if change is not None:
                await self._report(change)

    #: A silence verdict waits while evaluate ran later than this fraction of the earliest silence
    #: verdict (degraded_after x interval): the loop was too busy to hear the beats.
    starved_fraction = 0.5

    async def evaluate(self) -> None:
        """Silence verdicts, unless the monitor itself was starved (issue 11 §3): the lag between
        when this call was due (``ctx.every`` sleeps ``every`` after each call) and when it ran is
        the event loop's lag; past the threshold the monitor says it is starved (log, health)
        and gives no verdict until a verdict window of on-time evaluations has passed, so the
        beats that were waiting behind the stall are heard first.

        Silence is judged at ``now - backlog_age`` of the beats' transport: what the transport has
        read but not handed over yet (a beat queued behind a flood of other messages) is not the
        source's silence, so it is judged at the time up to which the monitor has heard everything.
        A backlog over the same threshold is logged and reported in health (``transport_backlog``)."""
        clock = self.ctx.clock
        now_mono = clock.monotonic()
        every = self.params.evaluate_every or min(self.interval / 4, 1.0)
        due = getattr(self, "_evaluate_due", None)
        lag = max(0.0, now_mono - due) if due is not None else 0.0
        window = self.monitor.degraded_after * self.interval
        starvation: dict[str, Any] | None = getattr(self, "starvation", None)
        if starvation is None:
            starvation = {"starved": False, "lag": 0.0, "max_lag": 0.0, "threshold": self.starved_fraction * window,
                          "starved_evaluations": 0, "verdicts_held_until": None}
            self.starvation = starvation
        starvation["lag"] = round(lag, 3)
        starvation["max_lag"] = max(starvation["max_lag"], round(lag, 3))
        held_until = starvation["verdicts_held_until"]
        try:
            if lag > starvation["threshold"]:
                if not starvation["starved"]:
                    self.ctx.log.warning(
                        "monitor %s starved: evaluate ran %.3f s late (threshold %.3f s); no DOWN verdict for "
                        "silence until the loop keeps up", self.name, lag, starvation["threshold"])
                starvation["starved"] = True
                starvation["starved_evaluations"] += 1
                starvation["verdicts_held_until"] = now_mono + window + lag
                return
            if held_until is not None and now_mono < held_until:
                return  # on time again, but the beats that queued behind the stall get a window to count
            if starvation["starved"]:
                self.ctx.log.warning("monitor %s keeps up again (lag %.3f s); silence verdicts resume", self.name,
                                     lag)
            starvation["starved"] = False
            starvation["verdicts_held_until"] = None
            if self._blind(clock.time()):
                return  # the broker was away: silence is not the sources' (see builtin/sight.py)
            await self._confirm_deaths(clock.time())  # held and never followed by a beat: real deaths
            for change in self.monitor.evaluate(clock.time() - self._backlog_age(starvation["threshold"])):
                await self._report(change)
        finally:
            self._evaluate_due = clock.monotonic() + every

    def _blind(self, now: float) -> bool:
        transport = self.beats_transport
        if transport is not None:
            health = transport.health()
            self.sight.update(health.connected, health.stats.get("reconnects"), now)
        return self.sight.blind(now)

    def _backlog_age(self, threshold: float) -> float:
        """The beats' transport's backlog age (see :meth:`evaluate`), logged when it crosses
        ``threshold`` and when it is back under it."""
        transport = self.beats_transport
        age = transport.backlog_age() if transport is not None else 0.0
        backlog = self.backlog
        backlog["age"] = round(age, 3)
        backlog["max_age"] = max(backlog["max_age"], round(age, 3))
        if age > threshold:
            if not backlog["behind"]:
                self.ctx.log.warning("monitor %s: transport %s delivers %.3f s behind (threshold %.3f s); silence is "
                                     "judged at the time it has delivered up to", self.name, transport.name if
                                     transport else "?", age, threshold)
            backlog["behind"] = True
            backlog["behind_evaluations"] += 1
        elif backlog["behind"]:
            backlog["behind"] = False
            self.ctx.log.warning("monitor %s: transport delivers on time again (%.3f s behind)", self.name, age)
        return age

    async def _report(self, change: StatusChange) -> None:
        self.changes.append(change)
        topic = self.params.status_topic.format(source=topic_level(change.source))
        await self.ctx.publish(topic, "forge.status", {
            "source": change.source, "status": str(change.new), "previous": str(change.old) if change.old else None,
            "at": change.at, "reason": change.reason, "monitor": self.name,
        }, key=change.source)
        if self.ctx.plugins is not None:
            self.ctx.plugins.source_status_changed(change, self.name)
        if self.failover is not None:
            await self._fail_over(change)

    async def _fail_over(self, change: StatusChange) -> None:
        policy = self.failover
        assert policy is not None
        context = FailoverContext(work=[], at=change.at)
        if change.new is Status.UP:
            await policy.on_up(change.source, context)
            healthy = getattr(policy, "healthy", None)
            if isinstance(healthy, set):
                healthy.add(change.source)
            return
        if change.new is not Status.DOWN:
            return
        decision = await policy.on_down(change.source, context)
        telemetry = self.ctx.bus.telemetry
        if telemetry is not None:
            telemetry.failovers.add(1, {"source": change.source})
        await self.ctx.publish(f"forge/failover/{topic_level(change.source)}", "forge.failover", {
            "source": change.source, "target": decision.target, "reassigned": list(decision.reassigned),
            "note": decision.note,
        }, key=change.source)

    def status(self, source: str) -> Status | None:
        return self.monitor.status(source)

    def health(self) -> dict[str, Any]:
        monitor = getattr(self, "monitor", None)
        if not monitor:
            return {}
        starvation = getattr(self, "starvation", None)
        extra: dict[str, Any] = {}
        if starvation and starvation["starved_evaluations"]:
            extra["monitor_starved"] = dict(starvation)
        backlog = getattr(self, "backlog", None)
        if backlog and backlog["max_age"]:
            extra["transport_backlog"] = dict(backlog)
        sight = getattr(self, "sight", None)
        if sight is not None and sight.outages:
            extra["transport_outages"] = {**sight.view(), "deaths_held": sorted(self.held_deaths)}
        elif getattr(self, "held_deaths", None):
            extra["deaths_held"] = sorted(self.held_deaths)
        return {"sources": {s: str(v) for s, v in monitor.sources().items()}, **extra}


def _certificate_sources_problem(pattern: Any) -> str | None:
    if not pattern:
        return None
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        return f"{pattern!r} is not a regular expression: {exc}"
    return None if groups >= 1 else f"{pattern!r} needs a group: group 1 is the source the beats name"


def validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """A heartbeat monitor's certificate_sources must compile and capture the beat source
    (``forge_validate_manifest`` of the built-in plugin ``forge_core.heartbeat``)."""
    problems = []
    for name, spec in manifest.components.items():
        if spec.type != "forge.heartbeat_monitor":
            continue
        problem = _certificate_sources_problem((spec.params or {}).get("certificate_sources"))
        if problem is not None:
            where = ("components", name, "params", "certificate_sources")
            problems.append(ManifestProblem(".".join(where), f"component {name!r}: certificate_sources {problem}",
                                            str(manifest.path), manifest.line_of(where)))
    return problems
