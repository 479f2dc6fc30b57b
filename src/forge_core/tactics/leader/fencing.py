"""Receiver-side fencing: drop commands stamped with an epoch older than one already seen."""

from __future__ import annotations

__all__ = ["FencedReceiver"]


class FencedReceiver:
    """Receiver-side fencing: remembers the newest epoch per lease and drops older commands."""

    def __init__(self) -> None:
        self.newest: dict[str, int] = {}
        self.accepted = 0
        self.rejected = 0

    def accept(self, epoch: int, lease: str = "default") -> bool:
        """True if a command stamped ``epoch`` may be applied; False (and counted) if stale."""
        newest = self.newest.get(lease)
        if newest is not None and epoch < newest:
            self.rejected += 1
            return False
        self.newest[lease] = epoch
        self.accepted += 1
        return True
