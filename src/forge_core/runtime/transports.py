"""Which of the manifest's transports a process needs, and connecting one through the retry tactic."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from forge_core.errors import TransportNotReady
from forge_core.tactics.retry import RetryPolicy

if TYPE_CHECKING:
    from forge_core.clock import Clock
    from forge_core.manifest import Manifest
    from forge_core.plugins import Plugins
    from forge_core.transport.base import Transport

__all__ = ["connect_with_retry", "transports_needed"]

log = logging.getLogger("forge.runtime")


def transports_needed(manifest: Manifest, plugins: Plugins, components: Iterable[str]) -> set[str]:
    """The transports a process running ``components`` connects: the default one, each component's
    own and those its type says it uses (``uses_transports``: a bridge joins two), and both ends of
    every route. A process connects nothing it does not need, so ``--only`` children do not all
    open every broker."""
    needed = {manifest.default_transport}
    for name in components:
        component = manifest.components[name]
        needed.add(component.transport or manifest.default_transport)
        uses = getattr(plugins.components.get(component.type).value, "uses_transports", None)
        if uses is not None:
            needed.update(uses(dict(component.params), manifest.transports))
    for route in manifest.routes:
        needed.update((route.source, route.target))
    return needed


async def connect_with_retry(transport: Transport, clock: Clock, attempts: int) -> None:
    """Connect, retrying a broker that is not ready yet (``TransportNotReady``) with the retry
    tactic on the plant's clock: 0.5 s doubling to 10 s, at most ``attempts`` tries."""
    last: list[TransportNotReady] = []

    async def connect() -> None:
        try:
            await transport.connect()
        except TransportNotReady as exc:
            last[:] = [exc]
            raise

    def retrying(retries: int, sleep: float) -> None:
        log.warning("transport %s not ready (%s); retry %d/%d in %.1fs", transport.name, last[-1], retries,
                    attempts, sleep)

    policy = RetryPolicy(attempts, initial=0.5, max_backoff=10.0, multiplier=2.0, jitter=0.0,
                         retry_on=(TransportNotReady,), clock=clock, on_retry=retrying)
    try:
        await policy.acall(connect)
    except TransportNotReady as exc:
        raise TransportNotReady(
            f"transport {transport.name!r} not ready after {policy.stats.attempts} attempts: {exc}") from exc
