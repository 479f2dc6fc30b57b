"""``/metrics``: the plant's OpenTelemetry metrics in Prometheus text format, on the runtime's HTTP server.

OpenTelemetry's Prometheus reader (``opentelemetry-exporter-prometheus``) joins the runtime's private
meter provider, so every instrument already made on it - Forge's own, the Kafka transport's, forge_mms's,
a plugin's - is exposed without a second set of names; prometheus_client writes the text, and its
process collector adds CPU and memory. Both live in a registry of this runtime's own (not
prometheus_client's global one), so plants side by side in one process (tests) do not mix.

What the runtime knows as state - the bus's counts, dead letters, transports' counters and outboxes,
component states, leases, heartbeat verdicts, backpressure - is read by observable instruments at
scrape time: nothing here runs per message. docs/metrics.md lists every family.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from forge_core.errors import ForgeError
from forge_core.manifest.metrics import TARGETS_ENV, parse_listen
from forge_core.runtime.supervisor import FAILED, KILLED, RESTARTING, RUNNING, STARTING, STOPPED
from forge_core.serving.http import Receive, Scope, Send
from forge_core.tactics.backpressure import BackpressureController
from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor, Status
from forge_core.tactics.leader import LeaderElector
from forge_core.tactics.outbox import Outbox

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader

    from forge_core.manifest.metrics import MetricsSettings
    from forge_core.runtime.runtime import Runtime

__all__ = ["PlantMetrics"]

log = logging.getLogger("forge.metrics")

_STATES = (STARTING, RUNNING, RESTARTING, FAILED, STOPPED, KILLED)
_TACTICS = (HeartbeatStatusMonitor, BackpressureController, LeaderElector, Outbox)
_MAX_ITEMS = 32
Callback = Callable[[CallbackOptions], Iterable[Observation]]


class PlantMetrics:
    """The Prometheus reader and registry of one runtime, its observable instruments and the ASGI app."""

    @classmethod
    def for_settings(cls, settings: MetricsSettings) -> PlantMetrics | None:
        """None when off, or on by default without the ``http`` extra (no HTTP server to serve it on
        either; logged). An explicit ``listen`` without the packages is an error."""
        if not settings.enabled:
            return None
        try:
            return cls()
        except ImportError as exc:
            hint = (f"runtime.metrics needs opentelemetry-exporter-prometheus and prometheus-client ({exc.name} is "
                    "missing): pip install 'forge-core[http]', or set runtime.metrics.enabled: false")
            if settings.listen is not None:
                raise ForgeError(hint) from None
            log.info("no /metrics: %s", hint)
            return None

    def __init__(self) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        #: joins the meter provider (``Telemetry.from_settings(extra_readers=...)``)
        self.reader: MetricReader = PrometheusMetricReader(scope_info_enabled=False, registry=self.registry)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        # The runtime is held weakly: the meter provider keeps the observable instruments' callbacks (so
        # this object) for as long as anything keeps the provider - OpenTelemetry's atexit hook until
        # shutdown, which a start that raised or an abandoned plant never reaches; a global provider for
        # ever. A strong reference made that a path to every component context of a stopped plant.
        self._runtime_ref: weakref.ref[Runtime] | None = None
        self.scrapes = 0

    @property
    def runtime(self) -> Runtime | None:
        """The observed runtime; None before :meth:`observe` and once it has been collected."""
        return self._runtime_ref() if self._runtime_ref is not None else None

    async def serve(self, runtime: Runtime) -> None:
        """Observe ``runtime``, put ``/metrics`` on its HTTP host and, with ``listen``, start that host now
        (at ``listen``'s address: one HTTP server per process)."""
        assert runtime.telemetry is not None and runtime.http is not None
        self.observe(runtime.telemetry.meter, runtime)
        runtime.http.serve_builtin("/metrics", self.app)
        listen = runtime.manifest.runtime.metrics.listen
        if listen is not None:
            host, port = parse_listen(listen)
            runtime.http.host, runtime.http.port = host or runtime.http.host, port
            await runtime.http.start()
            if runtime.http.url is not None:
                log.info("metrics on %s/metrics", runtime.http.url)
                targets = os.environ.get(TARGETS_ENV)
                if targets:
                    write_targets(Path(targets), runtime.http.url, runtime)

    # -- instruments -------------------------------------------------------------------------------
    def observe(self, meter: Meter, runtime: Runtime) -> None:
        """Make the observable instruments that read ``runtime`` at each scrape."""
        self._runtime_ref = weakref.ref(runtime)
        counters: list[tuple[str, str, str, Callback]] = [
            ("forge.bus.published", "{message}", "Messages published through the bus, by type (every transport)",
             self._bus("published")),
            ("forge.bus.handled", "{message}", "Messages a handler returned from without raising, by type",
             self._bus("handled")),
            ("forge.bus.forwarded", "{message}", "Messages forwarded by the manifest's routes",
             self._bus_int("forwarded")),
            ("forge.bus.redelivered", "{message}", "Deliveries whose handler raised Redeliver (handed back, not lost)",
             self._bus_int("redeliver")),
            ("forge.dead_letters", "{message}", "Dead letters by reason (decode_error, invalid_payload, "
             "handler_error, ...)", self._dead_letters),
            ("forge.transport.messages", "{message}", "Messages a transport sent (direction=published) or "
             "delivered to subscribers (direction=delivered), by the transport's own count", self._transport_messages),
            ("forge.transport.reconnects", "{reconnect}", "Times a transport reconnected to its broker (transports "
             "that count it: MQTT)", self._transport_key("reconnects")),
            ("forge.component.kills", "{kill}", "Abrupt kills of a component instance (chaos, drills)", self._kills),
            ("forge.lease.elections", "{election}", "Times a component won a lease", self._lease("elections")),
            ("forge.backpressure.switches", "{switch}", "Sampling-interval switches of a backpressure controller",
             self._backpressure("switches")),
        ]
        for name, unit, description, callback in counters:
            meter.create_observable_counter(name, callbacks=[self._guarded(name, callback)], unit=unit,
                                            description=description)
        gauges: list[tuple[str, str, str, Callback]] = [
            ("forge.transport.connected", "1", "1 while the transport is connected to its broker",
             self._transport_connected),
            ("forge.transport.stat", "1", "Every numeric figure a transport reports in /health (stat label)",
             self._transport_stats),
            ("forge.outbox.depth", "{message}", "Messages held in an outbox until the broker takes them",
             self._outbox_depth),
            ("forge.component.state", "1", "1 for the component instance's current state, 0 for the others",
             self._component_state),
            ("forge.lease.leader", "1", "1 while the component holds the lease", self._lease_leader),
            ("forge.lease.epoch", "1", "Epoch (fencing token) of the lease the component holds or last held",
             self._lease_epoch),
            ("forge.heartbeat.status", "1", "1 for a source's current UP/DEGRADED/DOWN verdict, 0 for the others",
             self._heartbeat_status),
            ("forge.backpressure.throttled", "1", "1 while a backpressure controller samples at its slow interval",
             self._backpressure_throttled),
            ("forge.backpressure.interval", "s", "The sampling interval a backpressure controller asks for now",
             self._backpressure("interval")),
        ]
        for name, unit, description, callback in gauges:
            meter.create_observable_gauge(name, callbacks=[self._guarded(name, callback)], unit=unit,
                                          description=description)

    # -- bus and dead letters ----------------------------------------------------------------------
    def _bus(self, which: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            bus = self._runtime.bus
            counts = getattr(bus.stats, which) if bus is not None else {}
            return [Observation(n, {"type": t}) for t, n in list(counts.items())]
        return observe

    def _bus_int(self, which: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            bus = self._runtime.bus
            return [Observation(getattr(bus.stats, which))] if bus is not None else []
        return observe

    def _dead_letters(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"reason": r}) for r, n in list(self._runtime.dead_letters.counts.items())]

    # -- transports --------------------------------------------------------------------------------
    def _healths(self) -> Iterator[tuple[str, Any]]:
        for name, transport in list(self._runtime.transports.items()):
            yield name, transport.health()

    def _transport_connected(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(h.connected), {"transport": n}) for n, h in self._healths()]

    def _transport_stats(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, {"transport": n, "stat": key}) for n, h in self._healths()
                for key, value in h.stats.items() if isinstance(value, int | float)]

    def _transport_messages(self, _: CallbackOptions) -> Iterable[Observation]:
        out = []
        for name, health in self._healths():
            stats = health.stats
            delivered = stats.get("delivered", stats.get("consumed"))
            for direction, value in (("published", stats.get("published")), ("delivered", delivered)):
                if isinstance(value, int):
                    out.append(Observation(value, {"transport": name, "direction": direction}))
        return out

    def _transport_key(self, key: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(h.stats[key], {"transport": n}) for n, h in self._healths()
                    if isinstance(h.stats.get(key), int)]
        return observe

    def _outbox_depth(self, _: CallbackOptions) -> Iterable[Observation]:
        out = [Observation(h.stats["outbox_depth"], {"transport": n}) for n, h in self._healths()
               if isinstance(h.stats.get("outbox_depth"), int)]
        out += [Observation(box.depth, {"component": c}) for c, box in self._tactics(Outbox)]
        return out

    # -- components --------------------------------------------------------------------------------
    def _component_state(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(s.state == state), {"component": name, "state": state})
                for name, s in list(self._runtime.supervisors.items()) for state in _STATES]

    def _kills(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(getattr(s, "kills", 0), {"component": n})
                for n, s in list(self._runtime.supervisors.items())]

    def _tactics(self, kind: type[Any]) -> Iterator[tuple[str, Any]]:
        """(instance name, tactic object) for every ``kind`` a running component holds: on the instance,
        one attribute below it, or made by its context (``ctx.elector``)."""
        for name, supervisor in list(self._runtime.supervisors.items()):
            instance, ctx = supervisor.instance, supervisor.context
            if instance is None:
                continue
            seen: set[int] = set()
            for found in _find(instance, _TACTICS, depth=2, seen=seen):
                if isinstance(found, kind):
                    yield name, found
            for elector in list(getattr(ctx, "_electors", [])) if kind is LeaderElector else []:
                if id(elector) not in seen:
                    seen.add(id(elector))
                    yield name, elector

    def _lease(self, attribute: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(getattr(e, attribute), {"component": c, "lease": e.name})
                    for c, e in self._tactics(LeaderElector)]
        return observe

    def _lease_leader(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(e.is_leader), {"component": c, "lease": e.name})
                for c, e in self._tactics(LeaderElector)]

    def _lease_epoch(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(e.epoch, {"component": c, "lease": e.name}) for c, e in self._tactics(LeaderElector)
                if e.epoch is not None]

    def _heartbeat_status(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(current == status), {"component": c, "source": source, "status": str(status)})
                for c, monitor in self._tactics(HeartbeatStatusMonitor)
                for source, current in monitor.sources().items() for status in Status]

    def _backpressure(self, attribute: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return _numbered(attribute, self._tactics(BackpressureController))
        return observe

    def _backpressure_throttled(self, _: CallbackOptions) -> Iterable[Observation]:
        return _numbered("throttled", self._tactics(BackpressureController))

    @property
    def _runtime(self) -> Runtime:
        runtime = self.runtime
        assert runtime is not None, "PlantMetrics.observe() first"
        return runtime

    def _guarded(self, name: str, callback: Callback) -> Callback:
        """A failing callback costs its own family in this scrape only, with a log line saying why; once the
        runtime is gone (a provider kept past its plant) every family is empty."""
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if self.runtime is None:
                return []
            try:
                return list(callback(options))
            except Exception:
                log.warning("metric %s could not be read", name, exc_info=True)
                return []
        return observe

    # -- ASGI --------------------------------------------------------------------------------------
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /metrics``: the registry in Prometheus text format 0.0.4 (OpenMetrics when asked for)."""
        from prometheus_client.exposition import choose_encoder

        if scope["type"] != "http":
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(send, 405, b"GET only\n", "text/plain; charset=utf-8")
            return
        accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        self.scrapes += 1
        body = encoder(self.registry)  # on the plant's loop: the callbacks read state no other thread writes
        await _respond(send, 200, body if scope.get("method") != "HEAD" else b"", content_type)


def write_targets(path: Path, url: str, runtime: Runtime) -> None:
    """This process's /metrics as a Prometheus ``file_sd_configs`` target group, written atomically
    (Prometheus re-reads the file when it changes: a restarted child's new port is picked up)."""
    instance = os.environ.get("FORGE_INSTANCE") or ",".join(runtime.only) or "main"
    group = [{"targets": [url.removeprefix("http://")],
              "labels": {"forge_plant": runtime.manifest.name, "forge_process": instance}}]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(group, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)


def _find(obj: Any, kinds: tuple[type[Any], ...], *, depth: int, seen: set[int]) -> Iterator[Any]:
    """Objects of ``kinds`` among ``obj``'s attributes (and, to ``depth``, theirs, and lists/dicts of them)."""
    try:
        values = list(vars(obj).values())
    except TypeError:
        return
    for value in values:
        if isinstance(value, dict | list | tuple) and len(value) > _MAX_ITEMS:
            continue  # a component's data (readings, a cache), not its handful of tactics
        items = list(value.values()) if isinstance(value, dict) else \
            value if isinstance(value, list | tuple) else [value]
        for item in items:
            if id(item) in seen:
                continue
            if isinstance(item, kinds):
                seen.add(id(item))
                yield item
            elif depth > 1 and hasattr(item, "__dict__") and not isinstance(item, type) \
                    and type(item).__module__.split(".")[0] not in ("asyncio", "logging", "sqlalchemy"):
                seen.add(id(item))
                yield from _find(item, kinds, depth=depth - 1, seen=seen)


def _numbered(attribute: str, found: Iterable[tuple[str, Any]]) -> list[Observation]:
    """One observation per controller: ``controller`` numbers a component's several (0, 1, ...)."""
    counts: dict[str, int] = {}
    out = []
    for component, controller in found:
        index = counts[component] = counts.get(component, -1) + 1
        out.append(Observation(float(getattr(controller, attribute)),
                               {"component": component, "controller": str(index)}))
    return out


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
