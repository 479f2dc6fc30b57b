"""Tactics configured from the manifest: what a component asks for through ``ctx.tactics``.

The manifest's ``tactics:`` section is keyed by tactic *kind* (``leader``, ``detector``,
``heartbeat``, ``retry``, ``dedup``, ``backpressure``, ``outbox``, ``state``, ``failover``).
Kinds with more than one implementation pick one with ``use:``; the implementation is the
registered tactic ``<kind>.<use>`` (``leader.redis``), so a plugin adds a backend by registering
``leader.etcd`` through ``forge_register_tactics``. Each kind's settings are validated against
the kind's schema, implementation settings against the implementation's schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.clock import Clock
    from forge_core.registry import TacticRegistry
    from forge_core.tactics import (
        BackpressureController,
        FailoverPolicy,
        FailureDetector,
        HeartbeatStatusMonitor,
        IdempotencyKeys,
        LeaderElector,
        LeaseBackend,
        Outbox,
        RetryPolicy,
        StateStore,
        WindowDeduplicator,
    )
    from forge_core.telemetry import Telemetry


@dataclass(frozen=True)
class TacticKind:
    """A registered tactic kind: its default implementation (``None`` if it has no choice)."""

    default_use: str | None = None


@dataclass
class TacticServices:
    """What an implementation factory gets besides its settings."""

    clock: Clock
    storage: Callable[[], Engine]
    seed: int | None
    plant: str
    data_dir: Path
    telemetry: Telemetry | None = None


class TacticConfigError(ForgeError):
    """A ``tactics.<kind>`` section asks for something that cannot be built."""


class Tactics:
    """Builds configured tactic instances; shared ones (a lease backend) once per runtime."""

    def __init__(self, registry: TacticRegistry, settings: dict[str, Any], services: TacticServices) -> None:
        self.registry = registry
        self.config = settings
        self.services = services
        self._shared: dict[str, Any] = {}

    # -- settings ----------------------------------------------------------------------------
    def settings(self, kind: str) -> dict[str, Any]:
        """The kind's settings: schema defaults overlaid with the manifest's values."""
        if kind not in self.registry:
            raise TacticConfigError(f"no tactic kind {kind!r} is registered; known: {', '.join(self.kinds())}")
        entry = self.registry.get(kind)
        merged = _defaults(entry.schema)
        merged.update(self.config.get(kind) or {})
        return merged

    def kinds(self) -> list[str]:
        return sorted(name for name in self.registry.names() if "." not in name)

    def implementation(self, kind: str) -> tuple[str, Callable[..., Any], dict[str, Any]]:
        """(use, factory, its settings) for ``kind``, with the implementation's settings checked."""
        settings = self.settings(kind)
        kind_entry = self.registry.get(kind)
        default = kind_entry.value.default_use if isinstance(kind_entry.value, TacticKind) else None
        use = settings.get("use") or default
        name = f"{kind}.{use}"
        if use is None or name not in self.registry:
            known = sorted(n.split(".", 1)[1] for n in self.registry.names() if n.startswith(kind + "."))
            raise TacticConfigError(
                f"tactics.{kind}.use: no implementation {use!r} is registered; available: {', '.join(known)}"
            )
        entry = self.registry.get(name)
        own = {k: v for k, v in settings.items() if k not in (kind_entry.schema or {}).get("properties", {})}
        impl_settings = {**_defaults(entry.schema), **own}
        if entry.schema:
            errors = sorted(jsonschema.Draft202012Validator(entry.schema).iter_errors(impl_settings), key=str)
            if errors:
                first = errors[0]
                where = ".".join(str(p) for p in first.absolute_path)
                raise TacticConfigError(f"tactics.{kind}{'.' + where if where else ''} (use: {use}): {first.message}")
        return str(use), entry.value, impl_settings

    def _build(self, kind: str) -> Any:
        use, factory, impl_settings = self.implementation(kind)
        try:
            return factory(impl_settings, self.services)
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
        return self.shared("leader", lambda: self._build("leader"))

    def elector(self, name: str, holder: str, **overrides: Any) -> LeaderElector:
        from forge_core.tactics.leader import LeaderElector

        s = {**self.settings("leader"), **overrides}
        return LeaderElector(self.lease_backend(), name, holder, self.services.clock, ttl=s["ttl"],
                             renew_every=s["renew_every"], retry_every=s["retry_every"],
                             safety_margin=s.get("safety_margin"))

    def state_store(self, namespace: str) -> StateStore:
        store = self.shared("state", lambda: self._build("state"))
        return store(namespace) if callable(store) else store

    def detector(self, interval: float) -> FailureDetector:
        _use, factory, impl_settings = self.implementation("detector")
        return factory({**impl_settings, "interval": interval}, self.services)

    def heartbeat_monitor(self, **overrides: Any) -> HeartbeatStatusMonitor:
        from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor

        s = {**self.settings("heartbeat"), **overrides}
        return HeartbeatStatusMonitor(
            s["interval"], detector=self.detector(s["interval"]), degraded_after=s["degraded_after"],
            error_rate_threshold=s["error_rate_threshold"], error_window=s["error_window"],
            recover_after=s["recover_after"],
        )

    def retry(self, **overrides: Any) -> RetryPolicy:
        from forge_core.tactics.retry import RetryPolicy

        s = {**self.settings("retry"), **overrides}
        name = s.pop("name", "retry")
        return RetryPolicy(s["max_attempts"], s["initial"], s["max_backoff"], s["multiplier"], s["jitter"],
                           s.get("deadline"), clock=self.services.clock, seed=self.services.seed,
                           on_retry=self._retry_observer(str(name)))

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

        s = {**self.settings("dedup"), **overrides}
        return WindowDeduplicator(s["window"], self.services.clock)

    def idempotency_keys(self, **overrides: Any) -> IdempotencyKeys:
        from forge_core.tactics.dedup import IdempotencyKeys

        s = {**self.settings("dedup"), **overrides}
        return IdempotencyKeys(s["idempotency_capacity"], s.get("idempotency_ttl"), clock=self.services.clock)

    def backpressure(self, on_change: Callable[[float, float, int], None] | None = None,
                     **overrides: Any) -> BackpressureController:
        from forge_core.tactics.backpressure import BackpressureController

        s = {**self.settings("backpressure"), **overrides}
        return BackpressureController(s["high"], s["low"], s["fast_interval"], s["slow_interval"], s["settle"],
                                      self.services.clock, on_change)

    def outbox(self, name: str, **overrides: Any) -> Outbox:
        from forge_core.tactics.outbox import Outbox

        s = {**self.settings("outbox"), **overrides}
        directory = Path(s.get("directory") or self.services.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return Outbox(directory / f"outbox-{name}.db", s["max_bytes"], s["high_watermark"], clock=self.services.clock)

    def failover(self, targets: list[str]) -> FailoverPolicy:
        _use, factory, impl_settings = self.implementation("failover")
        return factory({**impl_settings, "targets": list(targets)}, self.services)

    async def aclose(self) -> None:
        backend = self._shared.get("leader")
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()


def _defaults(schema: dict[str, Any] | None) -> dict[str, Any]:
    if not schema:
        return {}
    return {key: prop["default"] for key, prop in schema.get("properties", {}).items()
            if isinstance(prop, dict) and "default" in prop}
