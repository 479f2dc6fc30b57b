"""The runtime: one plant process.

It creates the transports the manifest declares and connects them, builds the message bus,
starts the selected components under supervisors, serves ``/health`` and ``/ready``, and
stops everything cleanly, returning a :class:`RunSummary`. It runs on whatever clock it is
given: the real one, or a :class:`~forge_core.clock.VirtualClock` for simulation.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.bus import MessageBus, Route, TraceRecorder
from forge_core.clock import Clock, RealClock
from forge_core.components import ComponentContext
from forge_core.errors import ForgeError
from forge_core.manifest.ports import port_for
from forge_core.messages.deadletter import DeadLetterChannel
from forge_core.messages.envelope import IdGenerator
from forge_core.runtime.engine import open_engine
from forge_core.runtime.gc_policy import freeze_started_heap, unfreeze
from forge_core.runtime.health import HealthServer
from forge_core.runtime.instrumentation import make_telemetry
from forge_core.runtime.selection import select_components, selected_instances
from forge_core.runtime.summary import RunSummary, collect_reports
from forge_core.runtime.supervisor import RestartPolicy, Supervisor
from forge_core.runtime.transports import connect_with_retry, transports_needed
from forge_core.runtime.views import health_snapshot, run_summary
from forge_core.runtime.waiting import Killable, wait_for_stop
from forge_core.serving import GrpcHost, HttpHost
from forge_core.tactics.service import Tactics, TacticServices
from forge_core.transport.base import MessageCallback, Transport, TransportContext

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.manifest import Manifest
    from forge_core.plugins import Plugins
    from forge_core.runtime.dead_letter_sinks import DeadLetterSinks
    from forge_core.runtime.metrics import PlantMetrics
    from forge_core.storage.probe import StorageProbe
    from forge_core.telemetry import Telemetry

# Names that lived here before they had modules of their own stay importable from here.
__all__ = ["Killable", "Runtime", "wait_for_stop"]

log = logging.getLogger("forge.runtime")


class Runtime:
    def __init__(
        self,
        manifest: Manifest,
        plugins: Plugins,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        only: Iterable[str] | None = None,
        serve_health: bool = True,
        record_trace: bool = False,
        connect_attempts: int = 5,
        tap: MessageCallback | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.plugins = plugins
        self.clock: Clock = clock or RealClock()
        self.seed = seed
        #: True when this process runs the whole plant (not a child of a multi-process run): it then
        #: runs the plugins' whole-plant checks (``forge_plant_checks``) on its own summary.
        self.whole_plant = not only
        self.only = self._select(only)
        self.serve_health = serve_health
        self.connect_attempts = connect_attempts
        self._frozen = False  # whether this plant froze the started heap (gc_policy)
        #: Outboxes, MQTT session numbers and other durable files; one per process, so processes of
        #: one plant on one host must not share it (the multi-process runner gives each child its own).
        self.data_dir = data_dir or manifest.plant_dir / ".forge"
        #: Component instances running in child processes that this runtime can kill and revive
        #: (set by :class:`forge_core.runtime.processes.ProcessRunner` for components run in the parent).
        self.children: dict[str, Killable] = {}
        #: Subscribed to '#' on every transport as soon as it connects, before any component
        #: starts, so it sees every message of the run (TestPlant's recorder, live views).
        self.tap = tap
        self.trace = TraceRecorder() if record_trace else None
        self.dead_letters = DeadLetterChannel()
        self.transports: dict[str, Transport] = {}
        self.supervisors: dict[str, Supervisor] = {}
        self.bus: MessageBus | None = None
        self.telemetry: Telemetry | None = None
        self.health_server: HealthServer | None = None
        #: One HTTP and one gRPC server per process, started by the first component that mounts on
        #: them (``ctx.http``, ``ctx.grpc``); under a virtual clock they never listen.
        self.http: HttpHost | None = None
        self.grpc: GrpcHost | None = None
        self.tactics: Tactics | None = None
        #: ``/metrics`` (runtime.metrics; docs/metrics.md): the Prometheus reader on the telemetry's meter provider
        self.metrics: PlantMetrics | None = None
        self._engine: Engine | None = None
        #: whether the database answers, for /ready: pinged in the background under a real clock
        self.storage_probe: StorageProbe | None = None
        # Created here (asyncio.Event binds no loop until used) so a stop asked for during
        # start-up, e.g. a SIGTERM while transports connect, is not lost.
        self._stop_requested = asyncio.Event()
        self._stop_reason = ""
        self._started = False
        self._stopped: RunSummary | None = None
        self._start_clock = 0.0
        self._start_wall = 0.0
        self.dead_letter_sinks: DeadLetterSinks | None = None
        rs = manifest.runtime
        self.restart_policy = RestartPolicy(rs.initial_backoff, rs.max_backoff, rs.max_restarts, rs.window)

    # -- selection (runtime/selection.py) ---------------------------------------------------
    def _select(self, only: Iterable[str] | None) -> list[str]:
        """Components to run; also fills ``self._replicas`` when ``only`` names single instances."""
        selected, self._replicas = select_components(self.manifest, only)
        return selected

    def _instance_names(self) -> list[str]:
        """The instances this process runs (``machine-1`` for a replica selected alone)."""
        return selected_instances(self.manifest, self.only, self._replicas)

    # -- storage -----------------------------------------------------------------------
    def storage(self) -> Engine:
        """The plant's engine, created (and migrated, if the manifest asks) on first use."""
        if self._engine is None:
            self._engine = open_engine(self.manifest, self.plugins, virtual=self.clock_is_virtual)
            if not self.clock_is_virtual:  # under a virtual clock no probe listens (wall-time pings)
                from forge_core.storage.probe import watch

                self.storage_probe = watch(self._engine, self.manifest.runtime)
        return self._engine

    def _close_storage(self) -> None:
        if self.storage_probe is not None:
            self.storage_probe.close()
            self.storage_probe = None
        if self._engine is not None:
            self._engine.dispose()

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Bring the plant up. If a step fails (a broker never ready, a bad route, a hook raising),
        what the earlier steps acquired is given back before the error propagates: connected
        transports (their client threads), servers, sinks and telemetry do not outlive the attempt."""
        if self._started:
            return
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self._abandon_start()
            raise

    async def _abandon_start(self) -> None:
        try:
            await self._release()
        except Exception:
            log.exception("releasing what a failed start acquired failed")
        if self.telemetry is not None:
            self.telemetry.shutdown()
        self._close_storage()
        unfreeze(self._frozen)
        self._frozen = False
        self._abandoned = True  # a stop() after this has nothing left to give back

    async def _start(self) -> None:
        self._start_clock = self.clock.monotonic()
        self._start_wall = time.perf_counter()
        manifest = self.manifest
        self.plugins.collect()
        self.telemetry = self._make_telemetry()
        self.tactics = Tactics(self.plugins.tactics, manifest.tactics, TacticServices(
            self.clock, self.storage, self.seed, manifest.name, self.data_dir, self.telemetry))
        if manifest.storage.migrate_on_start:
            self.storage()  # migrate before anything can need the tables
        await self._connect_transports()
        self.bus = MessageBus(
            schemas=self.plugins.schemas,
            clock=self.clock,
            transports=self.transports,
            default_transport=manifest.default_transport,
            bindings=manifest.bindings,
            dead_letters=self.dead_letters,
            telemetry=self.telemetry,
            ids=IdGenerator(self.seed if self.clock_is_virtual else None),
            infer_type=self.plugins.infer_message_type,
            trace=self.trace,
        )
        self._wire_dead_letters()
        rs = manifest.runtime
        # a process running one instance (a per_component child, --only pms-1) binds that instance's own
        # port when runtime.http.ports / runtime.grpc.ports name it (manifest/ports.py)
        mine = self._instance_names() if not self.whole_plant else []
        self.http = HttpHost(rs.http_host, port_for(rs.http_ports, rs.http_port, mine),
                             listen=not self.clock_is_virtual, probes=self.health_snapshot)
        self.grpc = GrpcHost(rs.grpc_host, port_for(rs.grpc_ports, rs.grpc_port, mine),
                             listen=not self.clock_is_virtual)
        if self.metrics is not None:
            await self.metrics.serve(self)
        for route in manifest.routes:
            await self.bus.add_route(Route(route.source, route.target, list(route.topics),
                                           list(route.types) if route.types else None))
        for name in self.only:
            self._launch_component(name)
        await asyncio.gather(*(s.started.wait() for s in self.supervisors.values()))
        if self.serve_health and manifest.runtime.health_port is not None and not self.clock_is_virtual:
            self.health_server = HealthServer(self.health_snapshot, manifest.runtime.health_host,
                                              manifest.runtime.health_port)
            self.health_server.start()
            log.info("health on %s/health and %s/ready", self.health_server.url, self.health_server.url)
        # Under a real clock what exists once the plant is up lives as long as the process: out of the
        # collector's reach (runtime/gc_policy.py; FORGE_GC_FREEZE=0 turns it off). Undone at stop.
        self._frozen = freeze_started_heap(virtual=self.clock_is_virtual)
        self.plugins.plant_started(self)

    @property
    def clock_is_virtual(self) -> bool:
        return bool(getattr(self.clock, "is_virtual", False))

    def _make_telemetry(self) -> Telemetry | None:
        telemetry, self.metrics = make_telemetry(self.manifest)
        return telemetry

    async def _connect_transports(self) -> None:
        context = TransportContext(self.clock, self.manifest.plant_dir, self.manifest.name, self.seed,
                                   self.data_dir, self.tactics,
                                   self.telemetry.meter_provider if self.telemetry is not None else None)
        needed = transports_needed(self.manifest, self.plugins, self.only)
        for name, spec in self.manifest.transports.items():
            if name not in needed:
                continue
            entry = self.plugins.transports.get(spec.type)
            settings = entry.build_settings(dict(spec.settings), where=f"transports.{name}.settings")
            transport: Transport = entry.value(name, settings, context)
            await self._connect(transport)
            self.transports[name] = transport
            if self.tap is not None:
                await transport.subscribe("#", self.tap, owner="forge.tap")
            self.plugins.transport_ready(name, transport)

    async def _connect(self, transport: Transport) -> None:
        await connect_with_retry(transport, self.clock, self.connect_attempts)

    def _wire_dead_letters(self) -> None:
        from forge_core.messages.deadletter import DeadLetterSettings
        from forge_core.runtime.dead_letter_sinks import DeadLetterSinks

        settings = DeadLetterSettings.load(self.manifest.settings.get("dead_letters"), where="settings.dead_letters")
        self.dead_letter_sinks = DeadLetterSinks(
            self.dead_letters, settings, plugins=self.plugins, telemetry=self.telemetry,
            engine=self.storage if self._engine is not None else None, bus=self.bus, plant=self.manifest.name,
            clock=self.clock, transports=self.transports, virtual=self.clock_is_virtual)

    def _launch_component(self, name: str) -> None:
        spec = self.manifest.components[name]
        entry = self.plugins.components.get(spec.type)
        factory = entry.value
        params = entry.build_settings(dict(spec.params), where=f"components.{name}.params")
        storage = self.storage
        for replica in sorted(self._replicas.get(name, range(spec.replicas))):
            instance = name if spec.replicas == 1 else f"{name}-{replica}"

            def make_context(instance: str = instance, replica: int = replica) -> ComponentContext:
                assert self.bus is not None
                return ComponentContext(
                    name=instance, component=name, replica=replica, replicas=spec.replicas,
                    params=copy.deepcopy(params) if isinstance(params, dict) else params, bus=self.bus,
                    clock=self.clock,
                    transport=spec.transport or self.manifest.default_transport, seed=self.seed,
                    storage=storage, tactics=self.tactics, plugins=self.plugins, services={"runtime": self},
                    http=self.http, grpc=self.grpc,
                )

            supervisor = Supervisor(instance, factory, make_context, clock=self.clock, policy=self.restart_policy,
                                    on_crash=self._crashed)
            self.supervisors[instance] = supervisor
            supervisor.launch()

    def _crashed(self, name: str, error: BaseException, restarts: int, gave_up: bool) -> None:
        if self.telemetry is not None:
            self.telemetry.component_restarts.add(1, {"component": name})
        self.plugins.component_crashed(name, error, restarts, gave_up)

    def instances(self) -> list[str]:
        """Instances :meth:`kill` and :meth:`revive` can reach: this process's and its child processes'."""
        return [*self.supervisors, *self.children]

    async def kill(self, name: str) -> None:
        """Kill component instance ``name`` abruptly (chaos, failover tests): see Supervisor.kill;
        an instance in a child process gets SIGKILL."""
        if name in self.children:
            await self.children[name].kill()
            return
        await self._supervisor(name).kill()

    def revive(self, name: str) -> None:
        """Start a killed instance again (a child process: a new process)."""
        if name in self.children:
            self.children[name].revive()
            return
        self._supervisor(name).revive()

    def _supervisor(self, name: str) -> Supervisor:
        try:
            return self.supervisors[name]
        except KeyError:
            raise ForgeError(f"no component instance {name!r} in this process or its children; running: "
                             f"{', '.join(self.instances())}") from None

    # -- running -----------------------------------------------------------------------
    def request_stop(self, reason: str = "requested") -> None:
        """Ask the plant to stop (safe from signal handlers on the loop)."""
        self._stop_reason = self._stop_reason or reason
        self._stop_requested.set()

    async def run(self, duration: float | None = None) -> RunSummary:
        """Start, run until ``duration`` seconds of the clock pass or a stop is requested, stop."""
        await self.start()
        try:
            if await wait_for_stop(self._stop_requested, duration):
                self._stop_reason = self._stop_reason or f"duration {duration:g}s reached"
        finally:
            summary = await self.stop()
        return summary

    async def stop(self) -> RunSummary:
        if self._stopped is not None:
            return self._stopped
        self.plugins.plant_stopping(self)
        self._collect_reports()
        await self._release()
        summary = self.summary()
        summary.note_unreported()  # a killed instance's checks: listed as not run, not silently absent
        if self.whole_plant and not self.children:
            summary.checks += self.plugins.plant_checks(summary)
        if self.telemetry is not None and not getattr(self, "_abandoned", False):
            self.telemetry.shutdown()
        self._close_storage()
        self._stopped = summary
        unfreeze(self._frozen)  # the stopped plant's objects are collectable again
        self._frozen = False
        self.plugins.plant_stopped(summary)
        return summary

    async def _release(self) -> None:
        """Give back, in reverse order, what :meth:`start` acquired: components, servers, the
        dead-letter publisher, tactics, transports, then the dead-letter store, the health probe.
        Safe on a partial start (what is None is skipped)."""
        if getattr(self, "_abandoned", False):
            return
        for transport in self.transports.values():
            transport.detach()  # the components' subscriptions end with the process: a kept session keeps them
        for supervisor in reversed(list(self.supervisors.values())):
            await supervisor.stop()
        for host in (self.http, self.grpc):
            if host is not None:
                await host.aclose()
        if self.dead_letter_sinks is not None:
            await self.dead_letter_sinks.close_publisher()  # forge.deadletter needs the transports
        if self.tactics is not None:
            await self.tactics.aclose()
        for transport in self.transports.values():
            try:
                await transport.close()
            except Exception:
                log.exception("closing transport %s failed", transport.name)
        if self.dead_letter_sinks is not None:
            # after the transports: what one gives up on while closing (forge_kafka's queued records
            # at close_timeout) is still recorded in SQL within flush_timeout
            await self.dead_letter_sinks.aclose()
        if self.health_server is not None:
            self.health_server.stop()

    def _collect_reports(self) -> None:
        self._reports, self._checks = collect_reports(self.supervisors)

    # -- views (runtime/views.py) -----------------------------------------------------------
    def summary(self) -> RunSummary:
        """The summary of the run so far (``forge run`` prints it at the end)."""
        return run_summary(self)

    def health_snapshot(self) -> tuple[bool, bool, dict[str, Any]]:
        """(healthy, ready, detail) for the probes: healthy unless a component gave up or a
        transport is down; ready when, besides, every component is running, the database answers
        and the gRPC server serves."""
        return health_snapshot(self)
