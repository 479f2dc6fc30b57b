"""pysparkplug 0.6.1's EdgeNode, driven line by line: run with the peer venv's python (forge_sparkplug.testing).

    python pysparkplug_edge.py HOST PORT GROUP NODE

stdin, one JSON object a line: {"op": "connect"} | {"op": "update", "metrics": [...]} |
{"op": "update_device", "device": ID, "metrics": [...]} | {"op": "deregister", "device": ID} |
{"op": "disconnect"} (clean: pysparkplug publishes an NDEATH, then DISCONNECT) | {"op": "kill"} (the
process ends without DISCONNECT: the broker publishes the Will). A metric is {"name", "datatype"
(pysparkplug's DataType member, e.g. "INT8"), "value", "alias"?}; DateTime values are ms, Bytes base64.
stdout, one JSON object a line: {"done": op} after each op, {"command": ...} for each NCMD/DCMD received
(as pysparkplug decoded it), {"error": ...} if an op failed.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import sys
import time
from typing import Any

import pysparkplug as spb

#: The node's NBIRTH: every scalar datatype pysparkplug and Forge both support, some with an alias.
NODE_METRICS: list[dict[str, Any]] = [
    {"name": "Int8", "datatype": "INT8", "value": -5, "alias": 1},
    {"name": "Int16", "datatype": "INT16", "value": -300, "alias": 2},
    {"name": "Int32", "datatype": "INT32", "value": -70000},
    {"name": "Int64", "datatype": "INT64", "value": -5_000_000_000},
    {"name": "UInt8", "datatype": "UINT8", "value": 200},
    {"name": "UInt16", "datatype": "UINT16", "value": 60000},
    {"name": "UInt32", "datatype": "UINT32", "value": 4_000_000_000},
    {"name": "UInt64", "datatype": "UINT64", "value": 2**64 - 1},
    {"name": "Line/Speed", "datatype": "FLOAT", "value": 1.5, "alias": 3},
    {"name": "Double", "datatype": "DOUBLE", "value": 3.141592653589793},
    {"name": "Running", "datatype": "BOOLEAN", "value": True},
    {"name": "State", "datatype": "STRING", "value": "running"},
    {"name": "Note", "datatype": "TEXT", "value": "a longer text"},
    {"name": "Batch", "datatype": "UUID", "value": "5f0c3f8e-8f5b-4b43-9a63-3f7c0c4b8e11"},
    {"name": "Started", "datatype": "DATETIME", "value": 1_704_164_645_678},
    {"name": "Blob", "datatype": "BYTES", "value": "AAH/"},
    {"name": "Setpoint", "datatype": "DOUBLE", "value": 10.0},
]
DEVICE_METRICS: list[dict[str, Any]] = [
    {"name": "Temperature", "datatype": "DOUBLE", "value": 21.5, "alias": 10},
    {"name": "Count", "datatype": "UINT32", "value": 0},
]


def metric(spec: dict[str, Any]) -> spb.Metric:
    datatype = spb.DataType[spec["datatype"]]
    value = spec["value"]
    if value is not None and datatype == spb.DataType.DATETIME:
        value = datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)
    elif value is not None and datatype == spb.DataType.BYTES:
        value = base64.b64decode(value)
    return spb.Metric(timestamp=spb.get_current_timestamp(), name=spec["name"], datatype=datatype, value=value,
                      alias=spec.get("alias"), is_null=value is None)


def plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def main() -> None:
    host, port, group, node_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    def on_command(_: Any, message: spb.Message) -> None:
        say(command={"topic": str(message.topic), "qos": int(message.qos), "metrics": [
            {"name": m.name, "alias": m.alias, "datatype": m.datatype.name, "value": plain(m.value)}
            for m in message.payload.metrics]})

    node = spb.EdgeNode(group, node_id, [metric(m) for m in NODE_METRICS],
                        client=spb.Client(client_id=f"pysparkplug-{group}-{node_id}"), cmd_callback=on_command)
    node.register(spb.Device("press", [metric(m) for m in DEVICE_METRICS], cmd_callback=on_command))
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "connect":
                node.connect(host, port=port, keepalive=5)
                deadline = time.monotonic() + 30
                while not node._connected and time.monotonic() < deadline:  # no public flag
                    time.sleep(0.01)
            elif op == "update":
                node.update([metric(m) for m in request["metrics"]])
            elif op == "update_device":
                node.update_device(request["device"], [metric(m) for m in request["metrics"]])
            elif op == "deregister":
                node.deregister(request["device"])
            elif op == "disconnect":
                node.disconnect()
            elif op == "kill":
                os._exit(0)  # no DISCONNECT: the socket closes and the broker publishes the Will
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:
            say(error=f"{op}: {type(exc).__name__}: {exc}")
            continue
        say(done=op)


if __name__ == "__main__":
    main()
