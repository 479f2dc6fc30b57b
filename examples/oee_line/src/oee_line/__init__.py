"""Forge reference plant four: an OEE line (docs/examples/oee_line.md)."""
