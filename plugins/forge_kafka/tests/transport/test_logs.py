"""librdkafka's log lines and client errors are rate-limited per kind (issue 11 drill: 170k-290k lines
per run while the Kafka broker was down, almost all 'Connect ... failed: Connection refused')."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from forge_core import RawMessage, TransportNotReady
from forge_core.testing import find_free_port

from forge_kafka import KafkaTransport
from forge_kafka.transport.logs import RateLimitedLog, kind_of

pytestmark = pytest.mark.timeout(60)

REFUSED = ("[thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: "
           "Connection refused (after {ms}ms in state CONNECT{extra})")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_kind_is_the_broker_and_the_message_without_its_numbers() -> None:
    assert kind_of(REFUSED.format(ms=0, extra="")) == kind_of(REFUSED.format(ms=3, extra=", 12 identical error(s) "
                                                                                        "suppressed"))
    other = REFUSED.format(ms=0, extra="").replace("127.0.0.1:9092/bootstrap:", "127.0.0.1:9093/1:")
    assert kind_of(other) != kind_of(REFUSED.format(ms=0, extra=""))  # another broker
    assert kind_of("1/1 brokers are down") != kind_of(REFUSED.format(ms=0, extra=""))


def test_the_first_line_of_each_kind_then_one_per_interval_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logs = RateLimitedLog(logging.getLogger("forge.test.kafka"), 10.0, name="k", clock=clock)
    caplog.set_level(logging.DEBUG, logger="forge.test.kafka")
    for n in range(100):  # 10 s of a consumer failing to reconnect every 0.1 s
        clock.now = n * 0.1
        logs.log(40, "%s [%s] %s", "FAIL", f"rdkafka#consumer-{n % 3}", REFUSED.format(ms=n % 4, extra=""))
        if n == 50:  # a new kind in the middle of the flood is logged at once
            logs.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "1/1 brokers are down")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "Connection refused" in lines[0] and "brokers are down" in lines[1]
    assert lines[0].startswith("kafka k: librdkafka FAIL [rdkafka#consumer-0] 127.0.0.1:9092/bootstrap: Connect")
    clock.now = 10.0  # the interval is over and the flood goes on: logged with what was held back
    logs.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-2", REFUSED.format(ms=0, extra=""))
    assert "[99 similar line(s) suppressed in the last 10s]" in caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.ERROR
    clock.now = 11.0  # then the broker is back: nothing more of that kind; flush still reports the held count
    logs.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-2", REFUSED.format(ms=0, extra=""))
    clock.now = 20.0  # quiet for 9 s: not yet
    logs.flush()
    assert len(caplog.records) == 3
    clock.now = 25.0
    logs.flush()
    assert re.search(r"kafka k: 1 similar line\(s\) suppressed in the last 15s, the last 14s ago: .*refused",
                     caplog.records[-1].getMessage())
    assert logs.stats["log_suppressed"] == 100 and logs.stats["log_lines"] == len(caplog.records) == 4
    clock.now = 26.0  # a kind that went quiet is a first line again
    logs.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-0", REFUSED.format(ms=0, extra=""))
    assert "suppressed" not in caplog.records[-1].getMessage() and len(caplog.records) == 5


def test_every_zero_logs_every_line(caplog: pytest.LogCaptureFixture) -> None:
    logs = RateLimitedLog(logging.getLogger("forge.test.kafka"), 0.0, name="k")
    caplog.set_level(logging.DEBUG, logger="forge.test.kafka")
    for _ in range(5):
        logs.emit(logging.WARNING, "same", "the same line")
    assert len(caplog.records) == 5 and logs.stats["log_suppressed"] == 0


def test_a_transport_on_a_dead_port_logs_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    """Every client of the transport (the admin client at connect, one consumer per subscription)
    retrying a dead port every 10-50 ms for 4 s: about 3,000 lines without the limit (librdkafka's
    FAIL line and the _TRANSPORT error of each attempt of each client); with it, one line per kind
    per second and the count of the rest."""
    port = find_free_port()
    caplog.set_level(logging.DEBUG, logger="forge.transport.kafka")

    async def handle(topic: str, message: RawMessage) -> None:
        raise AssertionError("nothing to consume from a dead port")

    async def body() -> dict[str, Any]:
        transport = KafkaTransport("dead", {"bootstrap": f"127.0.0.1:{port}", "connect_timeout": 1.0,
                                            "log_every": 1.0, "session_timeout_ms": 1000,
                                            "heartbeat_interval_ms": 300,
                                            "config": {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50}},
                                   plant="logs")
        with pytest.raises(TransportNotReady):
            await transport.connect()
        # as if the broker had died after connect: the subscriptions' consumers keep retrying it
        for n in range(3):
            await transport.subscribe(f"logs/t{n}", handle, owner="reader")
        await asyncio.sleep(4.0)
        await transport.close()
        return dict(transport.health().stats)

    stats = asyncio.run(body())
    lines = [r.getMessage() for r in caplog.records if r.name == "forge.transport.kafka"]
    refused = [line for line in lines if "Connection refused" in line]
    stderr = capfd.readouterr().err
    assert "Connection refused" not in stderr, "a client logs to stderr, past the limit"
    assert stats["log_suppressed"] > 500, stats  # the flood was there ...
    assert 2 <= len(refused) <= 30, lines  # ... and bounded: ~2 kinds x (first + one per second + summary)
    assert len(lines) <= 60, lines
    held = sum(int(n) for line in lines for n in re.findall(r"(\d+) similar line\(s\) suppressed", line))
    assert held == stats["log_suppressed"], (held, stats)  # every held-back line is counted in a line
