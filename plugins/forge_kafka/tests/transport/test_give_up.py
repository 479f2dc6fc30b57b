"""Records no successor will re-send, without a broker: a retired producer's late reports and the
records held when the transport closes are given up (the transport's on_undeliverable), in publish
order, on the event loop."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from confluent_kafka import KafkaError
from forge_core import Envelope, RawMessage

from forge_kafka import KafkaTransport
from forge_kafka.transport.undeliverable import KEY_HEADER, KafkaUndeliverable, settle


class LateProducer:
    """A retired producer whose poll serves one report."""

    def __init__(self, report: Any) -> None:
        self.report, self.left = report, 1

    def poll(self, timeout: float) -> int:
        if self.left:
            self.left = 0
            self.report()
        return 0

    def __len__(self) -> int:
        return self.left


def test_a_retired_producers_late_report_is_given_up_and_the_producer_dropped() -> None:
    transport = KafkaTransport("k", {"bootstrap": "127.0.0.1:1"})
    connection = transport.connection
    seen: list[bool] = []
    connection.retired = [LateProducer(lambda: seen.append(connection.late_reports()))]  # type: ignore[list-item]
    assert not connection.late_reports()
    connection._serve_retired()
    assert seen == [True] and connection.retired == [] and not connection.late_reports()


def test_records_held_at_close_are_dead_letters_in_publish_order() -> None:
    transport = KafkaTransport("k", {"bootstrap": "127.0.0.1:1"})
    letters: list[tuple[str, RawMessage, BaseException]] = []

    def hear(topic: str, message: Envelope | RawMessage, error: BaseException) -> None:
        assert isinstance(message, RawMessage)
        letters.append((topic, message, error))

    transport.on_undeliverable = hear
    publisher, connection = transport.publisher, transport.connection

    async def body() -> None:
        connection.loop = asyncio.get_running_loop()
        connection._giving_up = True  # what close() sets before giving up
        held = [(seq, "plant.m1.reading", f'{{"n":{seq}}}'.encode(), b"m1", None, partial(publisher.on_failed, None, seq))
                for seq in (2, 0, 1)]
        assert connection.give_up_held is not None
        connection.give_up_held(held, KafkaError(KafkaError._PURGE_QUEUE, "closed"))
        await settle()

    asyncio.run(body())
    assert [raw.body for _, raw, _ in letters] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert {topic for topic, _, _ in letters} == {"plant/m1/reading"}
    assert all(raw.headers[KEY_HEADER] == "m1" for _, raw, _ in letters)
    assert all(isinstance(error, KafkaUndeliverable) and error.code_name == "_PURGE_QUEUE" for _, _, error in letters)
    assert transport.health().stats["publish_undeliverable"] == 3
