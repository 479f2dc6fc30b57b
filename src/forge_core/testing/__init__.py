"""Public API for testing plants and plugins: ``TestPlant``, the transport conformance suite,
the base class of real test servers and core's own servers (PostgreSQL, Redis), and the pytest
fixtures (loaded automatically through ``pytest11``). Transport plugins ship their broker's test
server in their own ``testing`` module, built on :class:`ServerProcess`.
"""

from forge_core.testing.conformance import TransportConformance
from forge_core.testing.fixtures_servers import shared_server
from forge_core.testing.plant import TestPlant
from forge_core.testing.postgres import PostgresServer
from forge_core.testing.redis import RedisServer
from forge_core.testing.servers import (
    LOCALHOST,
    ServerError,
    ServerProcess,
    ServerUnavailable,
    find_binary,
    find_free_port,
    port_free,
    port_open,
    which_or_skip,
)

__all__ = [
    "LOCALHOST",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "ServerProcess",
    "ServerUnavailable",
    "TestPlant",
    "TransportConformance",
    "find_binary",
    "find_free_port",
    "port_free",
    "port_open",
    "shared_server",
    "which_or_skip",
]
