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
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SIGNATURE_FIELD", "FencedReceiver", "command_body", "sign_command", "sign_payload", "verify_payload"]

#: The body field a plain-JSON command carries its signature in (machines on MQTT 3.1.1 see no
#: headers, and a bridge may drop them). It is left out of what is signed.
SIGNATURE_FIELD = "signature"


def _message(lease: str, epoch: int, body: bytes) -> bytes:
    # Length-prefixed lease so ("a", 12) and ("a1", 2) can never share a message.
    return f"{len(lease)}:{lease}:{epoch}:".encode() + body


def sign_command(key: bytes, lease: str, epoch: int, body: bytes) -> str:
    """The holder's signature of a command: hex HMAC-SHA256 over (lease, epoch, body)."""
    return hmac.new(key, _message(lease, epoch, body), hashlib.sha256).hexdigest()


def command_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes a JSON command's signature covers: the body without :data:`SIGNATURE_FIELD`, as
    canonical JSON (sorted keys, no spaces, ASCII). A decoded body re-encodes to the same bytes
    whatever the wire's spacing or key order, so a bridge that re-serialises keeps it valid.
    Integers and strings sign portably; avoid floats in signed commands (their text differs
    between languages)."""
    fields = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sign_payload(key: bytes, lease: str, epoch: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with :data:`SIGNATURE_FIELD` set to the holder's signature of (lease, epoch, body)."""
    return {**payload, SIGNATURE_FIELD: sign_command(key, lease, epoch, command_body(payload))}


def _payload_parts(payload: Any) -> tuple[bytes | None, str | None]:
    """(signed body, signature) of a received JSON command; (None, None) when it cannot have any."""
    if not isinstance(payload, Mapping):
        return None, None
    signature = payload.get(SIGNATURE_FIELD)
    try:
        body = command_body(payload)
    except (TypeError, ValueError):  # not JSON-encodable (NaN, odd objects): cannot be signed
        return None, None
    return body, signature if isinstance(signature, str) else None


def verify_payload(key: bytes, lease: str, epoch: int, payload: Any) -> bool:
    """True if ``payload`` carries the holder's signature of (lease, epoch, body)."""
    body, signature = _payload_parts(payload)
    return FencedReceiver({lease: key}).verify(epoch, lease, body, signature)


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

    def verify_payload(self, epoch: int, lease: str, payload: Any) -> bool:
        """True if ``lease`` needs no signature, or ``payload`` carries the holder's (not counted)."""
        if lease not in self.keys:
            return True
        return self.verify(epoch, lease, *_payload_parts(payload))

    def accept_payload(self, epoch: int, lease: str, payload: Any) -> bool:
        """:meth:`accept` for a JSON command that carries its signature in :data:`SIGNATURE_FIELD`
        (checked only when ``lease`` has a key)."""
        if lease not in self.keys:
            return self.accept(epoch, lease)
        body, signature = _payload_parts(payload)
        return self.accept(epoch, lease, body=body, signature=signature)
