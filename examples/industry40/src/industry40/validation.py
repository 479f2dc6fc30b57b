"""``forge validate`` rules of the industry40 plugin: what the manifest says twice must agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_sched.settings import OrderSchedulerParams

from forge_core import ManifestProblem
from industry40.settings import FactoryParams

if TYPE_CHECKING:
    from forge_core.manifest.model import Manifest

__all__ = ["capacity_problems"]

SCHEDULER = "sched.order_scheduler"


def capacity_problems(manifest: Manifest) -> list[ManifestProblem]:
    """A simulated factory's capacity (orders it holds at once) is written in the factory's params and in
    the order scheduler's ``capacities``: a PMS that gives a factory more than the factory holds sends it
    orders it counts over capacity. (Less is allowed: a PMS may keep a reserve.)"""
    problems: list[ManifestProblem] = []
    held: dict[str, tuple[int, str]] = {}
    for name, spec in manifest.components.items():
        if spec is None or spec.type != "industry40.factory":
            continue
        try:
            params = FactoryParams.load(spec.params or {}, where=f"components.{name}.params")
        except Exception:  # a bad params block is reported by the schema check
            continue
        for replica in range(spec.replicas):
            factory = params.factory_id(replica)
            where = f"components.{name}.params." + (f"capacities.{factory}" if factory in params.capacities
                                                    else "capacity")
            held[factory] = (params.capacities.get(factory, params.capacity), where)
    for name, spec in manifest.components.items():
        if spec is None or spec.type != SCHEDULER or not held:
            continue
        try:
            scheduler = OrderSchedulerParams.load(spec.params or {}, where=f"components.{name}.params")
        except Exception:  # a bad params block is reported by the schema check
            continue
        given = scheduler.capacities
        for factory, (capacity, where) in sorted(held.items()):
            pms = given.get(factory, scheduler.default_capacity)
            if pms > capacity:
                at = f"components.{name}.params." + (f"capacities.{factory}" if factory in given
                                                     else "default_capacity")
                problems.append(ManifestProblem(at, f"{factory}: the order scheduler {name!r} gives it {pms} orders "
                                                    f"but the factory holds {capacity} ({where}); it would count "
                                                    f"{pms - capacity} over capacity: make them equal"))
    return problems
