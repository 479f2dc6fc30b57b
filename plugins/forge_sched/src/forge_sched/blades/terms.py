"""A scheduler's terms as leader, for its report: ``{epoch, from, to, sent}`` each.

A process's report is taken when *it* stops. In a multi-process plant every process gets SIGTERM
at once but handles it when the OS runs it: the leader reports ``leading: True`` and releases the
lease; the standby, not stopped yet, is elected within ``retry_every`` and later reports
``leading: True`` too. Two bare flags taken at two moments look like split-brain; terms with
their epoch and times can be compared (a plant check: distinct epochs, no overlap).
"""

from __future__ import annotations

from typing import Any


class Terms:
    """The latest ``keep`` terms; ``sent`` counts the machine commands sent in each."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self.terms: list[dict[str, Any]] = []

    def begin(self, epoch: int, now: float, sent: int) -> None:
        self.terms = [*self.terms[-(self.keep - 1):], {"epoch": epoch, "from": now, "to": None, "sent": -sent}]

    def end(self, now: float, sent: int) -> None:
        if self.terms and self.terms[-1]["to"] is None:
            self.terms[-1].update(to=now, sent=self.terms[-1]["sent"] + sent)

    def view(self, sent: int, now: float) -> list[dict[str, Any]]:
        """The terms, the open one's ``sent`` counted up to ``now`` and ``leading_at: now``: a report
        is taken before the stop releases the lease, so an open term ends some time after ``now``,
        and a standby elected after the release starts later still (not an overlap)."""
        return [t if t["to"] is not None else {**t, "sent": t["sent"] + sent, "leading_at": now} for t in self.terms]
