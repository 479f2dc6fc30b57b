"""The runtime's garbage-collector policy: under a real clock, what exists once a plant has started is
frozen out of the collector's passes (``gc.freeze()``), and given back at stop.

The start-up heap (modules, schemas, tables, the components and what they hold) lives as long as the
plant; a full collection walked all of it each time (industry40: 169,000 objects, 80-236 ms a pass, a
stall of the event loop; a Kafka batch round spent 61 ms in them, 10 ms frozen). Frozen, a pass walks
only what was made since. Objects made later are collected as usual; a start-up object that becomes
garbage while frozen (a component's first life, killed or crashed and started again) is freed at the
plant's stop (``gc.unfreeze()``), or never if the process ends first.

Under a virtual clock nothing is frozen: a loop stall costs no simulated time, the instructions of a
simulated quarter hour of industry40 moved by 0.02 %, and a simulation (a test above all) kills and
revives components and leaves plants unstopped, whose objects must stay collectable.

``FORGE_GC_FREEZE=0`` in the environment turns the freeze off (docs/runtime.md).
"""

from __future__ import annotations

import gc
import os

__all__ = ["ENV", "freeze_enabled", "freeze_started_heap", "unfreeze"]

#: the environment variable that turns the freeze off: ``0``, ``false``, ``no`` or ``off``
ENV = "FORGE_GC_FREEZE"


def freeze_enabled() -> bool:
    """Whether the runtime freezes the started heap (on unless ``FORGE_GC_FREEZE`` says off)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def freeze_started_heap(*, virtual: bool) -> bool:
    """Freeze what exists now, under a real clock when the policy is on; returns whether it froze (pass
    it to :func:`unfreeze`)."""
    if virtual or not freeze_enabled():
        return False
    gc.freeze()
    return True


def unfreeze(frozen: bool) -> None:
    """Give the frozen objects back to the collector (a stopped plant's objects are collectable again:
    tests run many plants in one process)."""
    if frozen:
        gc.unfreeze()
