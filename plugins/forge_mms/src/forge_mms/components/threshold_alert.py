"""``mms.threshold_alert``: the sensor-monitoring seed's anomaly rule, generic.

Readings arrive on ``topics``; ``field`` (a JSON pointer) picks the number. When a sensor's
reading leaves the ``low``..``high`` band it publishes ``alert_type`` on ``alert_topic`` — once
per excursion (again every ``repeat_every`` while it stays out, if set), and never more often
than ``min_interval`` per sensor, so a flapping sensor cannot flood the plant. The alert type's
schema belongs to the plant; ``payload`` shapes the body to fit it.

The sensor name comes from the reading and fills ``{source}`` in ``alert_topic``: a name that is
no topic level (``+``, ``#``, ``/``, NUL, ...: ``forge_core.transport.topic_level``) is refused
with a ``refused`` dead letter instead of publishing to a wildcard or another sensor's topic.
"""

from __future__ import annotations

import re
from typing import Any

from forge_core import Check, Component, DeadLetter, Envelope, Publishes, Subscribes, dead_letters
from forge_core.transport import topic_level

from forge_mms.settings import ThresholdAlertParams

_PLACEHOLDER = re.compile(r"^\{(\w+)\}$")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` (RFC 6901) in ``document``; raises KeyError naming it."""
    if pointer == "":
        return document
    node = document
    for raw in pointer.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(f"JSON pointer {pointer!r}: no {token!r}")
    return node


class ThresholdAlert(Component):
    """Alert when a sensor reading leaves the low..high band."""

    Params = ThresholdAlertParams
    params: ThresholdAlertParams
    publishes = (Publishes((), param="alert_topic", types_param="alert_type", key="source"),)
    subscribes = (Subscribes((), param="topics", types_param="types"),)

    async def start(self) -> None:
        p = self.params  # the band (low, high or both, low <= high) is checked by ThresholdAlertParams
        self.field = p.field
        self.source_field = p.source_field
        self.low, self.high = p.low, p.high
        self.alert_type = p.alert_type
        self.alert_topic = p.alert_topic
        self.min_interval = p.min_interval
        self.repeat_every = p.repeat_every
        self.template = p.payload
        self.out: dict[str, bool] = {}
        self.last_alert_at: dict[str, float] = {}
        self.stats = {"readings": 0, "alerts": 0, "rate_limited": 0, "unreadable": 0, "refused": 0}
        self.source_in_topic = "{source}" in p.alert_topic
        self.alerts_in_band = 0
        for pattern in p.topics:
            await self.ctx.subscribe(pattern, self.on_reading, types=p.types)

    def direction(self, value: float) -> str | None:
        """"low" / "high" when out of band, else None."""
        if self.low is not None and value < self.low:
            return "low"
        if self.high is not None and value > self.high:
            return "high"
        return None

    async def on_reading(self, envelope: Envelope) -> None:
        self.stats["readings"] += 1
        try:
            value = resolve_pointer(envelope.payload, self.field)
            source = str(resolve_pointer(envelope.payload, self.source_field)) if self.source_field else envelope.source
        except KeyError as exc:
            self.stats["unreadable"] += 1
            if self.stats["unreadable"] == 1:
                self.ctx.log.warning("%s: %s in %s on %s; such readings are skipped", self.name, exc, envelope.type,
                                     envelope.topic)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.stats["unreadable"] += 1
            return
        if self.source_in_topic and source not in self.out:  # a new sensor: is its name a topic level?
            try:
                topic_level(source)
            except ValueError as exc:
                self.stats["refused"] += 1
                self.ctx.bus.dead_letters.put(DeadLetter(
                    dead_letters.REFUSED, f"{self.name}: sensor {exc} (it fills {{source}} in {self.alert_topic!r}); "
                    f"reading ignored", envelope.topic or "", self.ctx.transport or "", self.ctx.clock.time(), [],
                    self.name, envelope))
                return
        direction = self.direction(float(value))
        was_out = self.out.get(source, False)
        self.out[source] = direction is not None
        if direction is None:
            return
        now = self.ctx.clock.time()
        last = self.last_alert_at.get(source)
        due = not was_out or (self.repeat_every is not None and last is not None and now - last >= self.repeat_every)
        if not due:
            return
        if last is not None and now - last < self.min_interval:
            self.stats["rate_limited"] += 1
            return
        values = {"source": source, "field": self.field, "value": value, "low": self.low, "high": self.high,
                  "direction": direction, "time": now, "topic": envelope.topic, "type": envelope.type}
        await self.ctx.publish(self.alert_topic.format(source=source), self.alert_type,
                               _fill(self.template, values), key=source)
        self.last_alert_at[source] = now
        self.stats["alerts"] += 1
        if self.direction(float(value)) is None:
            self.alerts_in_band += 1

    def report(self) -> dict[str, Any]:
        return {**self.stats, "out_of_band": sorted(s for s, out in self.out.items() if out)}

    def checks(self) -> list[Check]:
        return [Check("an alert only for a reading out of band", self.alerts_in_band == 0,
                      f"{self.stats['alerts']} alerts, {self.stats['rate_limited']} rate-limited")]


def _fill(template: Any, values: dict[str, Any]) -> Any:
    """Fill the payload template: ``"{value}"`` alone keeps its type, other strings are formatted."""
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.match(template)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return template.format(**values)
    return template
