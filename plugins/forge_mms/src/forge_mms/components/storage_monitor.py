"""``mms.storage_monitor``: stock levels out of band (20 % / 80 % by default) raise an alert.

Every ``interval`` it takes the four stock levels (blade A/B × fresh/dry, percent) — the latest
``mms.storage_levels`` message, or summed from the ``batches`` table — and when any level is
below ``low`` or above ``high`` publishes ``alert_type`` (``mms.storage_alert``) with all four
levels, but only if some level moved more than ``min_change`` points since the last alert (so a
stuck level does not flood a scheduler, whose reactions have a cooldown anyway).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa
from forge_core import Check, Component, Envelope, Publishes, Subscribes

from forge_mms.settings import StorageMonitorParams

#: The message types this component speaks (schemas in ``forge_mms/schemas``).
STORAGE_LEVELS = "mms.storage_levels"
STORAGE_ALERT = "mms.storage_alert"

LEVELS = ("aFresh", "aDry", "bFresh", "bDry")


class StorageMonitor(Component):
    """Alert when a stock level leaves the low..high band."""

    Params = StorageMonitorParams
    params: StorageMonitorParams
    publishes = (Publishes((), param="alert_topic", types_param="alert_type"),)
    subscribes = (Subscribes(STORAGE_LEVELS, param="levels_topic", description="source: messages only"),)

    async def start(self) -> None:
        p = self.params
        self.low, self.high = p.low, p.high
        self.min_change = p.min_change
        self.source = p.source
        self.capacity = p.capacity
        self.table = p.table
        self.alert_topic = p.alert_topic
        self.alert_type = p.alert_type
        self.levels: dict[str, float] | None = None
        self.last_alert: dict[str, float] | None = None
        self.stats = {"evaluations": 0, "alerts": 0, "suppressed": 0, "levels_received": 0, "database_errors": 0}
        self.alerts_in_band = 0
        if self.source == "messages":
            await self.ctx.subscribe(p.levels_topic, self.on_levels, types=[STORAGE_LEVELS])
        self.ctx.every(p.interval, self.evaluate, name="evaluate")

    def on_levels(self, envelope: Envelope) -> None:
        self.stats["levels_received"] += 1
        self.levels = {k: float(envelope.payload[k]) for k in LEVELS}

    def read_database(self) -> dict[str, float] | None:
        """Stock per category from the batches table, as percent of ``capacity``."""
        stock = dict.fromkeys(LEVELS, 0.0)
        query = sa.text(f"SELECT blade_type, is_fresh, COALESCE(SUM(in_stock), 0) FROM {self.table} "
                        "GROUP BY blade_type, is_fresh")
        try:
            with self.ctx.storage.connect() as conn:
                rows = conn.execute(query).all()
        except sa.exc.SQLAlchemyError as exc:
            self.stats["database_errors"] += 1
            self.ctx.log.warning("%s: cannot read table %r from the plant's storage: %s", self.name, self.table,
                                 exc.__class__.__name__ + ": " + str(exc).splitlines()[0])
            return None
        for blade, fresh, total in rows:
            key = f"{str(blade).lower()}{'Fresh' if fresh else 'Dry'}"
            if key in stock:
                stock[key] += float(total)
        return {k: round(v / self.capacity * 100.0, 3) for k, v in stock.items()}

    def out_of_band(self, levels: dict[str, float]) -> list[str]:
        return [k for k in LEVELS if levels[k] < self.low or levels[k] > self.high]

    def evaluate(self) -> Awaitable[None] | None:
        """Judge the levels; an alert to publish is returned, to await (``ctx.every`` calls this on a timer
        callback: sync when there is nothing to send)."""
        levels = self.read_database() if self.source == "database" else self.levels
        if levels is None:
            return None
        self.stats["evaluations"] += 1
        if not self.out_of_band(levels):
            return None
        last = self.last_alert
        if last is not None and all(abs(levels[k] - last[k]) <= self.min_change for k in LEVELS):
            self.stats["suppressed"] += 1
            return None
        return self._alert(levels)

    async def _alert(self, levels: dict[str, float]) -> None:
        await self.ctx.publish(self.alert_topic, self.alert_type, {"title": "StorageAlert", **levels})
        self.last_alert = dict(levels)
        self.stats["alerts"] += 1
        if not self.out_of_band(self.last_alert):  # re-checked on what was sent
            self.alerts_in_band += 1

    def health(self) -> dict[str, Any]:
        return {"levels": getattr(self, "levels", None), "last_alert": getattr(self, "last_alert", None)}

    def report(self) -> dict[str, Any]:
        return {**self.stats, "source": self.source, "last_alert": self.last_alert}

    def checks(self) -> list[Check]:
        return [Check("a storage alert only when a level is out of band", self.alerts_in_band == 0,
                      f"{self.stats['alerts']} alerts, {self.stats['suppressed']} suppressed (moved ≤ "
                      f"{self.min_change} points)")]
