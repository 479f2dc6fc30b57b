"""Factories the PMS holds that the monitor never heard from.

The PMS holds the factories of its configuration UP before any of them beats, so one stopped before
its first beat would keep its orders forever: with no beat there is nothing to judge. A DOWN timeout
after the monitor started, the replica that leads asks the PMS which factories it holds (the capacity
query, forge_mms.maintenance.capacity); each one UP or DEGRADED there that the fault detector does not
track is tracked as if it had beaten when the replica started (``FaultDetector.restore``), so the next
check judges it DOWN. Asked once per replica; a failed query is asked again ``max_age`` s later, except
when the ``status_reporter`` answers no capacity query at all: that is said once, and not asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from forge_core.tactics import Status

from forge_mms.maintenance.capacity import CANCELLED, CapacityQuery, CapacityView
from forge_mms.monitoring.faults import FaultDetector

__all__ = ["UnheardFactories"]


class UnheardFactories:
    def __init__(self, faults: FaultDetector, capacity: CapacityQuery, *, started: float, name: str,
                 log: logging.Logger | logging.LoggerAdapter, tracked: Callable[[], None]) -> None:
        self.faults = faults
        self.capacity = capacity
        self.name = name
        self.log = log
        self._tracked = tracked  # the monitor's: its next check judges them
        self._started = started
        #: when to ask (None: asked, or asking)
        self.ask_after: float | None = started + faults.down_after

    def ask(self) -> None:
        """Ask the PMS now (the monitor's check calls this, leading, once ``ask_after`` has come)."""
        self.ask_after = None

        def answered(view: CapacityView) -> None:
            if view.ok:
                self.track(view)
            elif not self.capacity.supported:  # asking again cannot help
                self.log.warning("%s: %s: a factory the PMS holds that never beat is not judged", self.name,
                                 view.error)
            elif view.error != CANCELLED:
                self.ask_after = self.capacity.ctx.clock.time() + self.capacity.max_age

        self.capacity.start(then=answered)

    def track(self, view: CapacityView) -> list[str]:
        """Track the factories of ``view`` that are not DOWN at the PMS and that the detector does not know."""
        unheard = [held for held in view.factories or ()
                   if held.status != str(Status.DOWN) and self.faults.status(held.factory_id) is None]
        for held in unheard:
            self.log.warning("%s: %s is %s at the PMS but never beat since %s started: judged silent from then "
                             "(DOWN once the silence rule has passed)", self.name, held.factory_id, held.status,
                             self.name)
            self.faults.restore(held.factory_id, held.status, self._started)
        if unheard:
            self._tracked()
        return [held.factory_id for held in unheard]
