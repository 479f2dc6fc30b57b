"""sparkplug.edge_node on a real Mosquitto, each test named after the Sparkplug 3.0 normative statements
it checks (tck-id-...), read off the wire by a plain paho client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forge_sparkplug.codec import Metric, encode

from .conftest import SparkplugPlant, Wire, broker_params, run_plant, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

G, N = "line1", "gateway"
NODE = f"spBv1.0/{G}/{{}}/{N}"


def _edge(mosquitto: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "sparkplug.edge_node", "params": {
        "mqtt": broker_params(mosquitto.host, mosquitto.port), "group": G, "node": N,
        "metrics": [{"name": "Uptime", "datatype": "Int64", "initial": 0}],
        "devices": {"press": {"metrics": [{"name": "Temp", "datatype": "Double", "deadband": 0.5},
                                          {"name": "State", "datatype": "String", "initial": "idle"}]}},
        **extra}}


def _run(tmp_path: Path, mosquitto: Any, scenario: Any, **edge: Any) -> None:
    run_plant(tmp_path / "plant", mosquitto, {"edge": _edge(mosquitto, **edge)}, scenario)


def _by_name(metrics: list[Metric]) -> dict[str, Metric]:
    return {m.name: m for m in metrics if m.name is not None}


def test_nbirth_topic_qos_seq_bdseq_rebirth_metric_and_every_metric(tmp_path: Path, mosquitto_server: Any,
                                                                    wire: Wire) -> None:
    """tck-id-topics-nbirth-topic, -nbirth-mqtt (QoS 0, not retained), -nbirth-seq-num (0), -nbirth-timestamp,
    -nbirth-metrics (name, datatype, value), -nbirth-bdseq-included, -nbirth-rebirth-metric,
    tck-id-operational-behavior-data-commands-rebirth-name-aliases (no alias), tck-id-payloads-alias-birth-requirement,
    tck-id-topics-dbirth-topic, -dbirth-seq, tck-id-payloads-dbirth-order."""
    async def scenario(plant: SparkplugPlant) -> None:
        (birth,) = await until(lambda: wire.on(NODE.format("NBIRTH")), what="NBIRTH")
        (dbirth,) = await until(lambda: wire.on(NODE.format("DBIRTH") + "/press"), what="DBIRTH")
        assert (birth.qos, birth.retain, dbirth.qos, dbirth.retain) == (0, False, 0, False)
        payload = birth.payload()
        assert payload.seq == 0 and payload.timestamp and payload.timestamp > 1_600_000_000_000
        metrics = _by_name(payload.metrics)
        assert metrics["bdSeq"].datatype == 4 and metrics["bdSeq"].value == 0
        rebirth = metrics["Node Control/Rebirth"]
        assert (rebirth.datatype, rebirth.value, rebirth.alias) == (11, False, None)
        uptime = metrics["Uptime"]
        assert (uptime.alias, uptime.datatype, uptime.value) == (1, 4, 0) and uptime.timestamp
        device = dbirth.payload()
        assert device.seq == 1
        by_name = _by_name(device.metrics)
        assert (by_name["Temp"].alias, by_name["Temp"].datatype, by_name["Temp"].is_null) == (2, 10, True)
        assert (by_name["State"].alias, by_name["State"].value) == (3, "idle")
        assert wire.seen.index(birth) < wire.seen.index(dbirth)

    _run(tmp_path, mosquitto_server, scenario)


def test_ndata_ddata_seq_increments_and_wraps_by_alias_only_reported_by_exception(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """tck-id-topics-ndata-seq-num, -ddata-seq-num, tck-id-payloads-sequence-num-incrementing (255 -> 0),
    tck-id-payloads-alias-data-cmd-requirement (alias, no name), tck-id-payloads-name-birth-data-requirement
    (timestamp on every metric), tck-id-topics-ddata-payload (only what changed), -ndata-mqtt, -ddata-mqtt."""
    async def scenario(plant: SparkplugPlant) -> None:
        await until(lambda: wire.on(NODE.format("DBIRTH") + "/press"), what="DBIRTH")
        topic = f"sparkplug/update/{G}/{N}"
        await plant.publish(topic, "sparkplug.metric_update", {"device": "press", "metrics": [
            {"name": "Temp", "value": 20.0}, {"name": "State", "value": "idle"}]})  # State unchanged: not sent
        await plant.publish(topic, "sparkplug.metric_update", {"device": "press", "metrics": [
            {"name": "Temp", "value": 20.3}]})  # within the deadband: nothing
        for uptime in range(1, 301):
            await plant.publish(topic, "sparkplug.metric_update", {"metrics": [{"name": "Uptime", "value": uptime}]})
        ndata = await until(lambda: len(wire.on(NODE.format("NDATA"))) == 300 and wire.on(NODE.format("NDATA")),
                            what="300 NDATA")
        (ddata,) = wire.on(NODE.format("DDATA") + "/press")
        first = ddata.payload({2: 10, 3: 12})
        assert first.seq == 2 and [(m.name, m.alias, m.value) for m in first.metrics] == [(None, 2, 20.0)]
        assert all(m.timestamp for m in first.metrics) and (ddata.qos, ddata.retain) == (0, False)
        seqs = [s.payload({1: 4}).seq for s in ndata]
        assert seqs == [(3 + i) % 256 for i in range(300)]  # 255 is followed by 0
        values = [s.payload({1: 4}).metrics[0].value for s in ndata]
        assert values == list(range(1, 301))
        assert plant.component("edge").stats["unchanged"] == 1

    _run(tmp_path, mosquitto_server, scenario)


def test_ndeath_is_the_will_with_the_nbirth_s_bdseq_and_bdseq_increments_per_connect(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """tck-id-payloads-ndeath-will-message (+ -qos 1, -retain false), tck-id-topics-ndeath-payload (only bdSeq),
    tck-id-topics-ndeath-seq (no seq), tck-id-topics-nbirth-bdseq-matching, tck-id-payloads-ndeath-bdseq,
    tck-id-topics-nbirth-bdseq-increment: the edge node is killed (no DISCONNECT), the broker publishes its Will;
    the revived node connects with the next bdSeq."""
    async def scenario(plant: SparkplugPlant) -> None:
        (birth,) = await until(lambda: wire.on(NODE.format("NBIRTH")), what="NBIRTH")
        assert plant.runtime is not None
        await plant.runtime.kill("edge")
        (death,) = await until(lambda: wire.on(NODE.format("NDEATH")), what="NDEATH (the Will)")
        payload = death.payload()
        assert payload.seq is None and [m.name for m in payload.metrics] == ["bdSeq"]
        assert payload.metrics[0].value == _by_name(birth.payload().metrics)["bdSeq"].value == 0
        assert death.retain is False
        plant.runtime.revive("edge")
        births = await until(lambda: len(wire.on(NODE.format("NBIRTH"))) == 2 and wire.on(NODE.format("NBIRTH")),
                             what="second NBIRTH")
        assert _by_name(births[1].payload().metrics)["bdSeq"].value == 1

    _run(tmp_path, mosquitto_server, scenario)


def test_rebirth_request_gets_nbirth_seq_0_same_bdseq_and_dbirths(tmp_path: Path, mosquitto_server: Any,
                                                                  wire: Wire) -> None:
    """tck-id-operational-behavior-data-commands-rebirth-action-1/2/3, tck-id-message-flow-edge-node-ncmd-subscribe."""
    async def scenario(plant: SparkplugPlant) -> None:
        await until(lambda: wire.on(NODE.format("DBIRTH") + "/press"), what="DBIRTH")
        wire.publish(NODE.format("NCMD"), encode(1, [Metric(name="Node Control/Rebirth", datatype=11, value=True)]))
        births = await until(lambda: len(wire.on(NODE.format("NBIRTH"))) == 2 and wire.on(NODE.format("NBIRTH")),
                             what="rebirth")
        again = births[1].payload()
        assert again.seq == 0 and _by_name(again.metrics)["bdSeq"].value == _by_name(births[0].payload().metrics)[
            "bdSeq"].value
        await until(lambda: len(wire.on(NODE.format("DBIRTH") + "/press")) == 2, what="DBIRTH after the rebirth")
        assert plant.component("edge").stats["rebirths"] == 1

    _run(tmp_path, mosquitto_server, scenario)


def test_ncmd_and_dcmd_writes_reach_the_bus_and_stale_epochs_are_refused(tmp_path: Path, mosquitto_server: Any,
                                                                         wire: Wire) -> None:
    """tck-id-operational-behavior-data-commands-ncmd-verb / -dcmd-verb; Forge's fencing: a command whose
    Forge/Epoch is older than the newest seen with its Forge/Lease is a deposed host's and is refused."""
    async def scenario(plant: SparkplugPlant) -> None:
        await until(lambda: wire.on(NODE.format("DBIRTH") + "/press"), what="DBIRTH")
        lease = Metric(name="Forge/Lease", datatype=12, value="sparkplug-host-scada")
        epoch = Metric(name="Forge/Epoch", datatype=4, value=7)
        wire.publish(NODE.format("DCMD") + "/press", encode(1, [Metric(alias=3, datatype=12, value="run"), epoch,
                                                                lease]))
        wire.publish(NODE.format("NCMD"), encode(2, [Metric(name="Uptime", datatype=4, value=5),
                                                     Metric(name="Forge/Epoch", datatype=4, value=6), lease]))  # stale
        writes = await until(lambda: plant.sent("sparkplug.write"), what="sparkplug.write")
        assert writes == [{"group": G, "node": N, "device": "press", "epoch": 7, "lease": "sparkplug-host-scada",
                           "metrics": [{"name": "State", "value": "run", "datatype": 12}]}]
        await until(lambda: plant.component("edge").stats["stale_commands"] == 1, what="the stale command refused")

    _run(tmp_path, mosquitto_server, scenario)


