"""sparkplug.host on a real Mosquitto: STATE, births to the bus, seq gaps, and primary failover with fencing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from forge_core.tactics.leader.lease import LeaseBackendUnavailable

from forge_sparkplug.codec import Metric, encode

from .conftest import SparkplugPlant, Wire, broker_params, run_plant, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

G = "hosttest"


def _host(mosquitto: Any, host_id: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "sparkplug.host", "replicas": replicas, "params": {
        "mqtt": broker_params(mosquitto.host, mosquitto.port), "host_id": host_id, "groups": [G],
        "reorder_timeout": 0.5, **extra}}


def _edge(mosquitto: Any, node: str, **extra: Any) -> dict[str, Any]:
    return {"type": "sparkplug.edge_node", "params": {
        "mqtt": broker_params(mosquitto.host, mosquitto.port), "group": G, "node": node,
        "metrics": [{"name": "Count", "datatype": "Int32", "initial": 0}],
        "devices": {"m1": {"metrics": [{"name": "Speed", "datatype": "Float"}]}}, **extra}}


def _run(tmp_path: Path, mosquitto: Any, components: dict[str, Any], scenario: Any) -> None:
    run_plant(tmp_path / "plant", mosquitto, components, scenario)


def _state(seen: Any) -> dict[str, Any]:
    return json.loads(seen.body)


def test_state_birth_is_retained_qos1_with_the_will_s_timestamp_and_metrics_reach_the_bus(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """tck-id-host-topic-phid-birth-topic, -birth-qos (1), -birth-retain, -birth-payload,
    tck-id-message-flow-phid-sparkplug-state-publish-payload-timestamp; tck-id-host-topic-phid-death-payload-timestamp-
    disconnect-clean (STATE offline on a clean stop); births and data become sparkplug.metrics / node_state."""
    topic = "spBv1.0/STATE/scada-a"

    async def scenario(plant: SparkplugPlant) -> None:
        (birth,) = await until(lambda: wire.on(topic), what="STATE birth")
        body = _state(birth)
        assert (birth.qos, birth.retain, body["online"]) == (1, True, True) or (birth.qos, body["online"]) == (1, True)
        assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_600_000_000_000
        await until(lambda: plant.sent("sparkplug.metrics"), what="births on the bus")
        await plant.publish(f"sparkplug/update/{G}/n1", "sparkplug.metric_update",
                            {"device": "m1", "metrics": [{"name": "Speed", "value": 2.5}]})
        data = await until(lambda: [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "data"], what="data")
        assert data[0]["device"] == "m1" and data[0]["metrics"][0]["name"] == "Speed"
        assert data[0]["metrics"][0]["value"] == 2.5 and data[0]["metrics"][0]["quality"] == 192
        states = plant.sent("sparkplug.node_state")
        assert {(s["node"], s["device"], s["online"]) for s in states} >= {("n1", None, True), ("n1", "m1", True)}
        view = plant.component("host").node_state(G, "n1")
        assert view["online"] and view["devices"]["m1"]["metrics"]["Speed"]["value"] == 2.5
        assert plant.runtime is not None
        await plant.runtime.kill("edge")  # NDEATH: the node and its device offline, metrics stale
        await until(lambda: not plant.component("host").node_state(G, "n1")["online"], what="node offline")
        view = plant.component("host").node_state(G, "n1")
        assert view["devices"]["m1"]["metrics"]["Speed"]["quality"] == 500 and not view["devices"]["m1"]["online"]

    _run(tmp_path, mosquitto_server, {"host": _host(mosquitto_server, "scada-a"),
                                      "edge": _edge(mosquitto_server, "n1", primary_host="scada-a")},
         scenario)
    offline = _state(wire.on(topic)[-1])
    assert offline["online"] is False, "a clean stop publishes STATE offline"
    wire.publish(topic, b"", qos=1, retain=True)


def test_a_seq_gap_not_closed_within_the_reorder_timeout_asks_for_a_rebirth(tmp_path: Path, mosquitto_server: Any,
                                                                            wire: Wire) -> None:
    """tck-id-operational-behavior-host-reordering-start, -reordering-rebirth, -reordering-success; a stale NDEATH
    (another bdSeq) is ignored; DATA before NBIRTH asks for a rebirth. The edge node here is a plain paho client."""
    node = f"spBv1.0/{G}/NDATA/fake"
    birth = encode(1, [Metric(name="bdSeq", datatype=4, value=5), Metric(name="Node Control/Rebirth", datatype=11,
                                                                         value=False),
                       Metric(name="X", alias=1, datatype=3, value=0)], seq=0)

    def data(seq: int, value: int) -> bytes:
        return encode(2, [Metric(alias=1, value=value, timestamp=2)], seq=seq, datatype_of={1: 3})

    async def scenario(plant: SparkplugPlant) -> None:
        await until(lambda: wire.on("spBv1.0/STATE/scada-b"), what="STATE")
        host = plant.component("host")
        wire.publish(f"spBv1.0/{G}/NBIRTH/fake", birth)
        await until(lambda: host.stats["births"] == 1, what="birth")
        wire.publish(node, data(2, 20))  # 1 is late
        wire.publish(node, data(1, 10))  # ... and arrives within the window: in order, no rebirth
        await until(lambda: host.stats["reordered"] == 1, what="reordered")
        values = [m["metrics"][0]["value"] for m in plant.sent("sparkplug.metrics") if m["kind"] == "data"]
        assert values == [10, 20]
        wire.publish(node, data(5, 50))  # 3 and 4 never come
        ncmd = await until(lambda: wire.on(f"spBv1.0/{G}/NCMD/fake"), what=f"rebirth request {host.stats}")
        request = {m.name: m.value for m in ncmd[0].payload().metrics}
        assert request["Node Control/Rebirth"] is True and isinstance(request["Forge/Epoch"], int)
        assert request["Forge/Lease"] == "sparkplug-host-scada-b"
        assert ncmd[0].payload().seq is None and host.stats["seq_gaps"] == 1
        wire.publish(f"spBv1.0/{G}/NDEATH/fake", encode(3, [Metric(name="bdSeq", datatype=4, value=4)]))
        await until(lambda: host.stats["stale_deaths"] == 1, what="stale NDEATH ignored")
        assert host.node_state(G, "fake")["online"]
        wire.publish(f"spBv1.0/{G}/NDATA/other", data(1, 1))
        await until(lambda: len(wire.on(f"spBv1.0/{G}/NCMD/other")) == 1, what="rebirth for DATA before NBIRTH")

    _run(tmp_path, mosquitto_server, {"host": _host(mosquitto_server, "scada-b")}, scenario)
    wire.publish("spBv1.0/STATE/scada-b", b"", qos=1, retain=True)


def test_primary_failover_state_follows_the_leader_and_a_deposed_host_s_commands_are_refused(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """Two host replicas, one primary through the lease. Killing the primary: the broker publishes its STATE Will
    (offline), the edge node ends its session, the other replica is elected, publishes STATE online with a newer
    timestamp, the edge node births again; commands carry each primary's epoch and a command with the old
    primary's epoch is refused by the edge node."""
    state = "spBv1.0/STATE/scada-ha"
    ncmd = f"spBv1.0/{G}/NCMD/n2"

    async def command(plant: SparkplugPlant, value: int) -> None:
        await plant.publish(f"sparkplug/command/{G}/n2", "sparkplug.command",
                            {"group": G, "node": "n2", "metrics": [{"name": "Count", "value": value}]})

    async def scenario(plant: SparkplugPlant) -> None:
        online = await until(lambda: [s for s in wire.on(state) if _state(s)["online"]], what="STATE online")
        hosts = [plant.component("host-0"), plant.component("host-1")]
        first = await until(lambda: next((h for h in hosts if h.primary), None), what="a primary")
        await until(lambda: wire.on(f"spBv1.0/{G}/NBIRTH/n2"), what="NBIRTH after STATE online")
        await until(lambda: first.node_state(G, "n2") and first.node_state(G, "n2")["online"], what="node known")
        await command(plant, 11)
        writes = await until(lambda: plant.sent("sparkplug.write"), what="first write")
        old_epoch = writes[0]["epoch"]
        assert writes[0]["metrics"][0]["value"] == 11 and old_epoch == first.epoch
        assert plant.runtime is not None
        await plant.runtime.kill(first.name)
        offline = await until(lambda: [s for s in wire.on(state) if not _state(s)["online"]], what="the Will")
        assert _state(offline[0])["timestamp"] == _state(online[0])["timestamp"]
        second = next(h for h in hosts if h is not first)
        await until(lambda: second.primary, what="the other replica elected")
        online_again = await until(lambda: [s for s in wire.on(state) if _state(s)["online"]][1:], what="STATE again")
        assert _state(online_again[0])["timestamp"] > _state(offline[0])["timestamp"]
        assert second.epoch is not None and second.epoch > old_epoch
        await until(lambda: len(wire.on(f"spBv1.0/{G}/NBIRTH/n2")) >= 2, what="the edge node births again")
        await until(lambda: second.node_state(G, "n2") and second.node_state(G, "n2")["online"], what="node known")
        await command(plant, 22)
        await until(lambda: len(plant.sent("sparkplug.write")) == 2, what="second write")
        assert plant.sent("sparkplug.write")[1]["epoch"] == second.epoch
        # the deposed primary's command (what a paused old primary would still send): refused
        wire.publish(ncmd, encode(1, [Metric(alias=1, datatype=3, value=33),
                                      Metric(name="Forge/Epoch", datatype=4, value=old_epoch),
                                      Metric(name="Forge/Lease", datatype=12, value=first.lease)]))
        edge = plant.component("edge")
        await until(lambda: edge.stats["stale_commands"] == 1, what="stale command refused")
        assert [w["metrics"][0]["value"] for w in plant.sent("sparkplug.write")] == [11, 22]

    _run(tmp_path, mosquitto_server, {"host": _host(mosquitto_server, "scada-ha", replicas=2),
                                      "edge": _edge(mosquitto_server, "n2", primary_host="scada-ha")}, scenario)
    wire.publish(state, b"", qos=1, retain=True)


