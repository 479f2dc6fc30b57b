"""pysparkplug 0.6.1 as a host's reader: its Client subscribes ``spBv1.0/<group>/#`` and prints every message
as its decoder reads it (names and datatypes of DATA metrics resolved from the births it saw, as pysparkplug
does). Run with the peer venv's python (forge_sparkplug.testing).

    python pysparkplug_reader.py HOST PORT GROUP

stdout, one JSON object a line: {"ready": true} once subscribed; {"topic", "type", "qos", "retain",
"timestamp", "seq", "metrics": [{"name", "alias", "datatype", "value", "is_historical", "is_null"}]} per
message (NDEATH: its bdSeq metric); {"error": ..., "topic": ...} if pysparkplug could not decode one.
stdin, one JSON object a line: {"op": "ncmd", "node": ID, "metrics": [{"name", "datatype", "value"}]} sends
an NCMD encoded by pysparkplug; {"done": "ncmd"} follows.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
import threading
from typing import Any

import pysparkplug as spb


def plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def metric_json(metric: spb.Metric) -> dict[str, Any]:
    return {"name": metric.name, "alias": metric.alias, "datatype": metric.datatype.name,
            "value": plain(metric.value), "is_historical": metric.is_historical, "is_null": metric.is_null}


lock = threading.Lock()


def say(**event: Any) -> None:
    with lock:
        print(json.dumps(event), flush=True)


def main() -> None:
    host, port, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = spb.Client(client_id=f"pysparkplug-reader-{group}")
    decode = client._handle_message  # the births cache and alias resolution live here

    def guarded(mqtt_message: Any) -> Any:
        try:
            return decode(mqtt_message)
        except Exception as exc:  # reported to the test, the reader goes on
            say(error=f"{type(exc).__name__}: {exc}", topic=mqtt_message.topic)
            return None

    client._handle_message = guarded  # decode errors reported, not raised in paho

    def on_message(_: Any, message: spb.Message | None) -> None:
        if message is None:
            return
        payload = message.payload
        if isinstance(payload, spb.NDeath):
            metrics = [metric_json(payload.bd_seq_metric)]
        else:
            metrics = [metric_json(m) for m in getattr(payload, "metrics", ())]
        say(topic=str(message.topic), type=str(message.topic.message_type), qos=int(message.qos),
            retain=message.retain, timestamp=payload.timestamp, seq=getattr(payload, "seq", None), metrics=metrics)

    client._client.on_subscribe = lambda *_: say(ready=True)  # no public SUBACK hook
    client.subscribe(spb.Topic(group_id=group, message_type=spb.MULTI_LEVEL_WILDCARD), spb.QoS.AT_LEAST_ONCE,
                     on_message)
    client.connect(host, port=port, keepalive=5)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] != "ncmd":
            say(error=f"unknown op {request['op']!r}")
            continue
        metrics = tuple(spb.Metric(timestamp=spb.get_current_timestamp(), name=m["name"],
                                   datatype=spb.DataType[m["datatype"]], value=m["value"])
                        for m in request["metrics"])
        topic = spb.Topic(group_id=group, message_type=spb.MessageType.NCMD, edge_node_id=request["node"])
        client.publish(spb.Message(topic, spb.NCmd(spb.get_current_timestamp(), metrics), spb.QoS.AT_MOST_ONCE,
                                   False), include_dtypes=True)
        say(done="ncmd")
    client.disconnect()


if __name__ == "__main__":
    main()
