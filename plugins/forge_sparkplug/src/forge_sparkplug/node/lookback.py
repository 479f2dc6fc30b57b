"""The DATA an edge node sent during the primary host's last moments (``host_lookback``).

A primary host whose link dies silently (process hung, SIGSTOP, network cut) keeps its socket open, so the
broker publishes its Will (STATE offline) only 1.5 x the host's keepalive later. DATA the node sent
meanwhile was read by the broker (``link_proof`` proves it, so the node drops its copy) but reached no
host. Cirrus Link's MQTT Transmission covers the same window with a rolling history buffer pruned by age
(at least 2 x keepalive); this is that buffer, in memory: every DATA the node sent (live, or replayed and
proven) with the time it was sent, pruned by age and bounded by count and bytes. When the host's STATE
offline comes, what was sent in the last ``window`` seconds goes to the outbox, ahead of newer data, and is
replayed as historical after the next host's births (at least once: a copy the host did get arrives twice,
historical, with its original timestamps).

The window is measured back from when the node saw the offline STATE, on the node's own clock. The STATE
offline's timestamp cannot narrow it: it is the host's CONNECT time, the same as its STATE online's
[tck-id-host-topic-phid-death-payload-timestamp-connect], so it says when the host's session began, not
when it died. The node's own session bounds it instead: the buffer holds only what was sent since the last
time it was moved (the previous host session's end), and nothing is sent before a host's STATE online.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["Lookback", "Moved"]


@dataclass
class Moved:
    """What :meth:`Lookback.take` gave back: the bodies of the window, oldest first, and how many DATA of the
    window had been dropped for the bound before (0: the window is complete)."""

    bodies: list[bytes] = field(default_factory=list)
    dropped: int = 0


class Lookback:
    """DATA bodies (outbox bodies) with the time they were sent; ``window`` 0 keeps nothing."""

    def __init__(self, window: float, max_messages: int, max_bytes: int) -> None:
        self.window, self.max_messages, self.max_bytes = window, max_messages, max_bytes
        self.items: deque[tuple[float, bytes]] = deque()
        self.bytes = 0
        self.dropped = 0  # all the node's life, for the bound (reported in the node's stats)
        # drops since the last take, and the send time of the newest of them: a window reaching back past it lost them
        self._dropped_since, self._newest_dropped = 0, float("-inf")

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def __len__(self) -> int:
        return len(self.items)

    def record(self, body: bytes, now: float) -> None:
        """``body`` was sent at ``now``: keep it; forget what is older than the window, and the oldest beyond
        the bound (counted)."""
        if not self.enabled:
            return
        self.items.append((now, body))
        self.bytes += len(body)
        self.prune(now)
        while self.items and (len(self.items) > self.max_messages or self.bytes > self.max_bytes):
            sent, old = self.items.popleft()
            self.bytes -= len(old)
            self.dropped += 1
            self._dropped_since += 1
            self._newest_dropped = sent

    def prune(self, now: float) -> None:
        """Forget what was sent before ``now - window``: a STATE offline seen from now on reaches back less far."""
        cutoff = now - self.window
        while self.items and self.items[0][0] < cutoff:
            self.bytes -= len(self.items.popleft()[1])

    def forget(self, bodies: list[bytes]) -> None:
        """``bodies`` (these very objects) went to the outbox unproven: their replay is recorded again when proven."""
        if bodies and self.items:
            gone = {id(body) for body in bodies}
            kept = deque(item for item in self.items if id(item[1]) not in gone)
            self.bytes -= sum(len(body) for _, body in self.items) - sum(len(body) for _, body in kept)
            self.items = kept

    def take(self, now: float) -> Moved:
        """What was sent in the ``window`` seconds before ``now``, oldest first; the buffer starts empty again."""
        cutoff = now - self.window
        moved = Moved(
            [body for sent, body in self.items if sent >= cutoff],
            self._dropped_since if self._newest_dropped >= cutoff else 0,
        )
        self.items.clear()
        self.bytes = 0
        self._dropped_since, self._newest_dropped = 0, float("-inf")
        return moved