def test_births_wait_for_the_primary_host_s_state_online(tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """tck-id-message-flow-edge-node-birth-publish-phid-wait (+ -id, -online, -timestamp),
    tck-id-operational-behavior-edge-node-birth-sequence-wait, tck-id-message-flow-edge-node-birth-publish-phid-offline:
    STATE offline (newer timestamp) ends the session with an NDEATH; an older offline STATE is ignored."""
    state = "spBv1.0/STATE/scada-wait"

    async def scenario(plant: SparkplugPlant) -> None:
        edge = plant.component("edge")
        # the marker that the node is connected, subscribed and past what it does on connecting: it has
        # read the host's STATE (offline, retained, so it gets it on subscribing); births it made on
        # connecting would be counted by now
        wire.publish(state, b'{"online": false, "timestamp": 500}', qos=1, retain=True)
        await until(lambda: edge.host_timestamp == 500, what="the node to read STATE offline",
                    seen=lambda: (edge.client.connected, edge.host_timestamp, edge.stats))
        assert edge.stats["births"] == 0 and not edge.in_session, edge.stats
        assert not wire.on(NODE.format("NBIRTH")), "born without the primary host online"
        wire.publish(state, b'{"online": true, "timestamp": 1000}', qos=1, retain=True)
        await until(lambda: wire.on(NODE.format("NBIRTH")), what="NBIRTH after STATE online")
        wire.publish(state, b'{"online": false, "timestamp": 999}', qos=1)  # older: ignored
        # the marker that the node has handled it: a command sent after it on the same connection (QoS 1:
        # the broker keeps the order, and the node handles its messages one after the other)
        wire.publish(NODE.format("NCMD"), encode(3, [Metric(name="Uptime", datatype=4, value=5)]), qos=1)
        await until(lambda: edge.stats["commands"] == 1, what="the command after the older STATE",
                    seen=lambda: edge.stats)
        assert edge.stats["host_offline"] == 0 and edge.in_session, edge.stats
        assert not wire.on(NODE.format("NDEATH"))
        wire.publish(state, b'{"online": false, "timestamp": 1001}', qos=1, retain=True)
        await until(lambda: wire.on(NODE.format("NDEATH")), what="NDEATH after STATE offline")
        wire.publish(state, b'{"online": true, "timestamp": 1002}', qos=1, retain=True)
        await until(lambda: len(wire.on(NODE.format("NBIRTH"))) == 2, what="NBIRTH in the next session")
        wire.publish(state, b"", qos=1, retain=True)  # clear the retained STATE

    _run(tmp_path, mosquitto_server, scenario, primary_host="scada-wait")
