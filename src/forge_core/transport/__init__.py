"""Transports: one contract, the in-memory reference implementation, topic matching."""

from forge_core.transport.base import (
    DeliveryGuarantee,
    Health,
    MessageCallback,
    Subscription,
    Transport,
)

__all__ = ["DeliveryGuarantee", "Health", "MessageCallback", "Subscription", "Transport"]
