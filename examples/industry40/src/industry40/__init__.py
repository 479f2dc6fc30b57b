"""The Industry 4.0 reference plant: factory simulators and chaos as Forge components (orders,
REST and gRPC come from forge-sched, monitoring, risk and failover from forge-mms)."""

__version__ = "0.1.0"
