"""Public API for testing plants and plugins: ``TestPlant``, the transport conformance suite,
the base class of real test servers and core's own servers (PostgreSQL, Redis), and the pytest
fixtures (loaded automatically through ``pytest11``). Transport plugins ship their broker's test
server in their own ``testing`` module, built on :class:`ServerProcess`; a plant or peer a test starts itself
goes through :func:`watched_popen`, a temp dir a plugin's test server makes itself through :func:`guard_dir`
(both die with a killed test run: :mod:`forge_core.testing.watchdog`); :func:`backlog_on_subscribe` delivers
a broker's backlog the moment a component subscribes, while its ``start()`` still runs.
"""

from forge_core.testing.backlog import backlog_on_subscribe
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
from forge_core.testing.watchdog import guard_dir, release_dir, watched_popen

__all__ = [
    "LOCALHOST",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "ServerProcess",
    "ServerUnavailable",
    "TestPlant",
    "TransportConformance",
    "backlog_on_subscribe",
    "find_binary",
    "find_free_port",
    "guard_dir",
    "port_free",
    "port_open",
    "release_dir",
    "shared_server",
    "watched_popen",
    "which_or_skip",
]
