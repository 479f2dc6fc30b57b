"""A consumer-group member in its own OS process (test_groups.py runs two and SIGKILLs one).

Prints ``ready`` once it has partitions, then one line per handled message id; a handler takes 5 ms so
a kill lands while records are handled but not yet committed.
"""

from __future__ import annotations

import asyncio
import sys
import time

from forge_core import Envelope, IdGenerator, RawMessage
from forge_core.transport import Decoder

from forge_kafka import KafkaSubscription, KafkaTransport


async def main(bootstrap: str, topic: str) -> None:
    transport = KafkaTransport("kafka", {"bootstrap": bootstrap, "session_timeout_ms": 2000,
                                         "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500},
                               plant="groups")

    decoder = Decoder(prefix="ce_", ids=IdGenerator(), clock_time=time.time)

    async def handle(topic_: str, message: Envelope | RawMessage) -> None:
        assert isinstance(message, RawMessage)
        await asyncio.sleep(0.005)
        sys.stdout.write(f"{decoder.decode(topic_, message.body, message.headers).payload['id']}\n")
        sys.stdout.flush()

    await transport.connect()
    subscription = await transport.subscribe(topic, handle, group="g")
    # subscribe() returns before the group join; Apache Kafka assigns every partition to the first
    # member at once (group.initial.rebalance.delay.ms=0 in tests), so "ready" waits for partitions.
    assert isinstance(subscription, KafkaSubscription)
    await asyncio.to_thread(subscription.assigned_event.wait, 60)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
