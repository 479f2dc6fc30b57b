"""What the plant's components record across kills and restarts, for the run's report and checks.

A killed instance is gone (SIGKILL semantics), and a restarted one starts fresh; what an
invariant needs over the whole run is kept here, one ledger per runtime
(``ctx.tactics.shared``). It stands in for what a real machine would keep on its own disk.

The ledger keeps data, never a dead instance: a record holds the context of the machine's
current incarnation only, and folds its counters into totals when the next one attaches, so a
chaos week of kills leaves three contexts behind, not thousands (issue 11, section 6).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core import ComponentContext


class AppliedLog:
    """The commands a machine applied, as ``(time, epoch, command type)``: every one counted and
    checked for going back in epoch as it is appended, the latest ``keep`` kept, so a week of
    commands costs a few kilobytes instead of growing with the run."""

    def __init__(self, keep: int = 64) -> None:
        self.recent: deque[tuple[float, int, str]] = deque(maxlen=keep)
        self.count = 0
        self.newest: int | None = None
        #: the first (time, epoch, command type) applied with an epoch older than one before it
        self.first_regression: tuple[float, int, str] | None = None

    def append(self, entry: tuple[float, int, str]) -> None:
        epoch = entry[1]
        if self.newest is not None and epoch < self.newest:
            self.first_regression = self.first_regression or entry
        else:
            self.newest = epoch
        self.count += 1
        self.recent.append(entry)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[float, int, str]]:
        return iter(self.recent)


@dataclass
class MachineRecord:
    machine_id: int
    state: str = "INITIALIZING"
    blade: str | None = None
    last_beat: float | None = None
    alive: bool = True
    #: newest scheduler epoch this machine has seen (restored into a restarted instance's fence)
    newest_epoch: int | None = None
    #: (time, epoch, command type) of the commands applied: all counted, the latest kept
    applied: AppliedLog = field(default_factory=AppliedLog)
    assigns: int = 0
    swaps: int = 0
    kills: int = 0
    ignored: int = 0
    duplicates: int = 0
    #: (time, detail) of every AssignBlade received while already WORKING
    double_assigns: list[tuple[float, str]] = field(default_factory=list)
    #: how many instances (lives) this machine has had
    incarnations: int = 0
    #: stale / unstamped / forged commands the earlier incarnations' fences rejected
    retired_stale: int = 0
    retired_unstamped: int = 0
    retired_forged: int = 0
    #: the epochs of the commands for this machine its fences accepted, over all its lives (one per
    #: leader term: as many as the lease's grants), for the run's epoch check
    accepted_epochs: set[int] = field(default_factory=set)
    #: the current incarnation (read for its live counters); replaced, never accumulated
    current: ComponentContext | None = field(default=None, repr=False)

    def attach(self, ctx: ComponentContext) -> None:
        """A new life of this machine: keep the previous one's counters, let go of its context."""
        previous = self.current
        if previous is not None and previous is not ctx:
            self.retired_stale += previous.fence.rejected
            self.retired_unstamped += previous.unfenced_rejected
            self.retired_forged += previous.fence.forged
        self.current = ctx
        self.incarnations += 1

    @property
    def rejected_stale(self) -> int:
        return self.retired_stale + (self.current.fence.rejected if self.current is not None else 0)

    @property
    def rejected_unstamped(self) -> int:
        return self.retired_unstamped + (self.current.unfenced_rejected if self.current is not None else 0)

    @property
    def forged_dropped(self) -> int:
        return self.retired_forged + (self.current.fence.forged if self.current is not None else 0)

    def accepted(self, epoch: int | None) -> None:
        """A command for this machine passed its fence with ``epoch``."""
        if epoch is not None:
            self.accepted_epochs.add(epoch)

    def epochs_monotonic(self) -> bool:
        return self.applied.first_regression is None


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
