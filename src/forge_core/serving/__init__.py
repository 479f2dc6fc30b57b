"""What the runtime serves for its components: one HTTP server and one gRPC server per process.

Components reach them as ``ctx.http`` and ``ctx.grpc``. Under a virtual clock nothing listens:
the same handlers are reachable in-process (``HttpHost.app`` for an ASGI client,
``GrpcHost.servicer(name)``), so a simulated client goes through the code a real one would.
"""

from forge_core.serving.grpc import GrpcHost, GrpcMounts
from forge_core.serving.http import HttpHost, HttpMounts

__all__ = ["GrpcHost", "GrpcMounts", "HttpHost", "HttpMounts"]
