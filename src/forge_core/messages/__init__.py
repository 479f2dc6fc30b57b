"""The message model: envelopes, CloudEvents binary-mode codec, schemas, dead letters."""

from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage

__all__ = ["Envelope", "IdGenerator", "RawMessage"]
