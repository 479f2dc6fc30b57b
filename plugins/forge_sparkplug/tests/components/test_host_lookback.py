"""DATA the broker read between the primary host's silent death and its STATE offline (``host_lookback``).

The primary host here is a separate process with a plain paho client (Sparkplug 3.0 STATE online, retained, and
the offline STATE as its Will, keepalive 6 s), hung with SIGSTOP: its socket stays open, so the broker publishes
the Will only 1.5 x keepalive after the host's last packet. The edge node meanwhile sends DATA live and the
broker reads it (``link_proof`` proves it), but no host gets it. With ``host_lookback`` (default: 3 x
``host_keepalive``) the node moves what it sent in the window to the outbox when the offline STATE comes, and the
next primary (a Forge host started after the Will) gets every one of them after its births, historical, in order.
With ``host_lookback: 0`` they are lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import SparkplugPlant, broker_params, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

G = "lookback"
KEEPALIVE = 6

#: a primary host in a process of its own: STATE online with the timestamp of its Will [tck-id-host-topic-phid-
#: death-payload-timestamp-connect], then alive until stopped
HOST_SCRIPT = """
import json, sys, time
import paho.mqtt.client as mqtt
host, port, host_id, keepalive = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
stamp = int(time.time() * 1000)
topic = "spBv1.0/STATE/" + host_id
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hung-" + host_id)
client.will_set(topic, json.dumps({"online": False, "timestamp": stamp}), qos=1, retain=True)
client.connect(host, port, keepalive=keepalive)
client.subscribe("spBv1.0/%s/#" % sys.argv[5], qos=0)
client.loop_start()
client.publish(topic, json.dumps({"online": True, "timestamp": stamp}), qos=1, retain=True).wait_for_publish(10)
print("online", flush=True)
while True:  # alive (its paho thread answers nothing once SIGSTOPped) until the test kills it
    time.sleep(1)
"""


@pytest.mark.parametrize("lookback", [None, 0.0])
def test_data_sent_while_the_primary_host_hung_reaches_the_next_primary(
    tmp_path: Path, mosquitto_server: Any, lookback: float | None
) -> None:
    """host_lookback default (3 x host_keepalive = 18 s): updates 6-15, sent and proven read by the broker after the
    host was stopped and before its Will, reach the next primary as historical, in order, before what was stored
    while no host was there (16) and the live data after (17). host_lookback 0: 6-15 are lost (the former
    behaviour)."""
    host_id = f"lookback-host-{'on' if lookback is None else 'off'}"
    edge_params: dict[str, Any] = {
        "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port),
        "group": G,
        "node": "n1",
        "primary_host": host_id,
        "host_keepalive": KEEPALIVE,
        "link_proof": 0.5,
        "unconfirmed_hold": 1.0,
        "metrics": [{"name": "Count", "datatype": "Int64", "initial": 0}],
    }
    if lookback is not None:
        edge_params["host_lookback"] = lookback

    async def main() -> None:
        node_plant = SparkplugPlant(
            tmp_path / "node",
            {"edge": {"type": "sparkplug.edge_node", "params": edge_params}},
            (mosquitto_server.host, mosquitto_server.port),
        )
        host_plant = SparkplugPlant(
            tmp_path / "host",
            {
                "host": {
                    "type": "sparkplug.host",
                    "params": {
                        "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port),
                        "host_id": host_id,
                        "groups": [G],
                    },
                }
            },
            (mosquitto_server.host, mosquitto_server.port),
        )
        hung = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOST_SCRIPT,
                mosquitto_server.host,
                str(mosquitto_server.port),
                host_id,
                str(KEEPALIVE),
                G,
            ],
            stdout=subprocess.PIPE,
        )
        await node_plant.start()
        edge = node_plant.component("edge")

        async def update(value: int) -> None:
            await node_plant.publish(
                f"sparkplug/update/{G}/n1", "sparkplug.metric_update", {"metrics": [{"name": "Count", "value": value}]}
            )

        def counts() -> list[tuple[int, bool]]:
            return [
                (m["value"], m["historical"])
                for s in host_plant.sent("sparkplug.metrics")
                if s["kind"] == "data"
                for m in s["metrics"]
                if m["name"] == "Count"
            ]

        try:
            assert hung.stdout is not None
            assert (await asyncio.to_thread(hung.stdout.readline)).strip() == b"online"
            await until(lambda: edge.in_session, what="births after the first host's STATE online")
            for value in range(1, 6):
                await update(value)
            await until(lambda: edge.stats["data_sent"] >= 5 and not edge.unproven, what="1-5 read by the broker")
            os.kill(hung.pid, signal.SIGSTOP)  # hung: the socket stays open, the broker waits 1.5 x keepalive
            for value in range(6, 16):
                await update(value)
                await asyncio.sleep(0.05)  # pacing (10 updates over ~0.5 s), not a wait: the next line waits
            await until(lambda: edge.stats["data_sent"] >= 15 and not edge.unproven, what="6-15 read by the broker")
            assert edge.stats["host_offline"] == 0, "precondition: 6-15 were sent before the host's Will came"
            await until(lambda: edge.stats["host_offline"] == 1, timeout=60, what="the hung host's Will")
            await update(16)  # no host: stored
            await host_plant.start()  # the next primary: a newer STATE online
            await until(
                lambda: edge.in_session and edge.outbox.depth == 0,
                timeout=30,
                what="births for the next primary, the outbox replayed",
            )
            await update(17)
            await until(lambda: counts() and counts()[-1] == (17, False), what="live data at the next primary")
            got = counts()
            if lookback is None:
                first = got[0][0]
                assert first <= 6 and got == [(v, True) for v in range(first, 17)] + [(17, False)], got
                assert edge.stats["lookback_stored"] >= 10 and edge.stats["unproven_stored"] == 0
                assert edge.health()["lookback_dropped"] == 0
            else:
                assert got == [(16, True), (17, False)], "6-15 were read by the broker and reached no host: lost"
                assert edge.stats["lookback_stored"] == 0
        finally:
            hung.kill()  # SIGKILL ends a stopped process too
            hung.wait()
            await node_plant.stop()
            await host_plant.stop()

    asyncio.run(main())
