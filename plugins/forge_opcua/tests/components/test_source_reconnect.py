"""The known pain point: a PLC (a real asyncua server in its own process) goes away and comes back on the
same port. The source notices, says so, reconnects with backoff, subscribes again, and the server
then holds exactly one subscription with one monitored item per tag: none left over, none doubled."""

from __future__ import annotations

import asyncio

import pytest

from forge_opcua.testing import PlcSimulatorServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.mark.parametrize("outage", ["stop", "kill"])
def test_server_restart_resubscribes_exactly_once(kit, tmp_path, outage) -> None:
    with PlcSimulatorServer(params={"machines": ["M1", "M2"], "timing": kit.BUSY}) as server:
        diagnostics = [server.node("Diagnostics.Subscriptions"), server.node("Diagnostics.MonitoredItems")]
        components = {"src": kit.source(server.endpoint, browse=[{"path": "Machines"}], nodes=diagnostics)}

        async def scenario() -> None:
            async with kit.real_plant(tmp_path, components) as plant:
                source = plant.component("src")

                def latest(tag: str):
                    values = plant.messages("opcua.data_change", lambda m: m["tag"] == tag)
                    return values[-1]["value"] if values else None

                def server_holds(subscriptions: int, items: int) -> bool:
                    return latest("Subscriptions") == subscriptions and latest("MonitoredItems") == items

                await plant.until(lambda: server_holds(1, 14), what="1 subscription, 12 + 2 items")
                before = source.session.subscription_id
                await asyncio.to_thread(getattr(server, outage))
                await plant.until(lambda: source.losses == 1 and not source.connected, what="the loss noticed")
                # the status message is published after the source notes the loss: wait for it on the bus
                await plant.until(lambda: not plant.messages("opcua.source_status")[-1]["connected"],
                                  what="the loss published")
                lost = plant.messages("opcua.source_status")[-1]
                assert lost["connected"] is False and lost["subscription_id"] is None
                # a reconnect attempt against the closed port fails: waited for, not slept for (a fixed 1.5 s
                # sleep asserted a failed attempt by then, and on a loaded machine one attempt can take longer)
                await plant.until(lambda: source.connect_failures >= 1, what="a failed reconnect attempt")
                assert not source.health()["ready"]
                plant.seen.clear()
                await asyncio.to_thread(server.start)
                await plant.until(lambda: source.connected and source.connects == 2, what="resubscribed")
                await plant.until(lambda: server_holds(1, 14), what="still 1 subscription after the restart")
                assert source.session.subscription_id is not None
                assert len(source.session.client._subscriptions) == 1  # the asyncua client holds one too
                back = plant.messages("opcua.source_status", lambda m: m["connected"])
                assert back[-1]["reason"] == "resubscribed" and back[-1]["monitored_items"] == 14
                # the machines count again from 0 in the new server process: one subscription means each
                # count is delivered once, so a machine's counts only ever rise
                await plant.until(lambda: (latest("M1/TotalCount") or 0) >= 5, what="counting again")
                counts = [m["value"] for m in plant.messages("opcua.data_change",
                                                               lambda m: m["tag"] == "M1/TotalCount")]
                assert counts == sorted(set(counts)), counts
                assert source.report()["dropped"] == 0
                assert before is not None

        kit.run(scenario())


def test_a_network_break_leaves_no_second_subscription_on_the_server(kit, tmp_path) -> None:
    """The server stays up; the network between source and server goes silent, then comes back. The
    server keeps the old session's subscription (Part 4, 6.7); the new session takes it over and
    deletes it, so the server holds one subscription again at once, not after session_timeout."""
    async def scenario() -> None:
        async with kit.plc_server(timing=kit.BUSY) as plc, kit.Proxy("127.0.0.1", plc.port) as proxy:
            endpoint = f"opc.tcp://127.0.0.1:{proxy.port}/forge/plc"
            nodes = [{"node_id": kit.node(f"{m}.TotalCount"), "tag": f"{m}/TotalCount"} for m in ("M1", "M2")]
            params = {"nodes": nodes, "request_timeout": 2.0, "session_timeout": 60.0}
            async with kit.real_plant(tmp_path, {"src": kit.source(endpoint, **params)}) as plant:
                source = plant.component("src")
                await plant.until(lambda: source.connected, what="subscribed")
                updates = asyncio.create_task(_tick(plc))
                old = source.session.subscription_id
                proxy.cut()
                await plant.until(lambda: source.losses == 1, what="the silence noticed by the watchdog")
                assert list(plc.subscriptions()) == [old]  # the server still holds it
                await asyncio.sleep(2.0)  # reconnects time out while the network is silent
                proxy.heal()
                await plant.until(lambda: source.connected and source.connects == 2, what="reconnected")
                assert source.session.reclaimed == old
                assert list(plc.subscriptions()) == [source.session.subscription_id] != [old]
                plant.seen.clear()
                await plant.until(lambda: len(plant.messages("opcua.data_change")) >= 10, what="data again")
                counts = [m["value"] for m in plant.messages("opcua.data_change",
                                                             lambda m: m["tag"] == "M1/TotalCount")]
                assert counts == sorted(set(counts)), counts
                updates.cancel()

    kit.run(scenario())


async def _tick(plc) -> None:
    import time

    while True:
        await plc.update(time.time())
        await asyncio.sleep(0.05)
