"""Interoperability with an independent Sparkplug B implementation: pysparkplug 0.6.1 (PyPI, Apache-2.0), run as
a separate process from its own venv (it pins paho-mqtt<2; ``forge_sparkplug.testing``), on the same Mosquitto.

- its EdgeNode (tests/peer/pysparkplug_edge.py) -> our ``sparkplug.host``: births, data, DDEATH, its Will;
  our host's commands -> its EdgeNode's command callback;
- our ``sparkplug.edge_node`` -> its Client and decoder (tests/peer/pysparkplug_reader.py): births, alias-only
  data resolved from the births, seq, the Will; its NCMD (rebirth, a write) -> our edge node.

Where pysparkplug departs from the specification the test says so and docs/plugins/sparkplug.md lists it.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forge_sparkplug.codec import BY_NAME

from .conftest import SparkplugPlant, Wire, broker_params, run_plant, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]

G = "interop"
PEER_SCRIPTS = Path(__file__).resolve().parent.parent / "peer"

#: What pysparkplug's edge node births (tests/peer/pysparkplug_edge.py NODE_METRICS): name -> (datatype, value,
#: alias) as Forge's host must read them (Bytes as base64, DateTime as ms).
PEER_NODE = {
    "Int8": ("Int8", -5, 1), "Int16": ("Int16", -300, 2), "Int32": ("Int32", -70000, None),
    "Int64": ("Int64", -5_000_000_000, None), "UInt8": ("UInt8", 200, None), "UInt16": ("UInt16", 60000, None),
    "UInt32": ("UInt32", 4_000_000_000, None), "UInt64": ("UInt64", 2**64 - 1, None),
    "Line/Speed": ("Float", 1.5, 3), "Double": ("Double", 3.141592653589793, None),
    "Running": ("Boolean", True, None), "State": ("String", "running", None), "Note": ("Text", "a longer text", None),
    "Batch": ("UUID", "5f0c3f8e-8f5b-4b43-9a63-3f7c0c4b8e11", None), "Started": ("DateTime", 1_704_164_645_678, None),
    "Blob": ("Bytes", "AAH/", None), "Setpoint": ("Double", 10.0, None),
}
PEER_DEVICE = {"Temperature": ("Double", 21.5, 10), "Count": ("UInt32", 0, None)}


class Peer:
    """A pysparkplug script in the peer venv: JSON lines in on stdin, JSON lines out on stdout."""

    def __init__(self, python: Path, script: str, *args: object) -> None:
        self.process = subprocess.Popen([str(python), str(PEER_SCRIPTS / script), *map(str, args)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def events(self, key: str | None = None, **match: Any) -> list[dict[str, Any]]:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        errors = [e for e in self.seen if "error" in e]
        assert not errors, f"the pysparkplug peer reported {errors}"
        return [e for e in self.seen if (key is None or key in e) and all(e.get(k) == v for k, v in match.items())]

    def send(self, op: str, **request: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.process.stdin.flush()

    async def do(self, op: str, **request: Any) -> None:
        done = len(self.events("done", done=op))
        self.send(op, **request)
        await until(lambda: len(self.events("done", done=op)) > done or self.process.poll() is not None,
                    what=f"pysparkplug peer: {op}")

    def close(self) -> str:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def _run(tmp_path: Path, mosquitto: Any, components: dict[str, Any], scenario: Any) -> None:
    # no failover here: a lease that survives a loaded machine's stalls (conftest's lapses after 3 s)
    run_plant(tmp_path / "plant", mosquitto, components, scenario,
              tactics={"leader": {"use": "memory", "ttl": 30.0, "renew_every": 1.0, "retry_every": 0.2}})


def _metrics_of(snapshot: dict[str, Any]) -> dict[str, tuple[str, Any, int | None]]:
    names = {number: name for name, number in BY_NAME.items()}
    return {n: (names[m["datatype"]], m["value"], m["alias"]) for n, m in snapshot["metrics"].items()}


def test_pysparkplug_edge_node_to_forge_host(tmp_path: Path, mosquitto_server: Any, wire: Wire,
                                             pysparkplug_python: Path) -> None:
    """pysparkplug's NBIRTH/DBIRTH (every scalar datatype, signed ints as pysparkplug encodes them, some aliases)
    -> the host's node state and sparkplug.metrics with the names, aliases, datatypes and values sent; its
    NDATA/DDATA in seq order (no gap, no rebirth request); its DDEATH -> device offline; our host's NCMD read by its
    command callback; its Will (NDEATH with the NBIRTH's bdSeq, after the process dies) -> node offline, STALE.
    pysparkplug's clean disconnect sends an NDEATH with the next session's bdSeq (its Will is re-armed with bdSeq+1
    on every connect and the NDEATH takes that metric): a conforming host ignores it (tck-id-payloads-ndeath-bdseq
    says it must match the NBIRTH's), so the node stays online until its next birth."""
    host_id = "forge-interop-a"

    async def scenario(plant: SparkplugPlant) -> None:
        host = plant.component("host")
        await until(lambda: host.primary and wire.on(f"spBv1.0/STATE/{host_id}"), what="our host primary")
        edge = Peer(pysparkplug_python, "pysparkplug_edge.py", mosquitto_server.host, mosquitto_server.port, G, "py1")
        try:
            await edge.do("connect")
            # the device's birth on the bus too: the host's state has it a bus publish before sparkplug.metrics does
            view = await until(lambda: (s := host.node_state(G, "py1")) and "press" in s["devices"] and len(
                [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "birth"]) >= 2 and s,
                               what="pysparkplug node and device born at our host")
            assert view["online"] and view["bdSeq"] == 0
            assert _metrics_of(view) == PEER_NODE  # pysparkplug adds no Node Control/Rebirth (see the docs)
            assert _metrics_of(view["devices"]["press"]) == PEER_DEVICE
            births = [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "birth"]
            assert [(b["device"], b["seq"]) for b in births] == [(None, 0), ("press", 1)]
            assert {m["name"]: (m["datatype"], m["value"], m["alias"]) for m in births[0]["metrics"]} == PEER_NODE

            await edge.do("update", metrics=[{"name": "Int8", "datatype": "INT8", "value": -7, "alias": 1},
                                             {"name": "Line/Speed", "datatype": "FLOAT", "value": 2.25, "alias": 3},
                                             {"name": "UInt64", "datatype": "UINT64", "value": 2**63 + 5}])
            await edge.do("update_device", device="press",
                          metrics=[{"name": "Temperature", "datatype": "DOUBLE", "value": 22.5, "alias": 10}])
            data = await until(lambda: len(d := [m for m in plant.sent("sparkplug.metrics") if m["kind"] == "data"])
                               == 2 and d, what="NDATA and DDATA at our host")
            assert [(d["device"], d["seq"]) for d in data] == [(None, 2), ("press", 3)]
            assert [(m["name"], m["datatype"], m["value"]) for m in data[0]["metrics"]] == [
                ("Int8", "Int8", -7), ("Line/Speed", "Float", 2.25), ("UInt64", "UInt64", 2**63 + 5)]
            assert [(m["name"], m["value"], m["quality"]) for m in data[1]["metrics"]] == [("Temperature", 22.5, 192)]
            assert host.node_state(G, "py1")["metrics"]["Int8"]["value"] == -7

            # our host -> pysparkplug's command callback: by name (no alias in its birth), by alias, Forge/Epoch and
            # Forge/Lease
            await plant.publish(f"sparkplug/command/{G}/py1", "sparkplug.command", {
                "group": G, "node": "py1", "metrics": [{"name": "Setpoint", "value": 12.5},
                                                       {"name": "Line/Speed", "value": 3.0}]})
            (command,) = await until(lambda: edge.events("command"), what="NCMD at pysparkplug's edge node")
            assert command["command"]["topic"] == f"spBv1.0/{G}/NCMD/py1"
            got = [(m["name"], m["alias"], m["datatype"], m["value"]) for m in command["command"]["metrics"]]
            # pysparkplug's edge node cannot name a metric its command carries by alias only: it resolves aliases
            # from births it received, never from its own
            assert got == [("Setpoint", None, "DOUBLE", 12.5), (None, 3, "FLOAT", 3.0),
                           ("Forge/Epoch", None, "INT64", host.epoch), ("Forge/Lease", None, "STRING", host.lease)]

            await edge.do("deregister", device="press")
            await until(lambda: not host.node_state(G, "py1")["devices"]["press"]["online"], what="DDEATH")
            assert host.node_state(G, "py1")["devices"]["press"]["metrics"]["Temperature"]["quality"] == 500

            await edge.do("disconnect")  # its NDEATH carries bdSeq 1, its NBIRTH had 0
            await until(lambda: host.stats["stale_deaths"] == 1, what="pysparkplug's clean NDEATH")
            assert host.node_state(G, "py1")["online"] and host.stats["deaths"] == 0
        finally:
            stderr = edge.close()
        assert "Traceback" not in stderr, stderr

        # a new pysparkplug process (bdSeq from 0 again: it keeps no bdSeq across restarts) dies: its Will
        edge = Peer(pysparkplug_python, "pysparkplug_edge.py", mosquitto_server.host, mosquitto_server.port, G, "py1")
        try:
            await edge.do("connect")
            await until(lambda: host.stats["births"] == 2, what="the second NBIRTH")
            will = len(wire.on(f"spBv1.0/{G}/NDEATH/py1"))
            edge.send("kill")
            (death,) = await until(lambda: wire.on(f"spBv1.0/{G}/NDEATH/py1")[will:], what="pysparkplug's Will")
            assert death.qos == 0, "pysparkplug's Will is QoS 0 (the specification says 1)"
            await until(lambda: not host.node_state(G, "py1")["online"], what="node offline after its Will")
        finally:
            edge.close()
        view = host.node_state(G, "py1")
        assert view["metrics"]["Int8"]["quality"] == 500 and host.stats["deaths"] == 1
        offline = await until(lambda: {(s["device"], s["reason"]) for s in plant.sent("sparkplug.node_state")
                                       if not s["online"]} == {("press", "death"), (None, "death"),
                                                               ("press", "node death")}, what="offline on the bus")
        assert offline
        assert (host.stats["seq_gaps"], host.stats["rebirth_requests"], host.stats["malformed"]) == (0, 0, 0)

    _run(tmp_path, mosquitto_server, {"host": {"type": "sparkplug.host", "params": {
        "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port), "host_id": host_id, "groups": [G]}}},
        scenario)
    wire.publish(f"spBv1.0/STATE/{host_id}", b"", qos=1, retain=True)


#: Our edge node's metrics for pysparkplug to read: (name, datatype, initial) and its datatype name there.
OURS = [("Int8", "Int8", -5), ("Int16", "Int16", -300), ("Int32", "Int32", -70000), ("Int64", "Int64", -5_000_000_000),
        ("UInt8", "UInt8", 200), ("UInt32", "UInt32", 4_000_000_000), ("UInt64", "UInt64", 2**63 - 1),
        ("Speed", "Float", 1.5), ("Double", "Double", 2.5), ("Running", "Boolean", True),
        ("State", "String", "idle"), ("Note", "Text", "text"), ("Started", "DateTime", 1_704_164_645_678),
        ("Blob", "Bytes", "AAH/"), ("Setpoint", "Double", 10.0), ("Empty", "Int32", None)]


def test_forge_edge_node_read_by_pysparkplug(tmp_path: Path, mosquitto_server: Any, pysparkplug_python: Path) -> None:
    """Our NBIRTH (seq 0, bdSeq, Node Control/Rebirth, every metric with name, alias, datatype, value; null as
    is_null) and DBIRTH (seq 1) as pysparkplug's decoder reads them; our alias-only NDATA/DDATA get their names and
    datatypes back from the births in pysparkplug's decoder, with seq 2, 3, ...; pysparkplug's NCMD Node
    Control/Rebirth makes our node birth again (seq 0, same bdSeq) and its write NCMD becomes a sparkplug.write;
    our Will (QoS 1) decodes with the NBIRTH's bdSeq."""
    reader = Peer(pysparkplug_python, "pysparkplug_reader.py", mosquitto_server.host, mosquitto_server.port, G)

    async def scenario(plant: SparkplugPlant) -> None:
        def of(type_: str) -> list[dict[str, Any]]:
            return reader.events("type", type=type_)

        (nbirth,) = await until(lambda: of("NBIRTH"), what="our NBIRTH at pysparkplug")
        (dbirth,) = await until(lambda: of("DBIRTH"), what="our DBIRTH at pysparkplug")
        assert (nbirth["topic"], nbirth["seq"], nbirth["qos"], nbirth["retain"]) == (f"spBv1.0/{G}/NBIRTH/f1", 0, 0, 0)
        metrics = {m["name"]: m for m in nbirth["metrics"]}
        assert (metrics["bdSeq"]["datatype"], metrics["bdSeq"]["value"]) == ("INT64", 0)
        assert (metrics["Node Control/Rebirth"]["datatype"], metrics["Node Control/Rebirth"]["value"]) == (
            "BOOLEAN", False)
        for alias, (name, datatype, value) in enumerate(OURS, start=1):
            assert (metrics[name]["alias"], metrics[name]["datatype"], metrics[name]["value"],
                    metrics[name]["is_null"]) == (alias, datatype.upper(), value, value is None), name
        assert (dbirth["topic"], dbirth["seq"]) == (f"spBv1.0/{G}/DBIRTH/f1/press", 1)
        assert [(m["name"], m["alias"], m["datatype"], m["value"]) for m in dbirth["metrics"]] == [
            ("Temperature", len(OURS) + 1, "DOUBLE", None)]

        await plant.publish(f"sparkplug/update/{G}/f1", "sparkplug.metric_update", {"metrics": [
            {"name": "Int8", "value": -128}, {"name": "UInt64", "value": 2**63}, {"name": "Speed", "value": 0.25},
            {"name": "Started", "value": 1_704_164_700_000}, {"name": "Blob", "value": "3q2+7w=="}]})
        await plant.publish(f"sparkplug/update/{G}/f1", "sparkplug.metric_update",
                            {"device": "press", "metrics": [{"name": "Temperature", "value": 81.5}]})
        (ndata,) = await until(lambda: of("NDATA"), what="our NDATA at pysparkplug")
        (ddata,) = await until(lambda: of("DDATA"), what="our DDATA at pysparkplug")
        assert (ndata["seq"], ddata["seq"]) == (2, 3)
        assert [(m["name"], m["alias"], m["datatype"], m["value"]) for m in ndata["metrics"]] == [
            ("Int8", 1, "INT8", -128), ("UInt64", 7, "UINT64", 2**63), ("Speed", 8, "FLOAT", 0.25),
            ("Started", 13, "DATETIME", 1_704_164_700_000), ("Blob", 14, "BYTES", "3q2+7w==")]
        assert [(m["name"], m["alias"], m["value"]) for m in ddata["metrics"]] == [
            ("Temperature", len(OURS) + 1, 81.5)]

        # pysparkplug's NCMDs: a rebirth request, then a write
        await reader.do("ncmd", node="f1", metrics=[{"name": "Node Control/Rebirth", "datatype": "BOOLEAN",
                                                     "value": True}])
        await until(lambda: len(of("NBIRTH")) == 2 and len(of("DBIRTH")) == 2, what="rebirth")
        again = of("NBIRTH")[1]
        assert again["seq"] == 0 and {m["name"]: m["value"] for m in again["metrics"]}["bdSeq"] == 0
        assert {m["name"]: m["value"] for m in again["metrics"]}["Int8"] == -128, "the birth carries the last value"
        await reader.do("ncmd", node="f1", metrics=[{"name": "Setpoint", "datatype": "DOUBLE", "value": 42.0}])
        (write,) = await until(lambda: plant.sent("sparkplug.write"), what="the write")
        assert write["metrics"] == [{"name": "Setpoint", "value": 42.0, "datatype": 10}] and write["epoch"] is None

        assert plant.runtime is not None
        await plant.runtime.kill("edge")
        (death,) = await until(lambda: of("NDEATH"), what="our Will at pysparkplug")
        assert death["qos"] == 1 and death["seq"] is None
        assert [(m["name"], m["datatype"], m["value"]) for m in death["metrics"]] == [("bdSeq", "INT64", 0)]

    try:
        deadline = time.monotonic() + 60
        while not reader.events("ready") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.events("ready"), "pysparkplug's reader did not subscribe within 60 s"
        _run(tmp_path, mosquitto_server, {"edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port), "group": G, "node": "f1",
            "metrics": [{"name": n, "datatype": d, "initial": v} for n, d, v in OURS],
            "devices": {"press": {"metrics": [{"name": "Temperature", "datatype": "Double"}]}}}}}, scenario)
    finally:
        stderr = reader.close()
    assert "Traceback" not in stderr, stderr
