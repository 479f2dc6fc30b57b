"""Test helpers for Forge and its plugins: real servers, fixtures, the pytest plugin."""
