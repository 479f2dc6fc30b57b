"""Components: units of plant behaviour (a machine, a scheduler, a monitor, a bridge).

Write a subclass of :class:`Component`, mark handler methods with :func:`subscribe`, do
periodic work with ``self.ctx.every(...)``, and register the class through the
``forge_register_components`` hook. The runtime creates one instance per replica, starts it,
supervises it (restart with backoff on a crash) and stops it.

Everything a component needs from the outside comes through its :class:`ComponentContext`:
the clock (never ``time.time()``), a seeded RNG, publishing, storage, logging.

The package's modules: ``subscriptions`` (``@subscribe``, fencing headers), ``context`` (what the
runtime gives an instance), ``component`` (the base class and its hook checks), ``periodic`` (``every``'s
loop for a coroutine function), ``timers`` (``timer``, ``every`` of a sync function and ``publish_soon``:
periodic work on timer callbacks, no task).
"""

from forge_core.components.component import Component
from forge_core.components.context import ComponentContext, ComponentFailed
from forge_core.components.subscriptions import (
    _SUBSCRIBE_ATTR,
    EPOCH_HEADER,
    LEASE_HEADER,
    SubscriptionSpec,
    epoch_of,
    subscribe,
)
from forge_core.components.timers import PeriodicTimer

__all__ = ["EPOCH_HEADER", "LEASE_HEADER", "_SUBSCRIBE_ATTR", "Component", "ComponentContext", "ComponentFailed",
           "PeriodicTimer", "SubscriptionSpec", "epoch_of", "subscribe"]
