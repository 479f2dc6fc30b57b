"""Receiver-side fencing: drop commands stamped with an epoch older than one already seen, and,
with a plant key, commands whose (lease, epoch, body) the lease holder did not sign.

Why signatures (docs/tactics/leader-election.md, "Forged epochs"): an epoch read from a body is
only a number anyone on the wire can write. Unsigned, one forged ``"epoch": 10**12`` is accepted
and then every true command is "stale" until the receiver restarts. With a key, the receiver
checks the HMAC *before* the epoch may move, so a forger without the key can neither get a
command applied nor raise ``newest``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["FencedReceiver", "sign_command"]


def _message(lease: str, epoch: int, body: bytes) -> bytes:
    # Length-prefixed lease so ("a", 12) and ("a1", 2) can never share a message.
    return f"{len(lease)}:{lease}:{epoch}:".encode() + body


def sign_command(key: bytes, lease: str, epoch: int, body: bytes) -> str:
    """The holder's signature of a command: hex HMAC-SHA256 over (lease, epoch, body)."""
    return hmac.new(key, _message(lease, epoch, body), hashlib.sha256).hexdigest()


class FencedReceiver:
    """Remembers the newest epoch per lease and drops older commands.

    ``keys`` (lease → plant key): for those leases a command must carry ``signature`` =
    :func:`sign_command` of its ``body``; an unsigned or badly signed one is dropped and counted
    in ``.forged`` and does **not** move the newest epoch. Leases without a key keep the unsigned
    behaviour (any higher epoch is believed). ``.accepted_epochs`` holds every epoch a command was
    accepted with, per lease, for the "applied only epochs some leader held" check.
    """

    def __init__(self, keys: Mapping[str, bytes] | None = None) -> None:
        self.keys: dict[str, bytes] = dict(keys or {})
        self.newest: dict[str, int] = {}
        self.accepted = 0
        self.rejected = 0
        self.forged = 0
        self.accepted_epochs: dict[str, set[int]] = {}

    def verify(self, epoch: int, lease: str, body: bytes | None, signature: str | None) -> bool:
        """True if ``lease`` needs no signature, or ``signature`` is the key's over (lease, epoch, body)."""
        key = self.keys.get(lease)
        if key is None:
            return True
        if signature is None or body is None:
            return False
        # As bytes: compare_digest refuses non-ASCII str, and the signature comes off the wire.
        return hmac.compare_digest(sign_command(key, lease, epoch, body).encode(),
                                   signature.encode("utf-8", "surrogatepass"))

    def accept(self, epoch: int, lease: str = "default", *, body: bytes | None = None,
               signature: str | None = None) -> bool:
        """True if a command stamped ``epoch`` may be applied; False (and counted) if forged or stale."""
        if not self.verify(epoch, lease, body, signature):
            self.forged += 1
            return False
        newest = self.newest.get(lease)
        if newest is not None and epoch < newest:
            self.rejected += 1
            return False
        self.newest[lease] = epoch
        self.accepted += 1
        self.accepted_epochs.setdefault(lease, set()).add(epoch)
        return True
