"""Test helpers for Forge and its plugins: ``TestPlant``, the transport conformance suite,
real servers, and the pytest fixtures (loaded automatically through ``pytest11``)."""

from forge_core.testing.plant import TestPlant

__all__ = ["TestPlant"]
