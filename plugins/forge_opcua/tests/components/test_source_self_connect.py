"""The source retrying a PLC that is not up yet connects to itself (TCP simultaneous open), closes that
at once, says so, and connects to the PLC once it listens on the port the self-connection had.

The self-connections are real (the kernel's), but chosen rather than waited for: the source's first
two connects bind their socket to the PLC's own address first (bind, then connect to the same
address), which is what the kernel does by chance when it hands a retrying client the server's
port from the ephemeral range (tests/client/test_self_connect.py shows that happening unforced)."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from forge_core.testing import find_free_port

pytestmark = [pytest.mark.servers, pytest.mark.slow]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_source_connected_to_itself_frees_the_port_and_connects_when_the_plc_listens(kit, tmp_path) -> None:
    port = find_free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/forge/plc"
    forced: list[Any] = []
    lines = _Lines()
    logger = logging.getLogger("forge.opcua.source")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        create_connection = loop.create_connection

        async def self_connecting(factory: Any, host: Any = None, to: Any = None, **kwargs: Any) -> Any:
            if to == port and len(forced) < 2:
                kwargs["local_addr"] = (host, port)  # the socket's source is the PLC's own address
                result = await create_connection(factory, host, to, **kwargs)
                forced.append(result[0].get_extra_info("sockname"))
                return result
            return await create_connection(factory, host, to, **kwargs)

        loop.create_connection = self_connecting  # type: ignore[method-assign]
        nodes = [{"node_id": kit.node("M1.TotalCount"), "tag": "M1/TotalCount"}]
        async with kit.real_plant(tmp_path, {"src": kit.source(endpoint, nodes=nodes)}) as plant:
            source = plant.component("src")
            await plant.until(lambda: len(forced) == 2 and source.connect_failures >= 2,
                              what=f"two self-connections, each a failed connect (forced {forced}, "
                                   f"failures {source.connect_failures}, last error {source.last_error!r})")
            assert forced == [("127.0.0.1", port)] * 2  # they did connect: to themselves
            assert "connected to itself" in source.last_error, source.last_error
            assert not source.connected and source.losses == 0
            with socket.socket() as plain:  # no SO_REUSEADDR: not even a TIME_WAIT is left on the port
                plain.bind(("127.0.0.1", port))
            async with kit.plc_server(port=port, timing=kit.STILL):  # the PLC can listen there now
                await plant.until(lambda: source.connected, what=f"connected ({source.report()})")
                await plant.until(lambda: plant.messages("opcua.data_change"), what="the first data change")
            assert source.connects == 1
        said = [line for line in lines.lines if "connected to itself" in line]
        assert len(said) == 2, lines.lines
        assert f"127.0.0.1:{port}" in said[0] and "closed at once" in said[0] and "retrying" in said[0], said[0]

    logger.addHandler(lines)
    try:
        kit.run(scenario())
    finally:
        logger.removeHandler(lines)
