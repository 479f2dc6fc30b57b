"""The raw sides of ``bench_mqtt.py``: the Mosquitto C clients (the broker's limit), raw paho driven as
an expert would (one thread, one ``select``, a bounded window) and, for comparison only, the side the
benchmark used before issue 17.

Raw paho runs plain (paho's ``Client``, each packet written at once inside ``publish()`` or the read
that queued it) or, for the best raw side, with every shortcut Forge's transport takes: Forge's
``FastClient`` (its PUBLISH decoder, on 3.1.1 too, its PUBACK decoder and packet reader, ``publish_packed``
with the topic's bytes written once, the PUBACK queued by ``ack`` after the handler as Forge's is) and
``joined=True`` (deferred writes joined into one ``send()`` per turn, reads by ``read_available``).

The best raw side with ``floor=True`` is (a'), the design's floor: the same client and loop doing, per
message, what the design asks of every message in its cheapest form (``bench_mqtt_floor.py``)."""

from __future__ import annotations

import resource
import select
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import paho.mqtt.client as mqtt
from bench_mqtt_common import HEARTBEAT, Result, payload  # benchmarks/ is on sys.path when run as a script
from bench_mqtt_floor import STRUCTURED_PROPERTIES, publish_work, receive_work
from forge_mqtt.testing import MosquittoServer
from forge_mqtt.transport.paho_adapter import FastClient, read_available, utf8
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


