"""The OEE line under virtual time: simulated PLC, broker and Sparkplug clients, chaos and the run's invariants."""
