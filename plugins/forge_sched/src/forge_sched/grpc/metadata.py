"""The fencing metadata of a status report: ``forge-epoch`` and ``forge-lease``.

The reporter (forge_mms's leader) sends its lease name and fencing epoch with every call; the PMS
refuses an epoch older than the newest it has seen on that lease. Both are required on the gRPC
face: a report without them could not be fenced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["EPOCH_KEY", "LEASE_KEY", "MAX_LEASE_LENGTH", "FenceError", "fence_metadata", "read_fence"]

EPOCH_KEY = "forge-epoch"
LEASE_KEY = "forge-lease"
MAX_LEASE_LENGTH = 150
_MAX_EPOCH = 2**63 - 1  # what the fences table stores (BIGINT)


class FenceError(ValueError):
    """Missing or malformed fencing metadata; ``field`` is the metadata key at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def fence_metadata(epoch: int, lease: str) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying ``epoch`` and ``lease`` (what the client sends)."""
    return (EPOCH_KEY, str(int(epoch))), (LEASE_KEY, lease)


def read_fence(metadata: Iterable[Any] | None) -> tuple[int, str]:
    """``(epoch, lease)`` from invocation metadata (``(key, value)`` pairs or grpc.aio
    ``_Metadatum`` objects); :class:`FenceError` names the key that is missing or malformed."""
    found: dict[str, str | bytes] = {}
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key in (EPOCH_KEY, LEASE_KEY):
            if key in found:
                raise FenceError(key, "sent twice; send one value")
            found[key] = value
    raw_epoch = found.get(EPOCH_KEY)
    if raw_epoch is None:
        raise FenceError(EPOCH_KEY, "missing: send the reporter's fencing epoch (a positive integer) as metadata")
    text = raw_epoch.decode("ascii", "replace") if isinstance(raw_epoch, bytes) else raw_epoch
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _MAX_EPOCH:
        raise FenceError(EPOCH_KEY, f"must be a positive integer (the lease's fencing epoch), got {text[:40]!r}")
    lease = found.get(LEASE_KEY)
    if lease is None:
        raise FenceError(LEASE_KEY, "missing: send the name of the reporter's lease as metadata")
    if isinstance(lease, bytes) or not lease.strip() or len(lease) > MAX_LEASE_LENGTH:
        raise FenceError(LEASE_KEY, f"must be a lease name of 1 to {MAX_LEASE_LENGTH} characters, "
                                    f"got {str(lease)[:40]!r}")
    return int(text), lease
