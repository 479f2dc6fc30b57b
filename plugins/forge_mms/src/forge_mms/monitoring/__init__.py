"""Factory heartbeats: reading them, the recent history, the fault detector."""
