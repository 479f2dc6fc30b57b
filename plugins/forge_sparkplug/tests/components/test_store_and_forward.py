"""Store-and-forward: updates made while the broker is away reach the host after it is back, all of them, in
order, as historical metrics (is_historical), after the new births."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from forge_mqtt.testing import MosquittoServer

from .conftest import SparkplugPlant, Wire, broker_params, until

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(180)]

G, N = "sf", "edge1"


def test_updates_made_while_the_broker_is_down_are_replayed_in_order_with_is_historical(tmp_path: Path) -> None:
    broker = MosquittoServer(base_dir=tmp_path / "mosquitto")
    broker.start()
    params = broker_params(broker.host, broker.port)
    components = {
        "edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": params, "group": G, "node": N, "primary_host": "sf-host",
            "metrics": [{"name": "Count", "datatype": "Int64", "initial": 0}]}},
        "host": {"type": "sparkplug.host", "params": {"mqtt": params, "host_id": "sf-host", "groups": [G]}}}

    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", components, (broker.host, broker.port))
        await plant.start()
        edge, host = plant.component("edge"), plant.component("host")
        topic = f"sparkplug/update/{G}/{N}"
        try:
            await until(lambda: edge.in_session and host.primary and host.node_state(G, N), timeout=30, what="session")
            for count in range(1, 11):  # live
                await plant.publish(topic, "sparkplug.metric_update", {"metrics": [{"name": "Count", "value": count}]})
            await until(lambda: _values(plant, historical=False)[-1:] == [10], timeout=30, what="live data",
                        seen=lambda: _seen(plant, edge))
            # proven read by the broker (link_proof), or they would be replayed too (copies, historical)
            await until(lambda: not edge.unproven, timeout=30, what="the live data proven",
                        seen=lambda: _seen(plant, edge))
            broker.stop()
            # (the host's Will first: the node's NDEATH to a dead socket may wait 5 s, its old client's stop 2 s more)
            await until(lambda: not edge.client.connected, timeout=30, what="the edge node sees the broker gone")
            for count in range(11, 211):  # while the broker is away
                await plant.publish(topic, "sparkplug.metric_update", {"metrics": [{"name": "Count", "value": count}]})
            # the broker's shutdown may deliver the host's Will (STATE offline) first: then the live DATA of the last
            # host_lookback seconds (1-10) is stored ahead of the rest and replayed too (historical copies)
            await until(lambda: edge.stats["stored"] == 200
                        and edge.outbox.depth == 200 + edge.stats["lookback_stored"], timeout=30, what="200 stored",
                        seen=lambda: _seen(plant, edge))
            copies = edge.stats["lookback_stored"]
            broker.start()
            await until(lambda: len(_values(plant, historical=True)) == 200 + copies, timeout=60, what="the replay",
                        seen=lambda: _seen(plant, edge))
            # The host has them all, but the edge node ends its replay only when the broker has answered a probe
            # written after the last (link_proof): until then its outbox holds the page, and an update made meanwhile
            # is stored behind it and replayed, historical (the order kept). Waiting only for the host let 211-220 go
            # out historical on a loaded machine (a probe's answer handled late) and "live data after the replay"
            # time out.
            await until(lambda: edge.outbox.depth == 0 and edge.stats["replayed"] == 200 + copies, timeout=60,
                        what="the edge node's replay ended (its outbox empty)", seen=lambda: _seen(plant, edge))
            for count in range(211, 221):  # live again, after the replay
                await plant.publish(topic, "sparkplug.metric_update", {"metrics": [{"name": "Count", "value": count}]})
            await until(lambda: _values(plant, historical=False)[-1:] == [220], timeout=60,
                        what="live data after the replay", seen=lambda: _seen(plant, edge))
            assert _values(plant, historical=True) == list(range(11 - copies, 211)), "every stored update, in order"
            live = _values(plant, historical=False)
            assert live[:10] == list(range(1, 11)) and live[-10:] == list(range(211, 221))
            births = [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "birth"]
            assert len(births) >= 2 and edge.outbox.depth == 0 and edge.stats["replayed"] == 200 + copies
            # the historical values did not move the live value back
            assert host.node_state(G, N)["metrics"]["Count"]["value"] == 220
        finally:
            await plant.stop()

    try:
        asyncio.run(main())
    finally:
        broker.close()


def test_a_crashed_broker_s_retained_state_does_not_take_the_replay_to_nobody(tmp_path: Path) -> None:
    """A broker with persistence (the OEE line's mosquitto.conf) killed (SIGKILL, no Wills sent) keeps the host's
    STATE online of before the crash as the retained one. The edge node reconnects before the host (its reconnect
    delays are shorter) and gets that stale STATE: it births, but must not replay or send DATA to a host that is
    not there. When the host is back (its newer STATE online) the node births again and replays: every update made
    after the crash reaches the host. Before this rule the replay went out to nobody (updates 4-18 of 19 lost)."""
    broker = MosquittoServer(base_dir=tmp_path / "mosquitto", persistence=True)
    broker.start()
    quick = broker_params(broker.host, broker.port)
    slow = {**quick, "reconnect_min_delay": 4.0, "reconnect_max_delay": 4.0}
    components = {
        "edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": quick, "group": G, "node": "edge3", "primary_host": "sf-crash",
            "metrics": [{"name": "Count", "datatype": "Int64", "initial": 0}]}},
        "host": {"type": "sparkplug.host", "params": {"mqtt": slow, "host_id": "sf-crash", "groups": [G]}}}

    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", components, (broker.host, broker.port))
        await plant.start()
        edge, host = plant.component("edge"), plant.component("host")

        async def update(count: int) -> None:
            await plant.publish(f"sparkplug/update/{G}/edge3", "sparkplug.metric_update",
                                {"metrics": [{"name": "Count", "value": count}]})

        try:
            await until(lambda: edge.in_session and host.primary and host.node_state(G, "edge3"), what="session")
            for count in range(1, 4):
                await update(count)
            await until(lambda: _values(plant, historical=False)[-1:] == [3], what="live data")
            # Mosquitto's autosave (every second here) has the retained STATE online (the only retained message on
            # its topic; the clients' clean sessions are not saved): a fixed 2.5 s sleep was a guess on a loaded machine
            saved = broker.dir / "mosquitto.db"
            await until(lambda: saved.exists() and b"spBv1.0/STATE/sf-crash" in saved.read_bytes(), timeout=30,
                        what=f"the retained STATE online saved in {saved}",
                        seen=lambda: f"{saved.stat().st_size if saved.exists() else 'no'} bytes saved")
            await asyncio.to_thread(broker.kill)
            await until(lambda: not edge.client.connected, what="the edge node sees the broker gone")
            for count in range(4, 14):  # while the broker is down
                await update(count)
            await asyncio.to_thread(broker.start)
            await until(lambda: edge.in_session, what="the edge node born on the retained STATE")
            assert not edge.confirmed and edge.stats["unconfirmed_sessions"] == 1
            for count in range(14, 20):  # the broker is back, the host not yet
                await update(count)
            await until(lambda: edge.stats["host_resumed"] == 1 and edge.confirmed, timeout=30, what="the host back")
            await until(lambda: edge.outbox.depth == 0 and set(_values(plant, historical=True)) >= set(range(4, 20)),
                        timeout=30, what="the replay")
            assert _values(plant, historical=True)[-16:] == list(range(4, 20)), "every stored update, in order"
            assert host.node_state(G, "edge3")["metrics"]["Count"]["value"] == 19  # the newest birth's
        finally:
            await plant.stop()

    try:
        asyncio.run(main())
    finally:
        broker.close()


def _seen(plant: SparkplugPlant, edge: Any) -> str:
    """What the host and the edge node show, for a failure message."""
    historical, live = _values(plant, historical=True), _values(plant, historical=False)
    stats = {name: value for name, value in edge.stats.items() if value}
    return (f"historical {len(historical)} (first {historical[:3]}, last {historical[-3:]}), live {live[-12:]}, "
            f"edge in_session={edge.in_session} confirmed={edge.confirmed} outbox depth={edge.outbox.depth} "
            f"stats={stats}")


def _values(plant: SparkplugPlant, *, historical: bool) -> list[int]:
    return [metric["value"] for message in plant.sent("sparkplug.metrics") if message["kind"] == "data"
            for metric in message["metrics"] if metric["historical"] is historical]


def test_a_wire_client_sees_historical_flags(tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """The flag is on the wire too: replayed NDATA metrics carry is_historical (tck: store and forward)."""
    params = broker_params(mosquitto_server.host, mosquitto_server.port)
    components = {"edge": {"type": "sparkplug.edge_node", "params": {
        "mqtt": params, "group": G, "node": "edge2", "primary_host": "sf-absent",
        "metrics": [{"name": "Count", "datatype": "Int64", "initial": 0}]}}}

    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", components, (mosquitto_server.host, mosquitto_server.port))
        await plant.start()
        try:  # the primary host is not there: stored
            for count in (1, 2, 3):
                await plant.publish(f"sparkplug/update/{G}/edge2", "sparkplug.metric_update",
                                    {"metrics": [{"name": "Count", "value": count}]})
            edge = plant.component("edge")  # a fixed 0.5 s sleep before counting was a guess on a loaded machine
            await until(lambda: edge.outbox.depth == 3, what="3 updates stored",
                        seen=lambda: f"outbox depth {edge.outbox.depth}, stats {edge.stats}")
            assert edge.stats["data_sent"] == 0 and not wire.on(f"spBv1.0/{G}/NDATA/edge2")
            wire.publish("spBv1.0/STATE/sf-absent", b'{"online": true, "timestamp": 1}', qos=1, retain=True)
            data = await until(lambda: len(wire.on(f"spBv1.0/{G}/NDATA/edge2")) == 3
                               and wire.on(f"spBv1.0/{G}/NDATA/edge2"), what="replayed NDATA",
                               seen=lambda: [s.topic for s in wire.seen])
            metrics = [s.payload({1: 4}).metrics[0] for s in data]
            assert [(m.value, m.is_historical) for m in metrics] == [(1, True), (2, True), (3, True)]
            assert [s.payload({1: 4}).seq for s in data] == [1, 2, 3]  # after the NBIRTH (seq 0)
        finally:
            await plant.stop()
            wire.publish("spBv1.0/STATE/sf-absent", b"", qos=1, retain=True)

    asyncio.run(main())
