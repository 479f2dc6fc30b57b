"""``status_reporter.grpc``: the kind ``status_reporter`` is declared by forge_mms (its failover and
recovery managers report factory status through it); this implementation calls the PMS's
``FactoryStatusService`` over gRPC. Registered by forge_sched's ``forge_register_tactics``; the
registry matches ``<kind>.<use>`` by name, so either plugin may load first.

    tactics:
      status_reporter: {use: grpc, target: "${env:PMS_GRPC}", timeout: 5}
"""

from __future__ import annotations

from typing import Any

from forge_sched.grpc.client import GrpcStatusReporter
from forge_sched.settings import GrpcStatusReporterSettings

__all__ = ["DESCRIPTION", "NAME", "grpc_status_reporter"]

NAME = "status_reporter.grpc"
DESCRIPTION = "reports factory status to the PMS over gRPC (forge.sched.v1.FactoryStatusService)"


def grpc_status_reporter(settings: GrpcStatusReporterSettings, services: Any = None) -> GrpcStatusReporter:
    """The tactic factory (``factory(settings, services)``); the channel opens on the first report."""
    return GrpcStatusReporter(settings)
