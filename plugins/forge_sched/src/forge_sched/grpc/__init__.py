"""forge_sched's gRPC faces: the ``FactoryStatusService`` servicer (PMS side) and the
``status_reporter.grpc`` client (MMS side). Stubs and .proto: :mod:`forge_sched.proto`."""

from forge_sched.grpc.client import GrpcStatusReporter, ReportResult
from forge_sched.grpc.errors import StatusReportError, StatusReportRejected, StatusReportUnavailable
from forge_sched.grpc.metadata import EPOCH_KEY, LEASE_KEY, FenceError, fence_metadata, read_fence
from forge_sched.grpc.servicer import FactoryStatusServicer, RpcFailure
from forge_sched.proto import SERVICE_NAME
from forge_sched.proto.factory_status_pb2_grpc import add_FactoryStatusServiceServicer_to_server

__all__ = ["EPOCH_KEY", "LEASE_KEY", "SERVICE_NAME", "FactoryStatusServicer", "FenceError", "GrpcStatusReporter",
           "ReportResult", "RpcFailure", "StatusReportError", "StatusReportRejected", "StatusReportUnavailable",
           "add_FactoryStatusServiceServicer_to_server", "fence_metadata", "read_fence"]
