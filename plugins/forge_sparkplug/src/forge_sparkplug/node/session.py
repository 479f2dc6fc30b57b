"""The sequence numbers of an edge node's session: ``seq`` (0-255 on every message after the birth)
and ``bdSeq`` (0-255, one more on every MQTT CONNECT, kept across restarts of the process)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BdSeq", "Seq"]


class Seq:
    """``seq`` of one edge node: the NBIRTH carries 0, every later message one more, 255 wraps to 0
    [tck-id-topics-nbirth-seq-num, tck-id-payloads-sequence-num-incrementing]."""

    def __init__(self) -> None:
        self.last = -1

    def birth(self) -> int:
        self.last = 0
        return 0

    def next(self) -> int:
        self.last = (self.last + 1) % 256
        return self.last


class BdSeq:
    """The birth/death sequence number: one more on every CONNECT [tck-id-topics-nbirth-bdseq-increment],
    255 wraps to 0 [tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq].

    The first CONNECT ever uses 0. The value is kept in ``path`` (written before the CONNECT that uses
    it), so a restarted process goes on from where the last one stopped: a host that still holds the
    old session's NDEATH can then never mistake it for the new session's. ``fsync`` False writes it without
    waiting for the disk (a killed process still leaves it; a machine that loses power may not): for a plant
    under a virtual clock, as its databases commit without fsync.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        try:
            self.current = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            self.current = -1  # never connected: the first CONNECT uses 0

    def next_connect(self) -> int:
        self.current = (self.current + 1) % 256
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(self.current))
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return self.current
