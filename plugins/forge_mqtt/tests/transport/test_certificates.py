"""Death certificates: the Will on forge/death/<client_id>, births, session sequence numbers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from forge_mqtt import DeathWatch
from forge_mqtt.testing import MosquittoServer

pytestmark = pytest.mark.servers

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from forge_mqtt import MqttTransport

    async def main():
        host, port, client_id, data_dir, keepalive = sys.argv[1:6]
        t = MqttTransport("edge", host=host, port=int(port), client_id=client_id, data_dir=data_dir,
                          keepalive=int(keepalive), reconnect_min_delay=5, reconnect_max_delay=5)
        await t.connect()
        print("connected", t.health().stats["session_seq"], flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())""")


def hold_connection(broker: MosquittoServer, tmp_path: Path, client_id: str, keepalive: int) -> subprocess.Popen[str]:
    """A separate process holding a connection (with its Will) until it is killed."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), broker.host, str(broker.port), client_id,
                             str(tmp_path / "edge-data"), str(keepalive)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("connected"), line
    return proc


async def watcher(broker: MosquittoServer, tmp_path: Path, kit: Any) -> tuple[Any, Any]:
    transport = kit.make_transport(broker, tmp_path / "watch", "watch", death_certificates=False)
    await transport.connect()
    inbox = kit.Collector()
    await transport.subscribe("forge/+/#", inbox)
    await asyncio.sleep(0.1)
    return transport, inbox


def certificates(inbox: Any, kind: str, client_id: str) -> list[dict[str, Any]]:
    return [e.payload for t, e in inbox.items if t == f"forge/{kind}/{client_id}"]


def test_kill_9_sends_the_will_at_once(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    """The kernel closes a killed process's socket, and the broker sends the Will for that, not for a
    missed keepalive: with a 120 s keepalive (the broker's check: 180 s) the Will still comes within
    the 30 s waited. How soon is printed, not asserted (no test asserts a time;
    benchmarks/bench_machine_death.py measures it)."""
    async def body() -> None:
        watch, inbox = await watcher(mosquitto_server, tmp_path, kit)
        proc = await asyncio.to_thread(hold_connection, mosquitto_server, tmp_path, "edge-kill9", 120)
        await kit.until(lambda: certificates(inbox, "birth", "edge-kill9"), 5)
        started = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await kit.until(lambda: certificates(inbox, "death", "edge-kill9"), 30)
        print(f"Will {time.monotonic() - started:.2f}s after kill -9")
        birth, death = certificates(inbox, "birth", "edge-kill9")[0], certificates(inbox, "death", "edge-kill9")[0]
        assert death == {"source": "edge-kill9", "seq": birth["seq"]}
        death_env = next(e for t, e in inbox.items if t.startswith("forge/death/"))
        assert death_env.type == "forge.death" and death_env.source == "edge-kill9"
        await watch.close()

    asyncio.run(body())


def test_a_hung_process_gets_its_will_within_the_keepalive_bound(broker: MosquittoServer, tmp_path: Path,
                                                                 kit: Any) -> None:
    """SIGSTOP keeps the socket open: only the broker's keepalive check (1.5 x keepalive) notices,
    and the Will comes while the process is stopped. How soon is printed, not asserted (no test
    asserts a time): Mosquitto 2.0 checks keepalives against a whole-second clock from its main
    loop, which adds up to about 2 s to the 1.5 x keepalive of the spec (measured 4.1-5.2 s for
    keepalive 2; benchmarks/bench_machine_death.py measures it beside the Will of a killed process).
    """
    keepalive = 2

    async def body() -> None:
        watch, inbox = await watcher(broker, tmp_path, kit)
        proc = await asyncio.to_thread(hold_connection, broker, tmp_path, "edge-hung", keepalive)
        try:
            await kit.until(lambda: certificates(inbox, "birth", "edge-hung"), 5)
            started = time.monotonic()
            os.kill(proc.pid, signal.SIGSTOP)
            await kit.until(lambda: certificates(inbox, "death", "edge-hung"), 30)
            print(f"Will {time.monotonic() - started:.2f}s after SIGSTOP")
            assert proc.poll() is None, "the process was alive (stopped) when its Will came"
        finally:
            proc.kill()
            proc.wait()
        await watch.close()

    asyncio.run(body())


def test_stale_death_of_a_replaced_session_is_ignored(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                     kit: Any) -> None:
    """A hung process is replaced by a new one with the same client id: the broker publishes the old
    session's Will (seq N) around the new birth (seq N+1); DeathWatch keeps the source alive."""

    async def body() -> None:
        watch, inbox = await watcher(mosquitto_server, tmp_path, kit)
        proc = await asyncio.to_thread(hold_connection, mosquitto_server, tmp_path, "edge-twin", 30)
        try:
            await kit.until(lambda: certificates(inbox, "birth", "edge-twin"), 5)
            os.kill(proc.pid, signal.SIGSTOP)
            from forge_mqtt import MqttTransport

            successor = MqttTransport("edge", host=mosquitto_server.host, port=mosquitto_server.port,
                                      client_id="edge-twin", data_dir=tmp_path / "edge-data")
            await successor.connect()  # takes the session over: the broker sends the old Will
            await kit.until(lambda: len(certificates(inbox, "birth", "edge-twin")) == 2
                            and certificates(inbox, "death", "edge-twin"), 5)
        finally:
            proc.kill()
            proc.wait()
        births = certificates(inbox, "birth", "edge-twin")
        deaths = certificates(inbox, "death", "edge-twin")
        assert [b["seq"] for b in births] == [births[0]["seq"], births[0]["seq"] + 1]
        assert deaths == [births[0]]  # the old session's seq
        watch_state = DeathWatch()
        verdicts = []
        for topic, env in inbox.items:
            if topic == "forge/birth/edge-twin":
                watch_state.birth(env.payload)
            elif topic == "forge/death/edge-twin":
                verdicts.append(watch_state.death(env.payload))
        assert watch_state.alive["edge-twin"] is True, (births, deaths, verdicts)

        await successor.close()  # a clean close publishes the current death itself
        await kit.until(lambda: len(certificates(inbox, "death", "edge-twin")) == 2, 5)
        assert certificates(inbox, "death", "edge-twin")[-1] == births[-1]
        assert watch_state.death(births[-1]) is True and watch_state.alive["edge-twin"] is False
        await watch.close()

    asyncio.run(body())


def test_clean_close_publishes_death_and_seq_rises_per_session(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                               kit: Any) -> None:
    async def body() -> None:
        watch, inbox = await watcher(mosquitto_server, tmp_path, kit)
        seqs = []
        for _ in range(3):
            transport = kit.make_transport(mosquitto_server, tmp_path / "node", "node", client_id="node-1")
            await transport.connect()
            seqs.append(transport.health().stats["session_seq"])
            await transport.close()
        await kit.until(lambda: len(certificates(inbox, "death", "node-1")) == 3, 5)
        assert seqs == sorted(set(seqs)) and len(seqs) == 3
        assert [d["seq"] for d in certificates(inbox, "death", "node-1")] == seqs
        assert [b["seq"] for b in certificates(inbox, "birth", "node-1")] == seqs
        assert (tmp_path / "node" / "mqtt-node.seq").read_text() == str(seqs[-1])
        await watch.close()

    asyncio.run(body())


def test_death_watch_ignores_lower_seq() -> None:
    watch = DeathWatch()
    watch.birth({"source": "m1", "seq": 4})
    assert watch.death({"source": "m1", "seq": 3}) is False
    assert watch.alive["m1"] is True
    assert watch.death({"source": "m1", "seq": 4}) is True
    assert watch.alive["m1"] is False