def test_a_deposed_primary_publishes_state_offline_and_edge_nodes_store_until_the_next_primary(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """A primary that loses its lease while alive (cut off from the lease backend) publishes STATE offline with its
    birth's timestamp, retained, QoS 1 [tck-id-host-topic-phid-death-payload-disconnect-clean]; the edge node ends
    its session and stores its updates [tck-id-message-flow-edge-node-birth-publish-phid-offline]; when the other
    replica is elected and publishes STATE online, the node births again and replays them, in order, historical.
    Before, the deposed host left STATE online: the node sent the updates live while no replica was primary, and
    they never reached the bus."""
    state = "spBv1.0/STATE/scada-dep"
    cut: set[str] = set()

    async def update(plant: SparkplugPlant, value: int) -> None:
        await plant.publish(f"sparkplug/update/{G}/n3", "sparkplug.metric_update",
                            {"metrics": [{"name": "Count", "value": value}]})

    def counts(plant: SparkplugPlant) -> list[tuple[int, bool]]:
        return [(m["value"], m["historical"]) for s in plant.sent("sparkplug.metrics") if s["kind"] == "data"
                for m in s["metrics"] if m["name"] == "Count"]

    async def scenario(plant: SparkplugPlant) -> None:
        online = await until(lambda: [s for s in wire.on(state) if _state(s)["online"]], what="STATE online")
        hosts = [plant.component("host-0"), plant.component("host-1")]
        first = await until(lambda: next((h for h in hosts if h.primary), None), what="a primary")
        second = next(h for h in hosts if h is not first)
        edge = plant.component("edge")
        await until(lambda: edge.in_session and first.node_state(G, "n3") and first.node_state(G, "n3")["online"],
                    what="the node's session with the first primary")
        for value in (1, 2, 3):
            await update(plant, value)
        await until(lambda: len(counts(plant)) == 3 and not edge.unproven, what="live data, proven read (link_proof)")

        backend = first.elector.backend  # one lease backend for both replicas (tactics.leader: memory)
        acquire, renew = backend.try_acquire, backend.renew

        async def try_acquire(name: str, holder: str, *args: Any) -> Any:
            if holder in cut:
                raise LeaseBackendUnavailable(f"{holder} is cut off from the lease backend (test)")
            return await acquire(name, holder, *args)

        async def renew_(name: str, holder: str, *args: Any) -> Any:
            if holder in cut:
                raise LeaseBackendUnavailable(f"{holder} is cut off from the lease backend (test)")
            return await renew(name, holder, *args)

        backend.try_acquire, backend.renew = try_acquire, renew_
        cut.update({first.name, second.name})  # nobody can be primary for a while
        await until(lambda: not first.primary, what="the primary deposed")
        offline = await until(lambda: [s for s in wire.on(state) if not _state(s)["online"]], what="STATE offline")
        assert _state(offline[0]) == {"online": False, "timestamp": _state(online[0])["timestamp"]}
        assert offline[0].qos == 1
        # what a node connecting now reads
        late = Wire(mosquitto_server.host, mosquitto_server.port, client_id="wire-late")
        try:
            retained = await until(lambda: late.on(state), what="the retained STATE")
            assert retained[-1].retain and _state(retained[-1]) == _state(offline[0])
        finally:
            late.close()
        await until(lambda: edge.stats["host_offline"] == 1 and not edge.in_session, what="offline-host mode")
        for value in range(4, 11):
            await update(plant, value)
        await until(lambda: edge.stats["stored"] == 7, what=f"updates stored {edge.stats}")
        assert len(counts(plant)) == 3, "nothing reached the bus while no host was primary"

        cut.discard(second.name)  # the other replica can be elected now
        await until(lambda: second.primary, what="the other replica elected")
        online_again = await until(lambda: [s for s in wire.on(state) if _state(s)["online"]][1:], what="STATE again")
        assert _state(online_again[0])["timestamp"] > _state(offline[0])["timestamp"]
        # 1-3 were sent in the last host_lookback seconds before the STATE offline: replayed too, historical copies
        assert edge.stats["lookback_stored"] == 3
        await until(lambda: len(counts(plant)) == 13, what=f"the replay {counts(plant)}")
        assert counts(plant) == [(1, False), (2, False), (3, False)] + [(v, True) for v in range(1, 11)]
        await until(lambda: edge.stats["replayed"] == 10, what="the replay proven read by the broker")
        assert not first.primary

    _run(tmp_path, mosquitto_server, {"host": _host(mosquitto_server, "scada-dep", replicas=2),
                                      "edge": _edge(mosquitto_server, "n3", primary_host="scada-dep")}, scenario)
    wire.publish(state, b"", qos=1, retain=True)


def test_an_update_with_a_metric_twice_is_one_data_carrying_both_values_in_order(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """Several instants of a metric in one update (oee_line's gateway window): one DDATA, each value with its
    timestamp, and the host puts every one on the bus in order (none folded into the last)."""

    async def scenario(plant: SparkplugPlant) -> None:
        await until(lambda: [m for m in plant.sent("sparkplug.metrics") if m["device"] == "m1"], what="births")
        await plant.publish(f"sparkplug/update/{G}/n2", "sparkplug.metric_update", {"device": "m1", "metrics": [
            {"name": "Speed", "value": 1.5, "timestamp": 1_000}, {"name": "Speed", "value": 2.5, "timestamp": 2_000},
            {"name": "Speed", "value": 3.5, "timestamp": 3_000}]})
        data = await until(lambda: [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "data"], what="data")
        assert [(m["value"], m["timestamp"]) for m in data[0]["metrics"]] == [(1.5, 1_000), (2.5, 2_000), (3.5, 3_000)]
        ddata = wire.on(f"spBv1.0/{G}/DDATA/n2/m1")
        metrics = ddata[0].payload().metrics  # by alias: one alias three times, each instant's timestamp
        assert len(ddata) == 1 and len({m.alias for m in metrics}) == 1 and [m.timestamp for m in metrics] == [
            1_000, 2_000, 3_000]
        assert plant.component("host").node_state(G, "n2")["devices"]["m1"]["metrics"]["Speed"]["value"] == 3.5

    _run(tmp_path, mosquitto_server, {"host": _host(mosquitto_server, "scada-d"),
                                      "edge": _edge(mosquitto_server, "n2", primary_host="scada-d")},
         scenario)
    wire.publish("spBv1.0/STATE/scada-d", b"", qos=1, retain=True)
