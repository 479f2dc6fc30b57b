"""QoS 0 DATA on a link that died unnoticed (real Mosquitto behind a TCP proxy that can go silent).

A network that drops packets without closing the connection (a cable pulled, a NAT entry gone) is noticed by
paho only by keepalive, by the broker after 1.5 x keepalive. What the edge node wrote meanwhile was QoS 0,
as the specification requires of DATA, and is gone. With ``link_proof`` the node keeps each DATA until a
round trip to the broker after it (an UNSUBSCRIBE answered by UNSUBACK) proves the broker read it, and
stores what is unproven when the connection is found dead: it is replayed, historical, after the next
births. With ``link_proof: 0`` (DATA leaves the node once written to the socket) those updates are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from .conftest import SparkplugPlant, broker_params, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

G = "proof"


class SilentProxy:
    """TCP proxy to the broker; ``silence()`` stops carrying bytes either way without closing anything (a dead
    link), ``restore()`` closes the silenced connections and carries new ones again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.silent = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> SilentProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.silent:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.silent:  # silent: read and dropped, as a dead network does
                writer.write(data)
                await writer.drain()

    def silence(self) -> None:
        self.silent = True

    def restore(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.writers.clear()
        self.silent = False

    async def close(self) -> None:
        self.restore()
        if self.server is not None:
            self.server.close()


@pytest.mark.parametrize("link_proof", [0.5, 0.0])
def test_data_written_into_a_link_that_died_unnoticed_is_stored_and_replayed(
        tmp_path: Path, mosquitto_server: Any, link_proof: float) -> None:
    """link_proof 0.5: updates 6-15, written after the link went silent and before paho noticed (keepalive 5 s),
    reach the host as historical after the reconnect; every update arrives, in order once copies are set aside.
    link_proof 0: they are lost (the former behaviour, and why the setting exists)."""
    host_id = f"proof-host-{int(link_proof * 10)}"

    async def main() -> None:
        proxy = await SilentProxy(mosquitto_server.host, mosquitto_server.port).start()
        direct = broker_params(mosquitto_server.host, mosquitto_server.port)
        via_proxy = broker_params("127.0.0.1", proxy.port)
        plant = SparkplugPlant(tmp_path / "plant", {
            "host": {"type": "sparkplug.host", "params": {"mqtt": direct, "host_id": host_id, "groups": [G]}},
            "edge": {"type": "sparkplug.edge_node", "params": {
                "mqtt": via_proxy, "group": G, "node": "n1", "primary_host": host_id, "link_proof": link_proof,
                "unconfirmed_hold": 1.0, "metrics": [{"name": "Count", "datatype": "Int64", "initial": 0}]}}},
            (mosquitto_server.host, mosquitto_server.port))
        await plant.start()
        edge, host = plant.component("edge"), plant.component("host")

        async def update(value: int) -> None:
            await plant.publish(f"sparkplug/update/{G}/n1", "sparkplug.metric_update",
                                {"metrics": [{"name": "Count", "value": value}]})

        def counts() -> list[tuple[int, bool]]:
            return [(m["value"], m["historical"]) for s in plant.sent("sparkplug.metrics") if s["kind"] == "data"
                    for m in s["metrics"] if m["name"] == "Count"]

        try:
            await until(lambda: edge.in_session and host.primary and host.node_state(G, "n1"), what="session")
            for value in range(1, 6):
                await update(value)
            await until(lambda: len(counts()) == 5, what="live data")
            if link_proof:
                await until(lambda: not edge.unproven, what="the live data proven")
            proxy.silence()
            for value in range(6, 16):
                await update(value)
                await asyncio.sleep(0.1)  # pacing (10 writes over ~1 s, across link proofs), not a wait
            # written into the silent link (the node has not noticed yet): sent, not stored; an update reaches
            # the node through the bus, which may lag behind publish on a loaded box
            await until(lambda: edge.stats["data_sent"] >= 15, what="6-15 written into the silent link",
                        seen=lambda: (edge.client.connected, edge.stats))
            await until(lambda: not edge.client.connected, timeout=30, what="paho noticing the dead link")
            proxy.restore()
            await until(lambda: edge.in_session and edge.confirmed and edge.outbox.depth == 0, timeout=30,
                        what="the next session, replayed")
            await update(16)
            await until(lambda: counts() and counts()[-1] == (16, False), what="live data again")
            values = [v for v, _ in counts()]
            if link_proof:
                assert edge.stats["unproven_stored"] == 10 and edge.stats["link_proofs"] >= 1
                assert values == list(range(1, 17)), counts()
                assert counts()[5:15] == [(v, True) for v in range(6, 16)], "replayed, historical"
            else:
                assert values == [1, 2, 3, 4, 5, 16], "written into the dead link: lost"
        finally:
            await plant.stop()
            await proxy.close()

    asyncio.run(main())
