"""The peer side of ``bench_mqtt.py``: FastStream (``faststream[mqtt]``) with a pydantic model, run in
a child process (``bench_mqtt.py --faststream-child``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
from bench_mqtt_common import Heartbeat, Result, payload  # benchmarks/ is on sys.path when run as a script
from forge_mqtt.testing import MosquittoServer

#: The script whose ``--faststream-child`` option runs one FastStream side in a child process.
MAIN = Path(__file__).with_name("bench_mqtt.py")


# -- (d) the peer: FastStream ---------------------------------------------------------------------
async def faststream_run(broker: MosquittoServer, count: int, window: int,
                         rate: int | None) -> tuple[Result, list[float]]:
    """Throughput and CPU µs a message (``rate`` None: as fast as ``window`` concurrent publishes go) or
    latencies at ``rate``."""
    from faststream.mqtt import MQTTBroker, QoS

    fs = MQTTBroker(host=broker.host, port=broker.port, client_id=f"fs-{uuid.uuid4().hex[:6]}", logger=None)
    topic = f"bench/fs/{uuid.uuid4().hex[:6]}"
    received = [0]
    latencies: list[float] = []
    done = asyncio.Event()

    @fs.subscriber(topic, qos=QoS.AT_LEAST_ONCE)
    async def on_heartbeat(message: Heartbeat) -> None:
        if rate is not None:
            latencies.append(time.perf_counter() - message.sent)
        received[0] += 1
        if received[0] == count:
            done.set()

    await fs.start()
    try:
        await asyncio.sleep(0.3)
        slots = asyncio.Semaphore(window)
        tasks: set[asyncio.Task[None]] = set()

        async def send(body: dict[str, Any]) -> None:
            try:
                await fs.publish(body, topic, qos=QoS.AT_LEAST_ONCE)
            finally:
                slots.release()

        start, cpu = time.perf_counter(), time.process_time()
        for n in range(count):
            if rate is not None:
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(send(payload(n, time.perf_counter())))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.wait_for(done.wait(), 120 if rate is None else 10)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    except TimeoutError:
        elapsed, cpu = float("inf"), float("inf")
    finally:
        await fs.stop()
    return (count / elapsed, cpu / count * 1e6), latencies


def faststream_child(broker: MosquittoServer, count: int, window: int,
                     rate: int | None) -> tuple[Result, list[float]]:
    """``faststream_run`` in a child process: FastStream and its client keep ~20,000 objects alive
    once imported, which every full GC of the sides measured after it in this process would walk
    (it was run in process before). The child measures its own CPU time, as the in-process sides do."""
    command = [sys.executable, str(MAIN), "--faststream-child", f"{broker.host}:{broker.port}", "--messages",
               str(count), "--window", str(window)] + ([] if rate is None else ["--rate", str(rate)])
    done = subprocess.run(command, capture_output=True, check=True, timeout=300)
    answer = orjson.loads(done.stdout.splitlines()[-1])
    return (answer["rate"], answer["cpu"]), answer["latencies"]


def faststream_child_main(address: str, count: int, window: int, rate: int | None) -> None:
    host, port = address.rsplit(":", 1)
    broker = cast(MosquittoServer, SimpleNamespace(host=host, port=int(port)))
    (msgs, cpu), latencies = asyncio.run(faststream_run(broker, count, window, rate))
    print(orjson.dumps({"rate": msgs, "cpu": cpu, "latencies": latencies}).decode())


