"""The simulated broker carries what Mosquitto carries where Sparkplug relies on it: retained messages (kept
across an outage only with persistence), the Will on a lost connection but not when the broker dies, QoS 0
into a dead link is gone, keepalive detection on both sides and paho's reconnect backoff."""

from __future__ import annotations

import asyncio

from forge_mqtt import MqttSettings
from forge_sparkplug.mqtt import Received, Will
from oee_line.sim.broker import SimClient, broker, matches

from forge_core import VirtualClock

SETTINGS = MqttSettings(host="simulated", port=1883, keepalive=5, reconnect_min_delay=1, reconnect_max_delay=8)


class Peer:
    def __init__(self, name: str, filters: list[str], will: Will | None = None, persistence: bool = True) -> None:
        self.got: list[Received] = []
        self.ups: list[tuple[bool, float]] = []
        self.filters = filters
        self.client = SimClient(broker("b", persistence=persistence), SETTINGS, name, name=name,
                                will=lambda: will, on_connect=self._up, on_disconnect=self._down,
                                on_messages=self._messages)

    async def _up(self) -> None:
        self.ups.append((True, asyncio.get_running_loop().time()))
        self.client.subscribe([(f, 1) for f in self.filters])

    async def _down(self) -> None:
        self.ups.append((False, asyncio.get_running_loop().time()))

    async def _messages(self, batch: list[Received]) -> None:
        self.got += batch


def run(scenario) -> None:  # type: ignore[no-untyped-def]
    clock = VirtualClock()
    try:
        clock.run(scenario())
    finally:
        clock.close()


def test_filters_match_as_mqtt_does() -> None:
    assert matches("spBv1.0/line1/#", "spBv1.0/line1/NDATA/edge-1")
    assert matches("spBv1.0/+/NDATA/+", "spBv1.0/line1/NDATA/edge-1")
    assert not matches("spBv1.0/+/NDATA", "spBv1.0/line1/NDATA/edge-1")
    assert not matches("#", "$SYS/broker/uptime")


def test_retained_state_survives_an_outage_only_with_persistence_and_no_will_is_sent() -> None:
    for persistence in (True, False):
        async def scenario(persistence: bool = persistence) -> None:
            host = Peer("host", [], Will("spBv1.0/STATE/a", b"offline", 1, True), persistence=persistence)
            host.client.start()
            await asyncio.sleep(0.1)
            host.client.publish("spBv1.0/STATE/a", b"online", 1, retain=True)
            sim = broker("b")
            sim.go_down()
            await asyncio.sleep(5)
            sim.come_up()
            edge = Peer("edge", ["spBv1.0/STATE/a"], persistence=persistence)
            edge.client.start()
            await asyncio.sleep(20)
            assert [m.body for m in edge.got] == ([b"online"] if persistence else [])
            assert sim.stats["wills"] == 0
            assert host.client.connects == 2, "the host reconnected after the outage"
            assert [up for up, _ in host.ups] == [True, False, True]

        run(scenario)


def test_a_network_loss_sends_the_will_and_loses_what_was_written_before_the_client_noticed() -> None:
    async def scenario() -> None:
        host = Peer("host", ["spBv1.0/line1/#"])
        edge = Peer("edge", [], Will("spBv1.0/line1/NDEATH/edge-1", b"death", 1, False))
        host.client.start()
        edge.client.start()
        await asyncio.sleep(0.1)
        sim = broker("b")
        sim.cut("edge", broker_notices=7.5, client_notices=9.0)
        for _ in range(8):  # written into the dead link: accepted by the client, never delivered
            assert edge.client.publish("spBv1.0/line1/NDATA/edge-1", b"data") is not None
            await asyncio.sleep(1)
        await asyncio.sleep(2)
        assert [m.body for m in host.got] == [b"death"], "only the Will, after 1.5 x keepalive"
        assert sim.stats["lost_in_link"] == 8
        assert edge.ups[-1][0] is False and 9.0 <= edge.ups[-1][1] < 9.2
        assert edge.client.publish("spBv1.0/line1/NDATA/edge-1", b"x") is None, "not connected: refused"
        await asyncio.sleep(20)
        assert edge.client.connects == 1, "no reconnect while the network is away"
        sim.restore("edge")
        await asyncio.sleep(16)  # backoff 1, 2, 4, 8 s
        assert edge.client.connects == 2
        edge.client.publish("spBv1.0/line1/NDATA/edge-1", b"after")
        await asyncio.sleep(0.1)
        assert host.got[-1].body == b"after"

    run(scenario)


def test_a_topic_routed_before_goes_where_the_sessions_filters_and_links_are_now() -> None:
    """The broker remembers each topic's clients: a subscription, a cut or restored link, a lost or new session
    after a topic was routed changes where its next message goes (fails if what is remembered is not forgotten)."""

    async def scenario() -> None:
        sim = broker("b")
        topic = "spBv1.0/line1/DDATA/edge-1/M1"
        a, b = Peer("a", ["spBv1.0/line1/#"]), Peer("b", [])
        a.client.start()
        b.client.start()
        edge = Peer("edge", [])
        edge.client.start()
        await asyncio.sleep(0.1)

        async def send(body: bytes) -> None:
            edge.client.publish(topic, body)
            await asyncio.sleep(0.1)

        await send(b"1")
        b.client.subscribe([("spBv1.0/+/DDATA/#", 0)])  # b subscribes after the topic was routed
        await send(b"2")
        sim.cut("a", broker_notices=60, client_notices=60)  # a's network away, noticed by no one yet: not delivered
        await send(b"3")
        sim.restore("a")
        await send(b"4")
        sim.disconnect(b.client, will=False)  # b's session ends
        await send(b"5")
        assert [m.body for m in a.got] == [b"1", b"2", b"4", b"5"]
        assert [m.body for m in b.got] == [b"2", b"3", b"4"]
        assert sim.stats["delivered"] == 5 and sim.stats["no_subscriber"] == 0

    run(scenario)
