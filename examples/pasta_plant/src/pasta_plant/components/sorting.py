"""``pasta.sorting``: the sorting subsystem holds ``freshAmount`` (fresh units of every 10).

ChangeFreshAmount (a leader's command, fenced by the scheduler's epoch) moves it by a signed
step, clamped to ``min_amount``..``max_amount``; every change is confirmed with
FreshAmountChanged, which batch production follows.
"""

from __future__ import annotations

from typing import Any

from forge_core import Check, Component, Envelope, Publishes, subscribe
from pasta_plant.settings import SortingParams


class Sorting(Component):
    Params = SortingParams
    publishes = (Publishes("sched.fresh_amount_changed", topic="sorting/freshAmountChanged"),)
    params: SortingParams

    async def start(self) -> None:
        self.fresh_amount = self.params.fresh_amount
        self.changes: list[tuple[float, int, int]] = []  # (time, change, new amount)
        self.out_of_range = 0

    @subscribe("sorting/changeFreshAmount", types=["sched.change_fresh_amount"], fenced="scheduler")
    async def on_change(self, envelope: Envelope) -> None:
        low, high = self.params.min_amount, self.params.max_amount
        change = int(envelope.payload["change"])
        self.fresh_amount = max(low, min(high, self.fresh_amount + change))
        if not 0 <= self.fresh_amount <= 10:
            self.out_of_range += 1
        self.changes.append((self.ctx.clock.time(), change, self.fresh_amount))
        await self.ctx.publish("sorting/freshAmountChanged", "sched.fresh_amount_changed",
                               {"title": "FreshAmountChanged", "freshAmount": self.fresh_amount})

    def health(self) -> dict[str, Any]:
        return {"freshAmount": self.fresh_amount}

    def report(self) -> dict[str, Any]:
        amounts = [amount for _, _, amount in self.changes]
        return {"freshAmount": self.fresh_amount, "changes": len(self.changes),
                "range": [min(amounts), max(amounts)] if amounts else [self.fresh_amount] * 2,
                "stale_rejected": self.ctx.fence.rejected}

    def checks(self) -> list[Check]:
        return [Check("freshAmount stays within 0..10", self.out_of_range == 0,
                      f"{len(self.changes)} change(s); now {self.fresh_amount}")]
