"""The OEE line's time-series storage (telemetry, events, rollups)."""
