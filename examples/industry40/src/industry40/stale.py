"""The invariant "stale-epoch status reports rejected", made to happen: a deposed MMS leader's
report, replayed with its old epoch once the PMS has accepted one of its successor's.

The MMS's ``mms.failover_event`` says each report it made, its epoch and whether the PMS accepted
it. When an accepted report carries a newer epoch than the last accepted one (a failover of the
MMS: chaos killed its leader), the last report the PMS accepted from the older epoch is sent once
more, epoch and lease unchanged, through the ``status_reporter`` tactic (the path the MMS reports
on): what a deposed replica that missed its deposition would do. The PMS has seen the newer epoch
on that lease, so it must refuse (``stale_epoch``: FAILED_PRECONDITION over gRPC). Accepted, the
old status would overwrite the new one.

The check fails when a replay was accepted, or when the run had a replay to make (an MMS failover
followed by an accepted report of the successor) and none was refused: a check that could not have
seen a stale report is not passed silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forge_core import Check

NAME = "stale-epoch status reports rejected (a deposed MMS leader's report replayed)"


@dataclass(frozen=True)
class Replay:
    factory: str
    status: str
    reason: str
    epoch: int
    newer: int


@dataclass
class StaleReplays:
    """Accepted reports per epoch in; the replays to make out; their answers counted."""

    newest: int | None = None  # the newest epoch of an accepted report
    last: dict[str, Any] | None = None  # the last accepted report of ``newest``
    possible: int = 0  # epoch changes with a report of the older epoch to replay
    sent: int = 0
    rejected: int = 0
    accepted: int = 0
    unanswered: int = 0
    problems: list[str] = field(default_factory=list)

    def reported(self, event: dict[str, Any]) -> Replay | None:
        """An ``mms.failover_event``; the replay to make when it shows the PMS accepted a newer epoch."""
        epoch, factory = event.get("epoch"), event.get("factoryId")
        if event.get("outcome") != "accepted" or not isinstance(epoch, int) or not isinstance(factory, str):
            return None
        previous, self_last = self.newest, self.last
        if previous is not None and epoch < previous:
            return None  # an older epoch's late event: the newest stays
        self.newest, self.last = epoch, event
        if previous is None or epoch == previous or self_last is None:
            return None
        self.possible += 1
        return Replay(
            str(self_last["factoryId"]), str(self_last.get("status")), str(self_last.get("reason", "")), previous, epoch
        )

    def answered(self, replay: Replay, accepted: bool, code: str, detail: str) -> None:
        self.sent += 1
        if accepted:
            self.accepted += 1
            self.problems.append(
                f"{replay.factory} {replay.status} with epoch {replay.epoch} accepted after epoch "
                f"{replay.newer}: {detail}"
            )
        elif code == "stale_epoch":
            self.rejected += 1
        else:
            self.problems.append(
                f"{replay.factory} {replay.status} with epoch {replay.epoch} refused as {code!r}, "
                f"not as a stale epoch: {detail}"
            )

    def lost(self, replay: Replay, why: str) -> None:
        self.unanswered += 1

    def check(self) -> Check:
        if self.accepted or (self.possible and not self.rejected):
            why = "; ".join(self.problems[:5]) or (
                f"chaos had {self.possible} deposed MMS epochs to replay but no replay was refused "
                f"({self.sent} answered, {self.unanswered} unanswered)"
            )
            return Check(NAME, False, why)
        return Check(
            NAME,
            True,
            f"{self.rejected} stale reports rejected, {self.accepted} accepted "
            f"({self.possible} MMS epochs deposed, {self.unanswered} replays unanswered)",
        )
