"""Issue 11 §5: does a publisher's outbox replay lose messages when it runs before a restarted
subscriber has resubscribed? A focused drill on real Mosquitto, both ways round.

- A subscriber *process* (a new transport with the same client id) restarted while a publisher's
  outbox replays: with a session that ends with the connection (session_expiry 0, what a plant
  that sets no session gets) every message replayed while it was away is lost —
  the broker had no subscription to queue it for. With a persistent session (session_expiry > 0,
  clean start off) the broker keeps the subscription and queues what arrives; the restarted
  process gets every message. So the loss is the missing persistent session, not an ordering
  bug the publisher could fix: no order of two processes' reconnects is promised by anyone.
- In one process (a transport that both subscribes and replays), after a broker restart that lost
  every session, the SUBSCRIBE goes out before the replayed PUBLISHes on the same connection, so
  the process hears its own replay: subscriptions are restored before the outbox replays.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from forge_mqtt.testing import MosquittoServer

N = 300


async def _restart_subscriber_during_replay(server: MosquittoServer, tmp_path: Path, kit: Any,
                                            session_expiry: int) -> tuple[int, dict[str, int]]:
    client_id = f"test-sub-{uuid.uuid4().hex[:8]}"
    settings: dict[str, Any] = {"client_id": client_id, "session_expiry": session_expiry}
    sub = kit.make_transport(server, tmp_path / "sub", "sub", **settings)
    await sub.connect()
    first = kit.Collector()
    await sub.subscribe("replay/#", first)
    # the publisher's outbox fills while it cannot reach the broker (its first connect is later)
    pub = kit.make_transport(server, tmp_path / "pub", "pub")
    for n in range(N):
        await pub.publish(f"replay/{n % 5}", kit.envelope({"n": n}))
    assert pub.health().stats["outbox_depth"] == N
    await sub.close()  # the subscriber's process ends ...
    await pub.connect()  # ... and the publisher replays while it is away
    await kit.until(lambda: pub.health().stats["outbox_depth"] == 0, 10, lambda: str(pub.health().stats))
    again = kit.make_transport(server, tmp_path / "sub", "sub", **settings)  # the process restarted
    await again.connect()
    second = kit.Collector()
    await again.subscribe("replay/#", second)
    await asyncio.sleep(1.0)  # whatever the broker queued has arrived by now
    got = {p["n"] for p in first.payloads} | {p["n"] for p in second.payloads}
    stats = dict(again.health().stats)
    await again.close()
    await pub.close()
    return len(got), stats


@pytest.mark.servers
def test_a_session_that_ends_with_the_connection_loses_the_replay(mosquitto_server: MosquittoServer,
                                                                   tmp_path: Path, kit: Any) -> None:
    """The hypothesis proven: without a persistent session the replay finds no subscriber."""
    got, _ = asyncio.run(_restart_subscriber_during_replay(mosquitto_server, tmp_path, kit, 0))
    assert got == 0, f"{got} of {N} replayed messages arrived with no session kept"


@pytest.mark.servers
def test_a_persistent_session_keeps_every_replayed_message(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                           kit: Any) -> None:
    """The fix: session_expiry > 0 (clean start off): the broker queues the replay for the restarted process."""
    got, stats = asyncio.run(_restart_subscriber_during_replay(mosquitto_server, tmp_path, kit, 600))
    assert got == N, f"lost {N - got} of {N} replayed messages; subscriber {stats}"
    assert stats["sessions_resumed"] == 1, stats


@pytest.mark.servers
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_subscriptions_are_restored_before_the_outbox_replays(tmp_path: Path, kit: Any, protocol: str) -> None:
    """One process subscribing and replaying; the broker restarts with no persistence (every session
    lost): its own replayed messages reach its restored subscription, none is lost."""
    with MosquittoServer(base_dir=tmp_path / "broker") as server:
        async def body() -> None:
            mode = "binary" if protocol == "5" else "structured"  # 3.1.1 has no headers to carry the type
            both = kit.make_transport(server, tmp_path / "both", "both", protocol=protocol, content_mode=mode,
                                      reconnect_min_delay=0.2, reconnect_max_delay=0.2)
            await both.connect()
            inbox = kit.Collector()
            await both.subscribe("loop/#", inbox)
            await asyncio.to_thread(server.stop)
            for n in range(N):  # into the outbox: the broker is down
                await both.publish(f"loop/{n % 5}", kit.envelope({"n": n}))
            assert both.health().stats["outbox_depth"] == N
            await asyncio.to_thread(server.start)
            await kit.until(lambda: both.health().stats["outbox_depth"] == 0, 15, lambda: str(both.health().stats))
            await kit.until(lambda: len({p["n"] for p in inbox.payloads}) == N, 5,
                            lambda: f"{len({p['n'] for p in inbox.payloads})} of {N}; {both.health().stats}")
            await both.close()

        asyncio.run(body())


async def _clean_stop_then_publish(server: MosquittoServer, tmp_path: Path, kit: Any, detach: bool) -> int:
    client_id = f"test-clean-{uuid.uuid4().hex[:8]}"
    settings: dict[str, Any] = {"client_id": client_id, "session_expiry": 600}
    sub = kit.make_transport(server, tmp_path / "sub", "sub", **settings)
    await sub.connect()
    subscription = await sub.subscribe("kept/#", kit.Collector())
    if detach:
        sub.detach()  # what the runtime does before its components stop
    await subscription.cancel()  # the component's release at stop
    await sub.close()
    pub = kit.make_transport(server, tmp_path / "pub", "pub")
    await pub.connect()
    for n in range(50):
        await pub.publish(f"kept/{n % 5}", kit.envelope({"n": n}))
    await kit.until(lambda: not pub.health().stats["inflight"], 10, lambda: str(pub.health().stats))
    again = kit.make_transport(server, tmp_path / "sub", "sub", **settings)  # the next start
    await again.connect()
    second = kit.Collector()
    await again.subscribe("kept/#", second)
    await asyncio.sleep(1.0)
    await again.close()
    await pub.close()
    return len({p["n"] for p in second.payloads})


@pytest.mark.servers
def test_a_clean_stop_keeps_the_persistent_session_s_subscriptions(mosquitto_server: MosquittoServer,
                                                                    tmp_path: Path, kit: Any) -> None:
    """Issue 11 §5: a cleanly stopped process unsubscribed its persistent session (a SIGKILLed one did
    not), so what was published until its restart was lost. The runtime now detaches transports
    before components release their subscriptions: the broker keeps queueing."""
    assert asyncio.run(_clean_stop_then_publish(mosquitto_server, tmp_path, kit, detach=True)) == 50
    assert asyncio.run(_clean_stop_then_publish(mosquitto_server, tmp_path / "b", kit, detach=False)) == 0
