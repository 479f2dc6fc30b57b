"""forge_opcua's test server: the simulated PLC in its own process, and its pytest fixtures.

Registered as a pytest plugin through this distribution's ``pytest11`` entry point
(``forge_opcua = "forge_opcua.testing"``), so any test run with forge-opcua installed has

- ``opcua_plc`` — one simulated PLC (machines M1, M2, M3, security None) per test run, shared
  (``forge_core.testing.shared_server``); tests that stop or restart a server start their own
  :class:`PlcSimulatorServer` instead;
- ``opcua_pki`` — a test CA with server and client certificates, a rogue CA and an expired client
  certificate (:func:`forge_opcua.certificates.make_test_pki`), once per run.

:class:`PlcSimulatorServer` is core's :class:`~forge_core.testing.ServerProcess` running
``python -m forge_opcua.simulator``: a real OPC UA server on 127.0.0.1 that ``stop()`` and
``start()`` bring down and back on the same port, as a PLC restart does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from forge_core.testing import ServerProcess, shared_server

from forge_opcua.settings import PlcSimulatorParams, node_id_text

if TYPE_CHECKING:  # certificates (cryptography) only when a test asks for the PKI
    from forge_opcua.certificates import TestPki

__all__ = ["PlcSimulatorServer", "opcua_pki", "opcua_plc"]


class PlcSimulatorServer(ServerProcess):
    """The simulated PLC (``forge_opcua.simulator``) in a child process on 127.0.0.1.

    ``params`` are :class:`~forge_opcua.settings.PlcSimulatorParams` fields (``machines``,
    ``timing``, ``security``...); host and port are the server's own. ``ramp_rate`` counts
    Diagnostics.Ramp up that many times a second (benchmarks).
    """

    name = "opcua-plc"
    start_timeout = 60.0

    def __init__(self, *, params: dict[str, Any] | None = None, seed: int = 1, ramp_rate: float = 0.0,
                 port: int | None = None, base_dir: Path | None = None) -> None:
        super().__init__(port=port, base_dir=base_dir)
        self.params = PlcSimulatorParams.load({**(params or {}), "host": self.host, "port": self.port},
                                              where="PlcSimulatorServer(params=...)")
        self.seed = seed
        self.ramp_rate = ramp_rate

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.params.path}"

    def node(self, name: str) -> str:
        """The node id of ``name`` (``M1.State``, ``Machines``, ``Diagnostics.Subscriptions``), namespace by URI."""
        return node_id_text(self.params.namespace, name)

    def _command(self) -> list[str]:
        chosen = {**self.params.as_dict(), "port": self.port}
        return [sys.executable, "-m", "forge_opcua.simulator", "--seed", str(self.seed),
                "--ramp-rate", str(self.ramp_rate), "--params", json.dumps(chosen)]


@pytest.fixture(scope="session")
def opcua_plc(pytestconfig: pytest.Config) -> PlcSimulatorServer:
    """One simulated PLC (M1, M2, M3; no security) for the whole test run."""
    return shared_server(pytestconfig, "opcua-plc", PlcSimulatorServer)


@pytest.fixture(scope="session")
def opcua_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A test CA, server and client certificates, a rogue CA and client, an expired client certificate."""
    from forge_opcua.certificates import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("opcua-pki"))
