"""Tactics configured from the manifest: what a component asks for through ``ctx.tactics``.

The manifest's ``tactics:`` section is keyed by tactic *kind*. Kinds are registered through
``forge_register_tactics`` like transports are (``registry.add_kind(kind, settings=Model,
default_use=...)``), so a plugin adds a kind with no edit to core. Kinds with implementations pick
one with ``use:``; the implementation is the registered tactic ``<kind>.<use>`` (``leader.redis``),
so a plugin adds a backend by registering ``leader.etcd``. The kind's settings and the
implementation's are each built from their declaration (:class:`~forge_core.Settings`: defaults
filled, typos refused); :meth:`Tactics.get` builds the chosen implementation of any kind.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.errors import ForgeError
from forge_core.registry import TacticKind

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.clock import Clock
    from forge_core.registry import TacticRegistry
    from forge_core.tactics.backpressure import BackpressureController
    from forge_core.tactics.dedup import IdempotencyKeys, WindowDeduplicator
    from forge_core.tactics.detectors import FailureDetector
    from forge_core.tactics.failover import FailoverPolicy
    from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor
    from forge_core.tactics.leader import LeaderElector, LeaseBackend, StateStore
    from forge_core.tactics.outbox import Outbox
    from forge_core.tactics.retry import RetryPolicy
    from forge_core.telemetry import Telemetry

__all__ = ["TacticConfigError", "TacticKind", "TacticServices", "Tactics"]


@dataclass
class TacticServices:
    """What an implementation factory gets besides its settings."""

    clock: Clock
    storage: Callable[[], Engine]
    seed: int | None
    plant: str
    data_dir: Path
    telemetry: Telemetry | None = None
    #: The kind's own settings (the shared keys beside ``use:``), set for the factory's call.
    kind_settings: Any = None


class TacticConfigError(ForgeError):
    """A ``tactics.<kind>`` section asks for something that cannot be built."""


class Tactics:
    """Builds configured tactic instances; shared ones (a lease backend) once per runtime."""

    def __init__(self, registry: TacticRegistry, settings: dict[str, Any], services: TacticServices) -> None:
        self.registry = registry
        self.config = settings
        self.services = services
        self._shared: dict[str, Any] = {}
        #: a kind's settings as the manifest gives them (no overrides), for the builders below that
        #: only read them: the manifest does not change within a runtime (built per elector, it was
        #: ~13 % of a leader-electing component's (re)start)
        self._read_only: dict[str, Any] = {}

    # -- settings ----------------------------------------------------------------------------
    def _kind(self, kind: str) -> None:
        if kind not in self.registry or not isinstance(self.registry.get(kind).value, TacticKind):
            raise TacticConfigError(f"no tactic kind {kind!r} is registered; known: {', '.join(self.kinds())}")

    def settings(self, kind: str, **overrides: Any) -> Any:
        """The kind's settings object (its declared model, defaults filled), ``overrides`` applied."""
        self._kind(kind)
        _use, own, _impl = self.registry.split(kind, self.config.get(kind))
        return self._load(self.registry.get(kind), {**own, **overrides}, f"tactics.{kind}")

    def _settings_read(self, kind: str, overrides: dict[str, Any]) -> Any:
        """``settings(kind, **overrides)`` for a caller that only reads it: without overrides,
        built once per runtime and shared."""
        if overrides:
            return self.settings(kind, **overrides)
        found = self._read_only.get(kind)
        if found is None:
            found = self._read_only[kind] = self.settings(kind)
        return found

    def kinds(self) -> list[str]:
        return self.registry.kinds()

    def implementation(self, kind: str, **overrides: Any) -> tuple[str, Callable[..., Any], Any]:
        """(use, factory, its settings object) for ``kind``; ``overrides`` go to the implementation."""
        self._kind(kind)
        use, _own, impl = self.registry.split(kind, self.config.get(kind))
        name = f"{kind}.{use}"
        if use is None or name not in self.registry:
            known = self.registry.implementations(kind)
            raise TacticConfigError(
                f"tactics.{kind}.use: no implementation {use!r} is registered; available: {', '.join(known) or 'none'}")
        entry = self.registry.get(name)
        return str(use), entry.value, self._load(entry, {**impl, **overrides}, f"tactics.{kind}")

    @staticmethod
    def _load(entry: Any, data: dict[str, Any], where: str) -> Any:
        return entry.build_settings(data, where=where)  # a SettingsError names tactics.<kind>.<key>

    def get(self, kind: str, *, shared: bool = False, **overrides: Any) -> Any:
        """Build the implementation the manifest chose for ``kind`` (``tactics.<kind>.use`` or the
        kind's default): ``factory(settings, services)`` with its settings validated and
        ``services.kind_settings`` the kind's own. ``shared=True`` builds it once per runtime."""
        if shared:
            return self.shared(f"tactic:{kind}", lambda: self.get(kind, **overrides))
        use, factory, impl_settings = self.implementation(kind, **overrides)
        services = dataclasses.replace(self.services, kind_settings=self.settings(kind))
        try:
            return factory(impl_settings, services)
        except ForgeError:
            raise
        except Exception as exc:
            raise TacticConfigError(
                f"tactics.{kind} (use: {use}) could not be built: {type(exc).__name__}: {exc}") from exc

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    # -- what components ask for -------------------------------------------------------------
    def lease_backend(self) -> LeaseBackend:
        """The plant's lease backend, one per runtime (so active and shadow share it)."""
        return self.shared("leader", lambda: self.get("leader"))

    def elector(self, name: str, holder: str, **overrides: Any) -> LeaderElector:
        from forge_core.tactics.leader import LeaderElector

        s = self._settings_read("leader", overrides)
        return LeaderElector(self.lease_backend(), name, holder, self.services.clock, ttl=s.ttl,
                             renew_every=s.renew_every, retry_every=s.retry_every, safety_margin=s.safety_margin)

    def state_store(self, namespace: str) -> StateStore:
        store = self.shared("state", lambda: self.get("state"))
        return store(namespace) if callable(store) else store

    def detector(self, interval: float) -> FailureDetector:
        return self.get("detector", interval=interval)

    def heartbeat_monitor(self, **overrides: Any) -> HeartbeatStatusMonitor:
        from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor

        s = self._settings_read("heartbeat", overrides)
        return HeartbeatStatusMonitor(
            s.interval, detector=self.detector(s.interval), degraded_after=s.degraded_after,
            error_rate_threshold=s.error_rate_threshold, error_window=s.error_window,
            recover_after=s.recover_after,
        )

    def retry(self, *, name: str = "retry", **overrides: Any) -> RetryPolicy:
        from forge_core.tactics.retry import RetryPolicy

        s = self._settings_read("retry", overrides)
        return RetryPolicy(s.max_attempts, s.initial, s.max_backoff, s.multiplier, s.jitter, s.deadline,
                           clock=self.services.clock, seed=self.services.seed, on_retry=self._retry_observer(name))

    def _retry_observer(self, name: str) -> Callable[[int, float], None]:
        """Count every retry (``forge.retries``) and mark it on the current span."""
        telemetry = self.services.telemetry
        counter = self.shared("retries_counter", lambda: telemetry.meter.create_counter(
            "forge.retries", description="retries made by retry policies")) if telemetry is not None else None
        log = logging.getLogger("forge.tactics.retry")

        def observe(retries: int, sleep: float) -> None:
            log.info("%s: retry %d after %.3fs", name, retries, sleep)
            if counter is not None:
                counter.add(1, {"policy": name})
            from opentelemetry import trace

            span = trace.get_current_span()
            if span.is_recording():
                span.add_event("retry", {"forge.retry.policy": name, "forge.retry.count": retries,
                                         "forge.retry.sleep": sleep})

        return observe

    def deduplicator(self, **overrides: Any) -> WindowDeduplicator:
        from forge_core.tactics.dedup import WindowDeduplicator

        s = self.settings("dedup", **overrides)
        return WindowDeduplicator(s.window, self.services.clock)

    def idempotency_keys(self, **overrides: Any) -> IdempotencyKeys:
        from forge_core.tactics.dedup import IdempotencyKeys

        s = self.settings("dedup", **overrides)
        return IdempotencyKeys(s.idempotency_capacity, s.idempotency_ttl, clock=self.services.clock)

    def backpressure(self, on_change: Callable[[float, float, int], None] | None = None,
                     **overrides: Any) -> BackpressureController:
        from forge_core.tactics.backpressure import BackpressureController

        s = self.settings("backpressure", **overrides)
        return BackpressureController(s.high, s.low, s.fast_interval, s.slow_interval, s.settle,
                                      self.services.clock, on_change)

    def outbox(self, name: str, **overrides: Any) -> Outbox:
        from forge_core.tactics.outbox import Outbox

        s = self.settings("outbox", **overrides)
        directory = Path(s.directory or self.services.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return Outbox(directory / f"outbox-{name}.db", s.max_bytes, s.high_watermark, clock=self.services.clock)

    def failover(self, targets: list[str]) -> FailoverPolicy:
        return self.get("failover", targets=list(targets))

    async def aclose(self) -> None:
        """Close everything built once per runtime (``shared=True``: the lease backend, a shared
        reporter's channel...) that has ``aclose()`` or ``close()``; what a component built for
        itself with ``get()`` is its own to close. A failing close is logged, the others still run."""
        for key, built in reversed(list(self._shared.items())):
            close = getattr(built, "aclose", None) or getattr(built, "close", None)
            if close is None:
                continue
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logging.getLogger("forge.tactics").warning("closing shared tactic %s failed", key, exc_info=True)
        self._shared.clear()
