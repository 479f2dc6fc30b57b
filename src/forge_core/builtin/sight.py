"""Whether a heartbeat monitor could hear its sources: not while its own transport is away, nor
for a grace period after it is back.

Why (issue 11 fault drills): a broker restart is not every source's death. While the broker is
down no beat reaches anyone; when it is back, sources reconnect each with its own backoff, and a
broker that keeps sessions hands the monitor the Last Wills it stored before the outage. Taken at
face value that was a false DOWN for every machine at each Mosquitto restart. During the outage
and the grace, silence gives no verdict and a death certificate is held: a beat (or a newer
birth) from the source drops it, else it is reported when the grace ends.
"""

from __future__ import annotations

from typing import Any


class Sight:
    """Tracks the monitor's own connection: polled with the transport's health on each evaluation
    and before acting on a death certificate; a rising ``reconnects`` stat counts as a return even
    when the outage was shorter than the polling."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.lost_at: float | None = None
        self.back_at: float | None = None
        self.reconnects: int | None = None
        self.outages = 0

    def update(self, connected: bool, reconnects: Any, now: float) -> None:
        count = reconnects if isinstance(reconnects, int) else None
        if not connected:
            if self.lost_at is None:
                self.lost_at, self.back_at = now, None
                self.outages += 1
        elif self.lost_at is not None or (count is not None and self.reconnects is not None
                                          and count > self.reconnects):
            if self.lost_at is None:
                self.outages += 1  # back before a poll saw it gone
            self.lost_at, self.back_at = None, now
        if count is not None:
            self.reconnects = count

    def blind(self, now: float) -> bool:
        return self.lost_at is not None or (self.back_at is not None and now - self.back_at < self.grace)

    def view(self) -> dict[str, Any]:
        return {"outages": self.outages, "blind_since": self.lost_at, "back_at": self.back_at, "grace": self.grace}
