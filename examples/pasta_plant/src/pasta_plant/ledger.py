"""What the plant's components record across kills and restarts, for the run's report and checks.

A killed instance is gone (SIGKILL semantics), and a restarted one starts fresh; what an
invariant needs over the whole run is kept here, one ledger per runtime
(``ctx.tactics.shared``). It stands in for what a real machine would keep on its own disk.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core import ComponentContext


@dataclass
class MachineRecord:
    machine_id: int
    state: str = "INITIALIZING"
    blade: str | None = None
    last_beat: float | None = None
    alive: bool = True
    #: newest scheduler epoch this machine has seen (restored into a restarted instance's fence)
    newest_epoch: int | None = None
    #: (time, epoch, command type) of every command applied
    applied: list[tuple[float, int, str]] = field(default_factory=list)
    assigns: int = 0
    swaps: int = 0
    kills: int = 0
    ignored: int = 0
    duplicates: int = 0
    #: (time, detail) of every AssignBlade received while already WORKING
    double_assigns: list[tuple[float, str]] = field(default_factory=list)
    contexts: list[ComponentContext] = field(default_factory=list)

    @property
    def rejected_stale(self) -> int:
        return sum(ctx.fence.rejected for ctx in self.contexts)

    @property
    def rejected_unstamped(self) -> int:
        return sum(ctx.unfenced_rejected for ctx in self.contexts)

    def epochs_monotonic(self) -> bool:
        epochs = [epoch for _, epoch, _ in self.applied]
        return all(a <= b for a, b in itertools.pairwise(epochs))


@dataclass
class PlantLedger:
    machines: dict[int, MachineRecord] = field(default_factory=dict)
    stock_reset: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def machine(self, machine_id: int) -> MachineRecord:
        record = self.machines.get(machine_id)
        if record is None:
            record = self.machines[machine_id] = MachineRecord(machine_id)
        return record


def ledger(ctx: ComponentContext) -> PlantLedger:
    """The runtime's ledger (one per runtime; a plain one when the runtime has no tactics)."""
    try:
        return ctx.tactics.shared("pasta.ledger", PlantLedger)
    except RuntimeError:
        return ctx.services.setdefault("pasta.ledger", PlantLedger())