# -- (a) the Mosquitto C clients ------------------------------------------------------------------
def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def c_clients_throughput(broker: MosquittoServer, count: int, tmp: Path) -> Result | None:
    if shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None:
        return None
    lines = tmp / "lines.json"
    lines.write_bytes(b"\n".join(orjson.dumps(payload(n)) for n in range(count)) + b"\n")
    topic = f"bench/c/{uuid.uuid4().hex[:6]}"
    common = ["-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", "1"]
    sub = subprocess.Popen(["mosquitto_sub", *common, "-C", str(count)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # mosquitto_sub has no "subscribed" signal; it subscribes within milliseconds
        with lines.open("rb") as stdin:
            start, cpu = time.perf_counter(), children_cpu()
            subprocess.run(["mosquitto_pub", *common, "-l", "-M", "1000"], stdin=stdin, check=True, timeout=120)
        sub.wait(120)
        elapsed = time.perf_counter() - start
        return count / elapsed, (children_cpu() - cpu) / count * 1e6
    finally:
        if sub.poll() is None:
            sub.kill()


# -- (b) raw paho, one thread, bounded window -----------------------------------------------------
class OneThread:
    """Two paho clients driven from this thread: one ``select`` over both sockets.

    ``joined`` (the best raw side, on ``FastClient``): the loop Forge's transport runs, with paho's public
    ``on_socket_register_write``/``loop_write``: packets queue (a burst of publishes, the PUBACKs of a
    read) and each turn starts with one ``loop_write`` per client, which ``FastClient`` sends joined;
    a readable socket is read by ``read_available`` (every complete packet, up to 256) instead of
    ``loop_read`` and its progress check. Without it, paho writes each packet inside ``publish()`` or
    the read that queued it (a ``send()`` each), as a plain paho client does."""

    def __init__(self, broker: MosquittoServer, protocol: int, on_message: Callable[[bytes], None],
                 kind: type[mqtt.Client] = mqtt.Client, joined: bool = False, props: Properties | None = None) -> None:
        self.acked = 0
        self.joined = joined
        self.sub = self._client(broker, protocol, kind)
        self.pub = self._client(broker, protocol, kind)
        self.fast = joined and issubclass(kind, FastClient)
        if self.fast:  # the PUBACK after the handler, as Forge's; FastClient queues its four bytes in ack()
            self.sub.manual_ack_set(True)
            ack = self.sub.ack
            self.sub.on_message = lambda client, userdata, message: (on_message(message.payload), ack(message.mid, 1))
        else:
            self.sub.on_message = lambda client, userdata, message: on_message(message.payload)
        if joined:
            for client in (self.sub, self.pub):
                # set: paho queues a packet and calls this instead of writing it at once
                client.on_socket_register_write = _write_later
        self.pub.on_publish = self._on_publish
        self.subscribed = False
        self.sub.on_subscribe = self._on_subscribe
        self.props = props  # (MQTT 5: given, else the content type below)
        if protocol == mqtt.MQTTv5 and props is None:
            self.props = Properties(PacketTypes.PUBLISH)  # built once, reused for every publish
            self.props.ContentType = "application/json"

    @staticmethod
    def _client(broker: MosquittoServer, protocol: int, kind: type[mqtt.Client]) -> mqtt.Client:
        client = kind(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}", protocol=protocol)
        # 0 = no limit in paho: our window bounds what is in flight, and paho then skips the scan of
        # every stored message it makes on each PUBACK when a limit is set (O(window) per ack).
        client.max_inflight_messages_set(0)
        client.connect(broker.host, broker.port)
        return client

    def publisher(self, topic: str) -> Callable[..., Any]:
        """``publish(payload, qos, properties=...)`` to ``topic``: on ``FastClient`` its ``publish_packed``
        with the topic's bytes written once (as Forge's publisher keeps them per topic), else paho's."""
        if self.fast:
            return partial(self.pub.publish_packed, topic, utf8(topic))
        return partial(self.pub.publish, topic)

    def _on_publish(self, *args: Any) -> None:
        self.acked += 1

    def _on_subscribe(self, *args: Any) -> None:
        self.subscribed = True

    def start(self, topic: str) -> None:
        self.sub.subscribe(topic, qos=1)
        deadline = time.monotonic() + 10
        while not (self.subscribed and self.pub.is_connected()) and time.monotonic() < deadline:
            self.turn(0.01)
        if not self.subscribed:
            raise SystemExit("raw paho: no SUBACK")

    def turn(self, timeout: float, progress: Callable[[], int] = lambda: 0) -> None:
        pub, sub = self.pub, self.sub
        psock, ssock = pub.socket(), sub.socket()
        if self.joined:
            self._joined_turn(timeout, pub, sub, psock, ssock)
            return
        writers = [s for c, s in ((pub, psock), (sub, ssock)) if c.want_write()]
        readable, writable, _ = select.select([psock, ssock], writers, [], timeout)
        if ssock in readable:
            # loop_read reads one packet when the client has nothing in flight (its max_packets is
            # ignored): read on while packets arrive, up to a bound.
            for _ in range(256):
                before = progress()
                sub.loop_read()
                if progress() == before:
                    break
        if psock in readable:
            pub.loop_read()  # up to len(in flight) PUBACKs
        if psock in writable:
            pub.loop_write()
        if ssock in writable:
            sub.loop_write()

    @staticmethod
    def _joined_turn(timeout: float, pub: mqtt.Client, sub: mqtt.Client, psock: Any, ssock: Any) -> None:
        if pub.want_write():
            pub.loop_write()  # the publishes queued since the last turn
        if sub.want_write():
            sub.loop_write()  # the PUBACKs of the last read
        writers = [s for c, s in ((pub, psock), (sub, ssock)) if c.want_write()]  # what the socket did not take
        readable, writable, _ = select.select([psock, ssock], writers, [], timeout)
        if ssock in readable:
            read_available(sub)
        if psock in readable:
            read_available(pub)
        if psock in writable:
            pub.loop_write()
        if ssock in writable:
            sub.loop_write()

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_misc()


def _write_later(*args: Any) -> None:
    """paho's ``on_socket_register_write``: nothing to do, ``OneThread`` writes at the start of each turn."""


def checks() -> tuple[Callable[[Any], bool], Callable[[Any], None]]:
    """The schema check at its cheapest: ``is_valid`` (~40 ns less than ``validate`` on valid data here), then
    ``validate`` only to raise the error for a payload that fails, as Forge's own check does since 6e0f326."""
    validator = jsonschema_rs.validator_for(HEARTBEAT)
    return validator.is_valid, validator.validate


def paho_throughput(broker: MosquittoServer, count: int, protocol: int, window: int,
                    kind: type[mqtt.Client] = mqtt.Client, joined: bool = False, floor: bool = False) -> Result:
    """``floor``: the design's floor of work per message (``bench_mqtt_floor.py``) instead of a JSON
    body and one check on receipt; on MQTT 5 each publish then carries the structured Content Type."""
    is_valid, validate = checks()
    received = [0]
    topic = f"bench/{'floor' if floor else 'raw'}/{uuid.uuid4().hex[:6]}"
    dead: list[Exception] = []

    def on_message(body: bytes) -> None:
        data = orjson.loads(body)
        if not is_valid(data):
            validate(data)  # raises, naming the field: what Forge's check does
        received[0] += 1

    def handler(envelope: object) -> None:
        received[0] += 1

    encode: Callable[[int], bytes] | None = None
    props: Properties | None = None
    if floor:
        encode = publish_work()
        on_message = receive_work(topic, handler, lambda body, exc: dead.append(exc))
        props = STRUCTURED_PROPERTIES if protocol == mqtt.MQTTv5 else None
    pair = OneThread(broker, protocol, on_message, kind, joined, props)
    pair.start(topic)
    publish, props, dumps = pair.publisher(topic), pair.props, orjson.dumps
    progress = received.__getitem__
    sent = 0
    last_misc = time.monotonic()
    start, cpu = time.perf_counter(), time.process_time()
    deadline = time.monotonic() + 120
    while received[0] < count:
        while sent < count and sent - pair.acked < window:
            publish(dumps(payload(sent)) if encode is None else encode(sent), 1, properties=props)
            sent += 1
        pair.turn(0.05, lambda: progress(0))
        if (now := time.monotonic()) - last_misc > 1:
            last_misc = now
            pair.pub.loop_misc()
            pair.sub.loop_misc()
            if now > deadline:
                raise SystemExit(f"raw paho: only {received[0]} of {count} received")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    pair.close()
    if dead:
        raise SystemExit(f"design floor: {len(dead)} of its own messages dead-lettered, the first: {dead[0]}")
    return count / elapsed, cpu / count * 1e6


def paho_latency(broker: MosquittoServer, rate: int, seconds: float, protocol: int,
                 kind: type[mqtt.Client] = mqtt.Client, joined: bool = False) -> list[float]:
    is_valid, validate = checks()
    latencies: list[float] = []

    def on_message(body: bytes) -> None:
        data = orjson.loads(body)
        if not is_valid(data):
            validate(data)
        latencies.append(time.perf_counter() - data["sent"])

    pair = OneThread(broker, protocol, on_message, kind, joined)
    topic = f"bench/rawlat/{uuid.uuid4().hex[:6]}"
    pair.start(topic)
    total = int(rate * seconds)
    publish = pair.publisher(topic)
    progress = latencies.__len__
    start = time.perf_counter()
    for n in range(total):
        target = start + n / rate
        while (now := time.perf_counter()) < target:
            pair.turn(target - now, progress)
        publish(orjson.dumps(payload(n, time.perf_counter())), 1, properties=pair.props)
        if n % rate == 0:
            pair.pub.loop_misc()
            pair.sub.loop_misc()
    deadline = time.monotonic() + 10
    while len(latencies) < total and time.monotonic() < deadline:
        pair.turn(0.01, progress)
    pair.close()
    return latencies


# -- (c) the old raw side (before issue 17), for comparison only ----------------------------------
def old_paho_throughput(broker: MosquittoServer, count: int) -> Result:
    validate = jsonschema_rs.validator_for(HEARTBEAT).validate
    done = threading.Event()
    received = [0]

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        validate(orjson.loads(message.payload))
        received[0] += 1
        if received[0] == count:
            done.set()

    clients = []
    for _ in range(2):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"old-{uuid.uuid4().hex[:6]}",
                             protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.connect(broker.host, broker.port)
        client.loop_start()
        clients.append(client)
    sub, pub = clients
    sub.on_message = on_message
    topic = f"bench/old/{uuid.uuid4().hex[:6]}"
    sub.subscribe(topic, qos=1)
    time.sleep(0.3)
    start, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        pub.publish(topic, orjson.dumps(payload(n)), qos=1, properties=props)
    if not done.wait(120):
        raise SystemExit(f"old paho: only {received[0]} of {count} received")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    for client in clients:
        client.loop_stop()
        client.disconnect()
    return count / elapsed, cpu / count * 1e6


