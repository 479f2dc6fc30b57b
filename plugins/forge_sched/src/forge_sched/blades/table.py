"""The scheduler's view of the machines: one :class:`Machine` each, and the A/B counts kept as
counters so balance never needs a scan on the hot path (whole-table scans are for the health check).

Pure bookkeeping: the caller passes the time and decides what to send.

Machine ids are integers 0..2**63-1 (the heartbeat schema, hardened by forge-core, admits no
other); a saved record is checked as strictly when a successor takes it over (:meth:`MachineTable.merge`).
"""

from __future__ import annotations

import math
import re
from typing import Any

BLADES = ("A", "B")
#: The largest machine id (int64, as the schemas' integers).
MAX_MACHINE_ID = 2**63 - 1
_PENDING = (None, "assign", "swap")
_DIGITS = re.compile(r"[0-9]{1,19}")


def machine_id(key: Any) -> int:
    """A machine id from a saved state's key (``"7"``), or ``ValueError`` saying what is wrong."""
    if type(key) is int:
        mid = key
    elif isinstance(key, str) and _DIGITS.fullmatch(key):
        mid = int(key)
    else:
        raise ValueError(f"machine id {str(key)[:40]!r} is not an integer 0..{MAX_MACHINE_ID}")
    if not 0 <= mid <= MAX_MACHINE_ID:
        raise ValueError(f"machine id {mid} is not an integer 0..{MAX_MACHINE_ID}")
    return mid


def _time(doc: dict[str, Any], name: str) -> float:
    value = doc.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} {str(value)[:40]!r} is not a finite number")
    return float(value)


def _flag(doc: dict[str, Any], name: str) -> bool:
    value = doc.get(name, False)
    if type(value) is not bool:
        raise ValueError(f"{name} {str(value)[:40]!r} is not true or false")
    return value


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
    def from_json(cls, machine_id: int, doc: Any) -> Machine:
        """The machine a :meth:`to_json` record describes; ``ValueError`` saying what is wrong if
        it is not one (a state from an older version, or corrupted in the store)."""
        if not isinstance(doc, dict):
            raise ValueError(f"the record is {type(doc).__name__}, not an object")  # noqa: TRY004 - one error kind for a bad record
        m = cls(machine_id, _time(doc, "last_beat"))
        blade, pending = doc.get("blade"), doc.get("pending")
        if blade is not None and blade not in BLADES:
            raise ValueError(f"blade {str(blade)[:40]!r} is not one of {', '.join(BLADES)} or null")
        if pending not in _PENDING:
            raise ValueError(f"pending {str(pending)[:40]!r} is not 'assign', 'swap' or null")
        m.blade = blade
        m.confirmed = _flag(doc, "confirmed")
        m.pending = pending
        m.pending_since = _time(doc, "pending_since")
        m.assigned = _flag(doc, "assigned")
        return m


class MachineTable:
    """The machines by id, the blade counts, the machines waiting for a blade, and the double
    assignments this scheduler made (a machine assigned again without a swap, recovery or retry in
    between, also after another scheduler's assignment it saw)."""

    __slots__ = ("counts", "double_assignments", "machines", "mirrored_reassignments", "waiting")

    def __init__(self) -> None:
        self.machines: dict[int, Machine] = {}
        self.counts = {"A": 0, "B": 0}
        self.waiting: set[int] = set()
        self.double_assignments: list[int] = []
        self.mirrored_reassignments = 0  # another scheduler's assign of a machine assigned before, seen

    def set_blade(self, m: Machine, blade: str | None, *, confirmed: bool) -> None:
        """Give ``m`` a blade (None: none), keeping the counts; clears any pending command."""
        if m.blade is not None:
            self.counts[m.blade] -= 1
        if blade is not None:
            self.counts[blade] += 1
        m.blade = blade
        m.confirmed = confirmed
        m.pending = None

    def beat(self, mid: int, blade: str | None, now: float, confirm_timeout: float) -> str | None:
        """A machine's heartbeat (the hot path: O(1)). Returns what it means for the scheduler:
        ``"waiting"`` (it needs a blade), ``"recovery"`` (it had one and lost it: went through
        RECOVERY), ``"retry"`` (an assignment never arrived) - each also waiting - or None."""
        m = self.machines.get(mid)
        if m is None:
            m = self.machines[mid] = Machine(mid, now)
            if blade is None:
                self.waiting.add(mid)
                return "waiting"
            self.set_blade(m, blade, confirmed=True)
            return None
        m.last_beat = now
        in_flight = m.pending is not None and now - m.pending_since < confirm_timeout
        if blade is not None:
            if blade == m.blade:
                if not m.confirmed:
                    m.confirmed, m.pending = True, None
            elif not in_flight:  # else still swapping (or assigned on its way): the beat predates it
                self.set_blade(m, blade, confirmed=True)
                self.waiting.discard(mid)
            return None
        if m.blade is None:  # no blade: WAITING (or mid-swap, or the assignment is on its way)
            self.waiting.add(mid)
            return "waiting"
        if in_flight:
            return None
        event = "recovery" if m.confirmed else "retry" if m.pending == "assign" else "waiting"
        self.set_blade(m, None, confirmed=False)
        m.assigned = False
        self.waiting.add(mid)
        return event

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
            # Not judged a double here: the recovery beat that allowed this assignment arrives on
            # another topic, in no order against it (a restarted standby replays both). The sender
            # judges its own (plan_assignments), the machines theirs (a command on a cutting blade).
            self.mirrored_reassignments += m.assigned
            m.assigned = True
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

    def merge(self, saved: dict[str, Any], *, rejected: list[tuple[str, str]] | None = None) -> int:
        """Take a predecessor's machines (``{id: Machine.to_json()}``); what this table heard later
        (newer beats) wins per field. Returns how many machines were resumed from ``saved``.

        A record that is no machine (its id no integer 0..2**63-1, a field of the wrong kind) is
        skipped, never raised: a successor that crashed on it would crash again on every restart
        and never lead. Each is appended to ``rejected`` as ``("machines/<key>", why)``."""
        resumed = 0
        for key, doc in saved.items():
            try:
                mid = machine_id(key)
                theirs = Machine.from_json(mid, doc)
            except ValueError as exc:
                if rejected is not None:
                    rejected.append((f"machines/{key}", str(exc)))
                continue
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
