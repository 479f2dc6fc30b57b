"""The scheduler's view of the machines: one :class:`Machine` each, and the A/B counts kept as
counters so balance never needs a scan on the hot path (whole-table scans are for the health check).

Pure bookkeeping: the caller passes the time and decides what to send.
"""

from __future__ import annotations

from typing import Any

BLADES = ("A", "B")


def other(blade: str) -> str:
    """The other blade type."""
    return "B" if blade == "A" else "A"


class Machine:
    """What the scheduler knows of one cutting machine."""

    __slots__ = ("assigned", "blade", "confirmed", "id", "last_beat", "pending", "pending_since")

    def __init__(self, machine_id: int, last_beat: float) -> None:
        self.id = machine_id
        self.last_beat = last_beat
        #: The blade it has or was told to take (None: WAITING).
        self.blade: str | None = None
        #: True once a heartbeat showed ``blade``; False while an assign/swap is unconfirmed.
        self.confirmed = False
        #: "assign" / "swap" while a command is unconfirmed, with when it was sent.
        self.pending: str | None = None
        self.pending_since = 0.0
        #: An AssignBlade went to it and no swap/recovery/retry has happened since (for the check).
        self.assigned = False

    @property
    def state(self) -> str:
        if self.pending == "swap":
            return "SWAPPING"
        if self.blade is None:
            return "WAITING"
        return "WORKING" if self.confirmed else "ASSIGNED"

    def to_json(self) -> dict[str, Any]:
        return {"blade": self.blade, "last_beat": self.last_beat, "state": self.state, "confirmed": self.confirmed,
                "pending": self.pending, "pending_since": self.pending_since, "assigned": self.assigned}

    @classmethod
    def from_json(cls, machine_id: int, doc: dict[str, Any]) -> Machine:
        m = cls(machine_id, float(doc.get("last_beat", 0.0)))
        m.blade = doc.get("blade")
        m.confirmed = bool(doc.get("confirmed", False))
        m.pending = doc.get("pending")
        m.pending_since = float(doc.get("pending_since", 0.0))
        m.assigned = bool(doc.get("assigned", False))
        return m


class MachineTable:
    """The machines by id, the blade counts, the machines waiting for a blade, and the double
    assignments seen (a machine assigned again without a swap, recovery or retry in between)."""

    __slots__ = ("counts", "double_assignments", "machines", "waiting")

    def __init__(self) -> None:
        self.machines: dict[int, Machine] = {}
        self.counts = {"A": 0, "B": 0}
        self.waiting: set[int] = set()
        self.double_assignments: list[int] = []

    def set_blade(self, m: Machine, blade: str | None, *, confirmed: bool) -> None:
        """Give ``m`` a blade (None: none), keeping the counts; clears any pending command."""
        if m.blade is not None:
            self.counts[m.blade] -= 1
        if blade is not None:
            self.counts[blade] += 1
        m.blade = blade
        m.confirmed = confirmed
        m.pending = None

    def remove(self, mid: int) -> Machine | None:
        """Forget machine ``mid`` (dead or silent); None if it was not known."""
        m = self.machines.pop(mid, None)
        if m is None:
            return None
        if m.blade is not None:
            self.counts[m.blade] -= 1
        self.waiting.discard(mid)
        return m

    def note_assignment(self, m: Machine) -> None:
        if m.assigned:
            self.double_assignments.append(m.id)
        m.assigned = True

    def command_seen(self, mid: int, blade: str, kind: str, now: float) -> None:
        """Mirror an assign (``kind`` "assign") or swap ("swap") another scheduler sent."""
        m = self.machines.get(mid)
        if m is None:
            m = self.machines[mid] = Machine(mid, now)
        if kind == "assign":
            self.note_assignment(m)
        else:
            m.assigned = False
        self.set_blade(m, blade, confirmed=False)
        m.pending, m.pending_since = kind, now
        self.waiting.discard(mid)

    def expire_unconfirmed(self, now: float, confirm_timeout: float) -> int:
        """Time out commands unconfirmed for ``confirm_timeout``; returns the assignments to retry.

        An assignment never confirmed makes the machine wait again (a retry is allowed); an
        unconfirmed swap is dropped (the heartbeats are believed from then on)."""
        retries = 0
        for m in self.machines.values():
            if m.pending is not None and now - m.pending_since >= confirm_timeout and not m.confirmed:
                if m.pending == "assign":
                    retries += 1
                    m.assigned = False
                    self.set_blade(m, None, confirmed=False)
                    self.waiting.add(m.id)
                else:
                    m.pending = None
        return retries

    def plan_assignments(self, now: float) -> list[tuple[Machine, str]]:
        """Give each waiting machine the blade that keeps A and B balanced; empties ``waiting``."""
        plan: list[tuple[Machine, str]] = []
        for mid in sorted(self.waiting):
            m = self.machines.get(mid)
            if m is None or m.blade is not None:
                continue
            blade = "A" if self.counts["A"] <= self.counts["B"] else "B"
            self.note_assignment(m)
            self.set_blade(m, blade, confirmed=False)
            m.pending, m.pending_since = "assign", now
            plan.append((m, blade))
        self.waiting.clear()
        return plan

    def swap_candidate(self, blade: str) -> Machine | None:
        """The machine with ``blade`` and the most recent heartbeat, not already mid-command."""
        best: Machine | None = None
        for m in self.machines.values():
            if m.blade == blade and m.pending is None and (best is None or m.last_beat > best.last_beat):
                best = m
        return best

    def plan_swap(self, m: Machine, blade: str, now: float) -> None:
        m.assigned = False
        self.set_blade(m, blade, confirmed=False)
        m.pending, m.pending_since = "swap", now

    def plan_rebalance(self, now: float) -> list[tuple[Machine, str]]:
        """While one blade type outnumbers the other by more than one, plan a machine's swap over."""
        swaps: list[tuple[Machine, str]] = []
        while True:
            high = "A" if self.counts["A"] > self.counts["B"] else "B"
            missing = other(high)
            if self.counts[missing] >= self.counts[high] - 1:
                break
            m = self.swap_candidate(high)
            if m is None:
                break
            self.plan_swap(m, missing, now)
            swaps.append((m, missing))
        return swaps

    def merge(self, saved: dict[str, Any]) -> int:
        """Take a predecessor's machines (``{id: Machine.to_json()}``); what this table heard later
        (newer beats) wins per field. Returns how many machines were resumed from ``saved``."""
        resumed = 0
        for key, doc in saved.items():
            mid = int(key)
            theirs = Machine.from_json(mid, doc)
            mine = self.machines.get(mid)
            if mine is None:
                self.machines[mid] = theirs
                if theirs.blade is not None:
                    self.counts[theirs.blade] += 1
                else:
                    self.waiting.add(mid)
                resumed += 1
                continue
            mine.last_beat = max(mine.last_beat, theirs.last_beat)
            mine.assigned = mine.assigned or theirs.assigned
            if mine.blade is None and theirs.blade is not None and not mine.confirmed:
                # assigned by the predecessor; this replica has not yet heard it confirmed
                self.set_blade(mine, theirs.blade, confirmed=theirs.confirmed)
                mine.pending, mine.pending_since = theirs.pending, theirs.pending_since
                self.waiting.discard(mid)
                resumed += 1
        return resumed

    def to_json(self) -> dict[str, Any]:
        return {str(mid): m.to_json() for mid, m in self.machines.items()}
