"""The live tail: what the dashboard sees of the plant's messages, without slowing the bus.

It subscribes ``#`` on each transport (the transport's own subscription, as the runtime's
``tap`` does: no decoding, no schema validation, no bus hot-path code), and per message only
counts and, within ``tail_per_second``, appends a reference to a bounded ring buffer of its
topic. Rendering (JSON, excerpts) happens when a page asks, at most once per push interval.
``forge.status`` and ``forge.leadership`` messages update the source and lease boards, so states
reported by other processes (a heartbeat monitor in a child, a leader elsewhere) show too."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from forge_core.messages.envelope import Envelope, RawMessage

if TYPE_CHECKING:
    from forge_core.clock import Clock
    from forge_core.transport.base import Subscription, Transport

log = logging.getLogger("forge.dashboard")

EXCERPT = 400  # characters of a message shown in the tail


@dataclass(slots=True)
class Seen:
    at: float
    seq: int  # arrival order: clock readings tie (virtual time, a coarse clock)
    transport: str
    message: Envelope | RawMessage


class MessageTail:
    def __init__(self, clock: Clock, *, per_topic: int = 50, topics: int = 200, per_second: int = 200) -> None:
        self.clock = clock
        self.per_topic, self.max_topics, self.per_second = per_topic, topics, per_second
        self.recent: dict[str, deque[Seen]] = {}
        self.counts: Counter[str] = Counter()  # per topic
        self.by_transport: Counter[str] = Counter()
        self.sampled_out = 0
        #: source -> the newest forge.status body; lease -> the newest forge.leadership body (leading only)
        self.sources: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self._second = -1
        self._kept_this_second = 0
        self._seq = 0
        self._subscriptions: list[Subscription] = []

    async def attach(self, transports: dict[str, Transport]) -> None:
        for name, transport in transports.items():
            try:
                sub = await transport.subscribe("#", self._callback(name), owner="forge.dashboard")
                self._subscriptions.append(sub)
            except Exception as exc:  # a transport that cannot tap '#' still shows its connection state
                log.warning("dashboard: no live tail of transport %s: %s", name, exc)

    async def detach(self) -> None:
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.cancel()
        self._subscriptions.clear()

    def _callback(self, transport: str) -> Any:
        async def seen(topic: str, message: Envelope | RawMessage) -> None:
            self.observe(transport, topic, message)
        return seen

    def observe(self, transport: str, topic: str, message: Envelope | RawMessage) -> None:
        """Count; keep within the per-second budget. O(1), no decoding except the two board types."""
        self.counts[topic] += 1
        self.by_transport[transport] += 1
        now = self.clock.time()
        if topic.startswith("forge/status/") or topic.startswith("forge/leader/"):
            self._board(topic, message, now)
        second = int(now)
        if second != self._second:
            self._second, self._kept_this_second = second, 0
        if self._kept_this_second >= self.per_second:
            self.sampled_out += 1
            return
        ring = self.recent.get(topic)
        if ring is None:
            if len(self.recent) >= self.max_topics:
                self.sampled_out += 1
                return
            ring = self.recent[topic] = deque(maxlen=self.per_topic)
        self._kept_this_second += 1
        self._seq += 1
        ring.append(Seen(now, self._seq, transport, message))

    def _board(self, topic: str, message: Envelope | RawMessage, now: float) -> None:
        body = payload_of(message)
        if not isinstance(body, dict):
            return
        if topic.startswith("forge/status/") and "status" in body:
            self.sources[str(body.get("source", topic.rsplit("/", 1)[-1]))] = {**body, "seen": now}
        elif "lease" in body and body.get("leading"):
            self.leases[str(body["lease"])] = {**body, "seen": now}

    # -- what the page asks for ------------------------------------------------------------
    def messages(self, *, topic: str | None = None, contains: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The newest kept messages (of one topic, or all), newest first, optionally filtered by a
        case-insensitive substring of topic, type, source or body."""
        pairs = [(topic, self.recent.get(topic, deque()))] if topic else list(self.recent.items())
        merged = sorted(((seen, name) for name, ring in pairs for seen in ring), key=lambda sn: sn[0].seq, reverse=True)
        needle = contains.lower()
        out: list[dict[str, Any]] = []
        for seen, name in merged:
            row = render(seen, name)
            if needle and needle not in " ".join(str(v) for v in row.values()).lower():
                continue
            out.append(row)
            if len(out) >= limit:
                break
        return out


def payload_of(message: Envelope | RawMessage) -> Any:
    if isinstance(message, Envelope):
        return message.payload
    try:
        return orjson.loads(message.body)
    except orjson.JSONDecodeError:
        return None


def render(seen: Seen, topic: str) -> dict[str, Any]:
    message = seen.message
    if isinstance(message, Envelope):
        kind, source = message.type, message.source
        text = orjson.dumps(message.payload, default=str).decode()
    else:
        kind = message.headers.get("ce_type") or message.headers.get("type") or ""
        source = message.headers.get("ce_source") or message.headers.get("source") or ""
        text = message.body[: EXCERPT * 4].decode("utf-8", errors="replace")
    return {"at": round(seen.at, 3), "topic": topic, "transport": seen.transport, "type": kind, "source": source,
            "body": text if len(text) <= EXCERPT else text[:EXCERPT] + "…"}
