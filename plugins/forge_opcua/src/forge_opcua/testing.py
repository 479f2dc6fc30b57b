"""forge_opcua's test server: the simulated PLC in its own process, and its pytest fixture."""

from __future__ import annotations

__all__: list[str] = []
