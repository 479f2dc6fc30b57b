"""The capacity query: how much room the PMS has on the other factories, asked through the same
``status_reporter`` tactic the reports go through (``capacity()``: the bus query in one process,
``GetFactoryCapacity`` over gRPC across processes).

The failover manager asks it on DOWN (once the PMS answered the report, so it never competes with
the move: the answer goes into the DOWN's failover event) and before it drains a factory at HIGH risk (the drain needs free capacity
elsewhere). A query is bounded by ``timeout`` and never raises: a failure (no answer, no PMS, a
reporter without ``capacity()``) is a :class:`CapacityView` with ``error`` set, and the drain falls
back to its stand-in. The newest answer is kept ``max_age`` s for the drain decisions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from forge_core import ComponentContext

from forge_mms.tactics.status_reporter import FactoryCapacity

__all__ = ["CANCELLED", "CapacityQuery", "CapacityView"]

#: The error of a query the component's stop cancelled (no decision is taken on it).
CANCELLED = "the query was cancelled"


@dataclass(frozen=True)
class CapacityView:
    """What one capacity query said (``factories``) or why it said nothing (``error``), at ``at``."""

    at: float
    factories: tuple[FactoryCapacity, ...] | None
    error: str = ""
    #: factories whose room does not count (the drain's: those at HIGH risk), for :meth:`event`
    exclude: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.factories is not None

    def of(self, factory: str) -> FactoryCapacity | None:
        return next((f for f in self.factories or () if f.factory_id == factory), None)

    def free_elsewhere(self, factory: str, exclude: Collection[str] = ()) -> int:
        """Free capacity on the factories UP at the PMS other than ``factory``, ``exclude`` and
        :attr:`exclude` (the drain leaves out factories at HIGH risk); one over its capacity counts 0."""
        return sum(
            max(0, f.free)
            for f in self.factories or ()
            if f.status == "UP"
            and f.factory_id != factory
            and f.factory_id not in exclude
            and f.factory_id not in self.exclude
        )

    def event(self, factory: str) -> dict[str, Any]:
        """The failover event's ``capacity``: free capacity elsewhere, the factory's load (orders it
        holds) and whether they fit. Answered after the PMS applied a DOWN (the factory DOWN there, its
        orders moved), they fit when room is left (the PMS fills the room before it sends orders back to
        pending); with none left whether all fit is the PMS's count to tell (``fits`` null)."""
        if not self.ok:
            return {"freeElsewhere": None, "load": None, "fits": None, "detail": f"capacity query failed: {self.error}"}
        free = self.free_elsewhere(factory)
        mine = self.of(factory)
        load = mine.load if mine is not None else 0
        if mine is not None and mine.status == "DOWN":  # the answer came after the PMS moved its orders
            fits: bool | None = True if free > 0 else None
            seen = "DOWN at the PMS (orders moved)"
        else:
            fits = load <= free
            seen = f"{mine.status} at the PMS" if mine is not None else "unknown to the PMS"
        return {
            "freeElsewhere": free,
            "load": load,
            "fits": fits,
            "detail": f"{free} free elsewhere; {factory} holds {load}, {seen}",
        }


class CapacityQuery:
    """One query at a time through ``reporter.capacity()``; :attr:`latest` is the newest view."""

    def __init__(self, ctx: ComponentContext, reporter: Any, *, timeout: float, max_age: float) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.timeout = timeout
        self.max_age = max_age
        self.latest: CapacityView | None = None
        self._asking: asyncio.Future[CapacityView] | None = None
        self.stats = {"queries": 0, "failed": 0}

    def fresh(self) -> CapacityView | None:
        """The newest view if younger than ``max_age`` s."""
        latest = self.latest
        if latest is None or self.ctx.clock.time() - latest.at > self.max_age:
            return None
        return latest

    @property
    def supported(self) -> bool:
        """The ``status_reporter`` answers capacity queries (has ``capacity()``)."""
        return callable(getattr(self.reporter, "capacity", None))

    @property
    def asking(self) -> bool:
        return self._asking is not None and not self._asking.done()

    def start(self, then: Callable[[CapacityView], None] | None = None) -> asyncio.Future[CapacityView]:
        """The query in flight, or a new one (a task of the component); ``then(view)`` once it answered."""
        if self._asking is None or self._asking.done():
            self._asking = asyncio.get_running_loop().create_future()
            self.ctx.spawn(self._fill(self._asking), name="capacity")
        if then is not None:
            self._asking.add_done_callback(lambda done: then(done.result()) if not done.cancelled() else None)
        return self._asking

    async def _fill(self, answer: asyncio.Future[CapacityView]) -> None:
        try:
            view = await self.ask()
        except BaseException:  # stopped mid-query: whoever waits for it gets a failed view, not a hang
            if not answer.done():
                answer.set_result(CapacityView(self.ctx.clock.time(), None, CANCELLED))
            raise
        if not answer.done():
            answer.set_result(view)

    async def ask(self) -> CapacityView:
        """Query now, within ``timeout`` s; a failure is a view with ``error`` (never raised)."""
        self.stats["queries"] += 1
        read = getattr(self.reporter, "capacity", None)
        factories: Sequence[Any] | None = None
        error = ""
        if read is None:
            error = f"the status_reporter ({type(self.reporter).__name__}) answers no capacity query"
        else:
            bound = asyncio.timeout(self.timeout)
            try:
                async with bound:
                    factories = await read()
            except TimeoutError as exc:  # ours, or the reporter's own (shorter) timeout
                error = f"no answer within {self.timeout} s" if bound.expired() else f"TimeoutError: {exc}"
            except Exception as exc:  # noqa: BLE001 - whatever the reporter raised: the fallback decides
                error = f"{type(exc).__name__}: {exc}"
        if factories is None:
            self.stats["failed"] += 1
            view = CapacityView(self.ctx.clock.time(), None, error)
        else:
            view = CapacityView(
                self.ctx.clock.time(),
                tuple(FactoryCapacity(f.factory_id, f.status, f.capacity, f.load, f.free) for f in factories),
            )
        self.latest = view
        return view
