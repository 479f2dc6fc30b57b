"""MQTT QoS 1 publish → receive: the broker's limit, the best raw Python client, the peer and Forge.

Every side does the same work per message: JSON-encode a small heartbeat before publishing, and on
receipt JSON-decode it and check it once against a compiled schema (jsonschema-rs for the raw sides
and Forge, a pydantic model for FastStream). Same Mosquitto (started here on 127.0.0.1), same run,
same message count, one publisher and one subscriber connection per side.

(a) limit: the Mosquitto C clients, ``mosquitto_pub -l`` (one line of stdin a message) into
    ``mosquitto_sub -C <count>`` (Debian mosquitto-clients): the broker's limit on this machine;
    they do no JSON work, so this is above what any side doing the work can reach.
(b) raw paho, driven as an expert would: both clients in ONE thread (no ``loop_start`` thread racing
    the publisher for the GIL, no wake-up byte read per packet), our own ``select`` over both sockets,
    a bounded in-flight window (``--window``, publishes wait for PUBACKs beyond it), and either MQTT
    3.1.1 (no properties) or MQTT 5 with one ``Properties`` (content type) built once and reused;
    and 3.1.1 with every shortcut Forge's side takes, since a raw client may take them too: Forge's
    ``FastClient`` (its PUBLISH and PUBACK decoders and packet reader: paho's private paths) with
    deferred writes (paho's public ``on_socket_register_write``/``loop_write``: packets queue, each
    turn writes them and ``FastClient`` joins them into one ``send()``, as on Forge's loop) and every
    readable socket read by ``read_available``. The plain sides write each packet at once (a ``send()``
    per PUBLISH and per PUBACK). The best of them in each round is "best raw Python".
(a') the design's floor: the best raw side (3.1.1, ``FastClient``, joined writes) doing, per message,
    what ../shared/DESIGN.md asks of every message in its cheapest form, without Forge
    (``bench_mqtt_floor.py``): on publish one jsonschema-rs check and the envelope's attributes written
    into the structured CloudEvents event, byte for byte Forge's structured body; on receipt one msgspec
    parse of the event, one check and one forge_core ``Envelope`` handed to a handler (dead-lettering a
    malformed body: a branch not taken). The structured event travels on 3.1.1 too (its attributes are
    in the body), so the floor / best raw ratio is the design's own cost on the same protocol; the MQTT 5
    floor adds what Forge's default wire adds (the Content Type property, MQTT 5 PUBLISH and PUBACK).
    If the floor is below 0.9 of the best raw side, so is anything doing the design's work.
(c) ``--old-paho``: the side this benchmark used before issue 17 (MQTT 5, a ``Properties`` built per
    message, ``loop_start`` threads, all messages queued at once), for comparison only.
(d) the peer: FastStream (``faststream[mqtt]``, 0.7.x, its zmqtt client) with a pydantic model of the
    same message; its ``publish`` waits for the PUBACK, so ``--window`` publishes run as concurrent tasks.
    It runs in a child process (its own CPU time measured there): imported here, FastStream kept ~20,000
    objects alive that every full GC of the sides measured after it walked.
(e) Forge: two ``MqttTransport``s, each under a ``MessageBus`` with the schema: the envelope, the
    CloudEvents attributes, decoding and validation on both sides, manual PUBACK after the handler.
    Structured content mode (the default between Forge processes on MQTT 5) and binary mode.

Throughput is messages over the time until the last one is received (median of ``--rounds``), and
beside it the client CPU per message: the CPU time of the process doing the publishing and the
receiving (``time.process_time`` over the same window; for the C clients, their own CPU time), which
the other helpers' load on this shared machine disturbs far less than msg/s. Each round runs every
side once, in reverse order every other round, and the Forge / best raw Python ratios are printed
per round (the best raw Python side of that same round) with their worst: the target holds only if
it holds in every round. So are the floor / best raw Python and Forge / floor ratios (median and range).
Latency is publish → handler at a fixed ``--rate`` (1,000 msg/s) for ``--latency-seconds``; its raw
side is the best raw Python side of the throughput rounds (same protocol, same client class).
Targets (issue 17 item 3): Forge ≥ 0.9 of the best raw Python client, p99 ≤ 2 ms at 1,000 msg/s on a
quiet machine. The machine is shared: the load average is printed before and after.

The raw sides (a)-(c) are in ``bench_mqtt_raw.py``, the peer in ``bench_mqtt_peer.py``, the message in
``bench_mqtt_common.py``; Forge's sides and the run are here.

    python benchmarks/bench_mqtt.py [--messages 20000] [--rounds 5] [--latency-seconds 5] [--old-paho] [--no-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from bench_mqtt_common import HEARTBEAT, Result, load, payload  # benchmarks/ is on sys.path when run as a script
from bench_mqtt_peer import faststream_child, faststream_child_main
from bench_mqtt_raw import c_clients_throughput, old_paho_throughput, paho_latency, paho_throughput
from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer
from forge_mqtt.transport.paho_adapter import FastClient

from forge_core import MessageBus, RealClock, compiled
from forge_core.plugin import SchemaRegistry


# -- (e) Forge ------------------------------------------------------------------------------------
async def forge_pair(broker: MosquittoServer, data: Path, mode: str,
                     ) -> tuple[MessageBus, MessageBus, list[MqttTransport]]:
    buses, transports = [], []
    for role in ("pub", "sub"):
        schemas = SchemaRegistry()
        schemas.add("pasta.heartbeat", HEARTBEAT)
        transport = MqttTransport(role, host=broker.host, port=broker.port, data_dir=data / role,
                                  client_id=f"forge-{role}-{uuid.uuid4().hex[:6]}", death_certificates=False,
                                  content_mode=mode)
        await transport.connect()
        buses.append(MessageBus(schemas=schemas, clock=RealClock(), transports={role: transport}))
        transports.append(transport)
    return buses[0], buses[1], transports


async def forge_throughput(broker: MosquittoServer, count: int, data: Path, mode: str) -> Result:
    pub_bus, sub_bus, transports = await forge_pair(broker, data, mode)
    received = [0]
    done = asyncio.Event()

    def handler(envelope: object) -> None:
        received[0] += 1
        if received[0] == count:
            done.set()

    topic = f"bench/forge/{uuid.uuid4().hex[:6]}"
    await sub_bus.subscribe(topic, handler, owner="bench")
    await asyncio.sleep(0.3)
    publish = pub_bus.publish
    start, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        await publish(topic, "pasta.heartbeat", payload(n), source="machine")
    await asyncio.wait_for(done.wait(), 120)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    for transport in transports:
        await transport.close()
    return count / elapsed, cpu / count * 1e6


async def forge_latency(broker: MosquittoServer, rate: int, seconds: float, data: Path, mode: str) -> list[float]:
    pub_bus, sub_bus, transports = await forge_pair(broker, data, mode)
    latencies: list[float] = []

    def handler(envelope: Any) -> None:
        latencies.append(time.perf_counter() - envelope.payload["sent"])

    topic = f"bench/forgelat/{uuid.uuid4().hex[:6]}"
    await sub_bus.subscribe(topic, handler, owner="bench")
    await asyncio.sleep(0.3)
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub_bus.publish(topic, "pasta.heartbeat", payload(n, time.perf_counter()), source="m")
    deadline = time.monotonic() + 10
    while len(latencies) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for transport in transports:
        await transport.close()
    return latencies


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1] * 1000


STRUCTURED, BINARY = "Forge, structured (default)", "Forge, binary (7 user properties)"
BEST_RAW = "raw paho 3.1.1, one thread, window, FastClient, joined writes"
FLOOR = "design floor 3.1.1, best raw + CE event, 2 checks, Envelope"
FLOOR5 = "design floor 5, the same + Content Type, MQTT 5"


def per_round(results: dict[str, list[Result | None]], label: str, raw: list[str], index: int) -> list[float]:
    """Per round: ``label`` against the best raw Python side of the same round (index 0: msg/s,
    higher is better; 1: CPU µs a message, lower is better) as 'Forge / raw', so > 1 means faster."""
    ratios = []
    for n, mine in enumerate(results[label]):
        theirs = [r[n] for r in (results[x] for x in raw) if r[n] is not None]
        if mine is None or not theirs:
            continue
        if index == 0:
            ratios.append(mine[0] / max(t[0] for t in theirs))
        else:
            ratios.append(min(t[1] for t in theirs) / mine[1])
    return ratios


def report_throughput(args: argparse.Namespace, broker: MosquittoServer,
                      results: dict[str, list[Result | None]]) -> str:
    """Print the throughput table and ratios; the label of the best raw Python side (median msg/s)."""
    count, window = args.messages, args.window
    done = {label: [r for r in values if r is not None] for label, values in results.items()}
    done = {label: values for label, values in done.items() if values}
    rate = {label: statistics.median(r[0] for r in values) for label, values in done.items()}
    cpu = {label: statistics.median(r[1] for r in values) for label, values in done.items()}
    raw = [label for label in done if label.startswith("raw paho")]
    best_raw = max(raw, key=rate.__getitem__)
    print(f"\nQoS 1 throughput, {count:,} messages, median of {args.rounds} rounds (Mosquitto "
          f"{broker.host}:{broker.port}, window {window}); client CPU µs per message beside it:")
    for label, values in done.items():
        print(f"  {label:<62} {rate[label]:>9,.0f} msg/s {cpu[label]:7.1f} µs/msg   (rounds "
              f"{', '.join(f'{r[0]:,.0f}' for r in values)}; {', '.join(f'{r[1]:.0f}' for r in values)} µs)")
    print(f"\n  best raw Python: {best_raw} (each round below: the better raw paho of that round)")
    for label, name in ((STRUCTURED, "structured"), (BINARY, "binary")):
        if label not in done:
            continue
        for index, what in ((0, "msg/s"), (1, "CPU/msg")):
            ratios = per_round(results, label, raw, index)
            target = "   (target >= 0.90 in every round)" if name == "structured" else ""
            print(f"  Forge ({name}) / best raw Python, {what:<7} rounds {' '.join(f'{x:.2f}' for x in ratios)}   "
                  f"median {statistics.median(ratios):.2f}  worst {min(ratios):.2f}{target}")
    forge = rate[STRUCTURED]
    c_label = next(iter(results))
    if c_label in rate:
        print(f"  Forge (structured) / C clients limit   {forge / rate[c_label]:6.2f}")
        print(f"  best raw Python / C clients limit      {rate[best_raw] / rate[c_label]:6.2f}")
    report_floor(results, raw)
    fs_label = "FastStream 0.7 + pydantic, window tasks"
    if fs_label in rate:
        print(f"  Forge (structured) / FastStream        {forge / rate[fs_label]:6.2f}   "
              f"(CPU/msg {cpu[fs_label] / cpu[STRUCTURED]:.2f})")
    return best_raw


def report_floor(results: dict[str, list[Result | None]], raw: list[str]) -> None:
    """The design floor's ratios, per round: floor / best raw Python (what the design's work leaves of
    the best raw side) and Forge / floor (Forge's own cost above the design's), msg/s and CPU/msg."""
    pairs = ((FLOOR, raw, "floor 3.1.1 / best raw Python"), (FLOOR5, [FLOOR], "floor 5 / floor 3.1.1"),
             (STRUCTURED, [FLOOR], "Forge (structured) / floor 3.1.1"),
             (STRUCTURED, [FLOOR5], "Forge (structured) / floor 5"))
    for label, against, name in pairs:
        if not any(results.get(label, ())) or not all(any(results.get(x, ())) for x in against):
            continue
        for index, what in ((0, "msg/s"), (1, "CPU/msg")):
            ratios = per_round(results, label, against, index)
            if ratios:
                print(f"  {name:<33} {what:<7} rounds {' '.join(f'{x:.2f}' for x in ratios)}   "
                      f"median {statistics.median(ratios):.2f}  range {min(ratios):.2f}-{max(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=1000, help="QoS 1 publishes in flight (raw paho, FastStream)")
    parser.add_argument("--old-paho", action="store_true", help="also the pre-issue-17 raw side (loop_start)")
    parser.add_argument("--no-faststream", action="store_true")
    parser.add_argument("--no-floor", action="store_true", help="skip the design floor sides (a')")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip the throughput rounds (raw side: paho 3.1.1 on FastClient)")
    parser.add_argument("--faststream-child", metavar="HOST:PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.faststream_child:  # one FastStream run in this (child) process; the JSON result on stdout
        rate_given = "--rate" in sys.argv
        faststream_child_main(args.faststream_child, args.messages, args.window, args.rate if rate_given else None)
        return
    count, window = args.messages, args.window
    print(f"load before: {load()} (1/5/15 min; a shared 2-core machine); forge {compiled.describe()}")

    sides: dict[str, Callable[[int, Path], Result | None]] = {}
    # Mosquitto drops QoS 1 messages for a subscriber with more than max_queued_messages (1000 by
    # default) waiting; a publisher in a tight loop outruns one subscriber, so lift the limit.
    config = "max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true"
    with MosquittoServer(extra_config=config) as broker, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sides["C clients (mosquitto_pub -l | mosquitto_sub -C), no JSON work"] = (
            lambda r, d: c_clients_throughput(broker, count, d))
        sides["raw paho 3.1.1, one thread, window"] = lambda r, d: paho_throughput(broker, count, mqtt.MQTTv311, window)
        # Forge's FastClient replaces private paho paths (PUBLISH and PUBACK decoding, joined writes, the
        # packet reader) that a raw client can replace too: the best raw side takes every one Forge takes.
        sides[BEST_RAW] = lambda r, d: paho_throughput(broker, count, mqtt.MQTTv311, window, FastClient, joined=True)
        sides["raw paho 5, one thread, window, props reused"] = (
            lambda r, d: paho_throughput(broker, count, mqtt.MQTTv5, window))
        if not args.no_floor:
            sides[FLOOR] = lambda r, d: paho_throughput(broker, count, mqtt.MQTTv311, window, FastClient, True, True)
            sides[FLOOR5] = lambda r, d: paho_throughput(broker, count, mqtt.MQTTv5, window, FastClient, True, True)
        if args.old_paho:
            sides["old raw paho (loop_start, props per msg)"] = lambda r, d: old_paho_throughput(broker, count)
        if not args.no_faststream:
            sides["FastStream 0.7 + pydantic, window tasks"] = (
                lambda r, d: faststream_child(broker, count, window, None)[0])
        sides[STRUCTURED] = (
            lambda r, d: asyncio.run(forge_throughput(broker, count, d / "s", "structured")))
        sides[BINARY] = (
            lambda r, d: asyncio.run(forge_throughput(broker, count, d / "b", "binary")))

        results: dict[str, list[Result | None]] = {label: [] for label in sides}
        for round_ in range(0 if args.latency_only else args.rounds):
            line = []
            # every other round in reverse, so no side always runs right after the same other one
            order = list(sides.items()) if round_ % 2 == 0 else list(reversed(sides.items()))
            for label, run in order:
                folder = tmp / f"r{round_}-{len(line)}"
                folder.mkdir()
                value = run(round_, folder)
                results[label].append(value)
                shown = "-" if value is None else f"{value[0]:,.0f} ({value[1]:.0f} µs)"
                line.append(f"{label.split(',')[0]} {shown}")
            print(f"round {round_ + 1} (load {load()}): " + "; ".join(line))

        best_raw = BEST_RAW  # --latency-only: last stop's best
        if any(results.values()):
            best_raw = report_throughput(args, broker, results)
        # the latency's raw side is the best raw side of the throughput rounds: same protocol, same client
        best_protocol = mqtt.MQTTv311 if "3.1.1" in best_raw else mqtt.MQTTv5
        best_kind = FastClient if "FastClient" in best_raw else mqtt.Client
        rate, secs = args.rate, args.latency_seconds
        latency: dict[str, list[float]] = {
            f"{best_raw.split(',')[0]}{' FastClient' if best_kind is FastClient else ''} (best raw)":
                paho_latency(broker, rate, secs, best_protocol, best_kind, joined=best_kind is FastClient)}
        if not args.no_faststream:
            latency["FastStream 0.7 + pydantic"] = faststream_child(broker, int(rate * secs), window, rate)[1]
        latency["Forge, structured (default)"] = asyncio.run(
            forge_latency(broker, rate, secs, tmp / "ls", "structured"))
        latency["Forge, binary"] = asyncio.run(forge_latency(broker, rate, secs, tmp / "lb", "binary"))
        print(f"\nQoS 1 publish -> handler latency at {rate:,} msg/s for {secs:g} s (load {load()}):")
        for label, values in latency.items():
            p50, p99, worst = percentiles(values)
            print(f"  {label:<30} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   max {worst:7.2f} ms   "
                  f"({len(values):,} of {int(rate * secs):,} received)")
        print("  target: Forge p99 <= 2 ms on a quiet machine")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
