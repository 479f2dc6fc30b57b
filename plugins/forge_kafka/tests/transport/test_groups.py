"""Consumer groups across OS processes: members share partitions, a killed member's partitions
move to the survivor, and every message is handled at least once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from forge_core import Envelope

from forge_kafka import KafkaTransport

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(180)]

MEMBER = Path(__file__).parent.parent / "group_member.py"


class Member:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(MEMBER), bootstrap, topic], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.ids: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line == "ready":
                self.ready.set()
            elif line:
                self.ids.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkilled_member_partitions_move_and_nothing_is_lost(kafka_bootstrap: str) -> None:
    topic = f"load{uuid.uuid4().hex[:6]}/readings"
    total = 400

    async def produce(start: int, count: int) -> None:
        transport = KafkaTransport("p", {"bootstrap": kafka_bootstrap, "topics": {topic: {"partitions": 4}}})
        await transport.connect()
        for n in range(start, start + count):
            await transport.publish(topic, Envelope("load.reading", {"id": f"m{n}"}, f"machine-{n % 16}",
                                                    uuid.uuid4().hex, time.time(), None, 1, {}))
        assert await transport.flush() == 0
        await transport.close()

    asyncio.run(produce(0, 0))  # create the 4-partition topic first
    a, b = Member(kafka_bootstrap, topic), Member(kafka_bootstrap, topic)
    try:
        wait_for(lambda: a.ready.is_set() and b.ready.is_set(), 30, "both members to connect")
        asyncio.run(produce(0, total // 2))
        wait_for(lambda: len(a.ids) > 20 and len(b.ids) > 20, 60, "both members to handle messages (shared)")
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(10)
        killed_at = len(b.ids)
        asyncio.run(produce(total // 2, total // 2))
        expected = {f"m{n}" for n in range(total)}
        wait_for(lambda: expected <= set(a.ids) | set(b.ids), 90, "every message to be handled")
        handled = len(a.ids) + len(b.ids)
        print(f"a handled {len(a.ids)}, b handled {killed_at} before SIGKILL; "
              f"distinct {len(set(a.ids) | set(b.ids))}/{total}; duplicates {handled - total}")
        assert set(a.ids) >= {f"m{n}" for n in range(total // 2, total)} - set(b.ids)
    finally:
        a.stop()
        b.stop()
