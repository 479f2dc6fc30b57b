"""MQTT QoS 1 publish → Mosquitto → receive, one side at a time, for counting instructions a message.

The two sides of ``bench_mqtt.py``'s ratio, each in this one process with a fixed message count:

- ``forge``: two ``MqttTransport``s in structured mode, each under a ``MessageBus`` with the schema
  (``bus.publish`` per message, the envelope and CloudEvents on both sides, decoding, validation, the
  manual PUBACK after the handler), as ``bench_mqtt.py``'s "Forge, structured (default)";
- ``raw``: raw paho 3.1.1 on Forge's ``FastClient``, both clients in one thread with a window, JSON
  and the schema check per message, with the shortcuts Forge's side takes (FastClient's decoders and
  reader, ``publish_packed`` with the topic's bytes written once, the PUBACK queued by ``ack`` after the
  handler, queued packets written joined once a turn, reads by ``read_available``):
  ``bench_mqtt_raw.paho_throughput(..., FastClient, joined=True)``, the best raw Python side;
- ``floor`` and ``floor5``: that raw side doing the design's floor of work per message (``bench_mqtt_floor.py``:
  the structured CloudEvents event, a schema check on each side, an ``Envelope`` to a handler) on MQTT 3.1.1,
  and on MQTT 5 with the structured Content Type: ``bench_mqtt.py``'s "design floor" sides.

Mosquitto runs in its own process (started here, as ``bench_mqtt.py`` starts it), so cachegrind counts
the client side only. Run a side at two sizes and divide the difference (start-up, imports and the
broker's start cancel out):

    python -m compileall -q src plugins benchmarks
    valgrind --tool=cachegrind --cache-sim=no python benchmarks/bench_mqtt_paths.py --side forge --messages 16000
    (and --messages 1000: instructions a message = (I(16000) - I(1000)) / 15000; the same with --side raw,
    floor and floor5)

Each side keeps bench_mqtt.py's 120 s deadline: under cachegrind on a loaded machine a large run can hit it
and stop early (a much lower count), so check that the run printed its result line.

Without cachegrind it prints msg/s and CPU µs a message of the measured loop.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import paho.mqtt.client as mqtt
from bench_mqtt import forge_throughput  # benchmarks/ is on sys.path when run as a script
from bench_mqtt_common import Result
from bench_mqtt_raw import paho_throughput
from forge_mqtt.testing import MosquittoServer
from forge_mqtt.transport.paho_adapter import FastClient

#: bench_mqtt.py's broker settings: a publisher in a tight loop outruns one subscriber.
CONFIG = "max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true"


def run(side: str, count: int, window: int) -> Result:
    with MosquittoServer(extra_config=CONFIG) as broker, tempfile.TemporaryDirectory() as tmpdir:
        if side == "forge":
            return asyncio.run(forge_throughput(broker, count, Path(tmpdir), "structured"))
        protocol = mqtt.MQTTv5 if side == "floor5" else mqtt.MQTTv311
        return paho_throughput(broker, count, protocol, window, FastClient, joined=True, floor=side != "raw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("forge", "raw", "floor", "floor5"), required=True)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=1000, help="raw side: QoS 1 publishes in flight")
    args = parser.parse_args()
    rate, cpu = run(args.side, args.messages, args.window)
    print(f"{args.side}: {args.messages:,} messages, {rate:,.0f} msg/s, {cpu:.1f} µs CPU a message")


if __name__ == "__main__":
    main()
