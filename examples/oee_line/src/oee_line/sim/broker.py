"""An MQTT broker and clients for virtual time: what Mosquitto and paho carry, without sockets or threads.

The Sparkplug components own paho clients (threads, sockets), which a virtual clock cannot drive.
Under ``--simulate`` the plant's ``oee_line.sim_edge_node`` and ``oee_line.sim_host`` are the real
``sparkplug.edge_node`` and ``sparkplug.host`` with one change: their client is a :class:`SimClient`
on a :class:`SimBroker` of the same event loop. The same protobuf bytes travel, with MQTT's
semantics where Sparkplug depends on them:

* clean sessions: a (re)connect starts without subscriptions; a subscription gets the retained
  messages that match it;
* the Will of each CONNECT, published when the broker loses the client (not on a clean DISCONNECT
  unless asked, as MQTT 5's reason 0x04 does; never when the broker itself goes down);
* retained messages kept across a broker outage when ``persistence`` (the plant's Mosquitto has
  ``persistence true``);
* QoS 0 as on a TCP connection: a message to a client that is not connected is gone, and what a client
  writes after its network went away, before it noticed, is gone too;
* a broker outage closes every connection at once (the clients see the socket close); a network loss
  is noticed by each side only by keepalive (the broker after 1.5 x keepalive, paho between 1 and
  2 x keepalive; the delay is the caller's draw);
* reconnects as paho makes them: ``reconnect_min_delay`` doubling to ``reconnect_max_delay``.

Delivery is in order per client and immediate in virtual time (one loop turn).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from forge_mqtt import MqttSettings
from forge_sparkplug.mqtt import Handover, Received, Will

__all__ = ["SimBroker", "SimClient", "broker", "matches"]

_BROKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SimBroker]] = weakref.WeakKeyDictionary()


def matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching: ``+`` one level, ``#`` the rest (none included); ``$`` topics only by name."""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False
    want, have = pattern.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


_MATCHED: dict[tuple[str, str], bool] = {}


def _matches(pattern: str, topic: str) -> bool:
    """:func:`matches`, remembered: a plant's filters and topics are few, and every message is matched against
    every filter of every session (the simulated day's broker)."""
    found = _MATCHED.get((pattern, topic))
    if found is None:
        if len(_MATCHED) > 50_000:  # many distinct topics: forget rather than grow
            _MATCHED.clear()
        found = _MATCHED[(pattern, topic)] = matches(pattern, topic)
    return found


def broker(name: str, *, persistence: bool = True) -> SimBroker:
    """The broker ``name`` of the running loop (one simulated plant), made on first use."""
    brokers = _BROKERS.setdefault(asyncio.get_running_loop(), {})
    if name not in brokers:
        brokers[name] = SimBroker(name, persistence=persistence)
    return brokers[name]


class SimBroker:
    """Sessions, subscriptions, retained messages and Wills of one simulated broker."""

    def __init__(self, name: str, *, persistence: bool = True) -> None:
        self.name = name
        self.persistence = persistence
        self.up = True
        self.sessions: dict[str, SimClient] = {}  # client id -> connected client
        self.retained: dict[str, bytes] = {}
        self.links_down: set[str] = set()  # client ids whose network is cut
        # topic -> the clients a message on it goes to, in session order; cleared whenever a session, a filter or a
        # link changes (every message was matched against every filter of every session)
        self._routes: dict[str, list[SimClient]] = {}
        self.stats = dict.fromkeys(("connects", "refused", "published", "delivered", "no_subscriber", "lost_in_link",
                                    "wills", "outages", "link_losses"), 0)

    # -- what clients do -------------------------------------------------------------------------------
    def connect(self, client: SimClient) -> bool:
        if not self.up or client.client_id in self.links_down:
            self.stats["refused"] += 1
            return False
        old = self.sessions.get(client.client_id)
        if old is not None and old is not client:  # session takeover: the old connection is closed, its Will sent
            self._drop(old, will=True, notify=True)
        self.sessions[client.client_id] = client
        client.filters = []
        self._routes.clear()
        self.stats["connects"] += 1
        return True

    def subscribe(self, client: SimClient, filters: list[str]) -> None:
        if self.sessions.get(client.client_id) is not client:
            return
        client.filters += filters
        self._routes.clear()
        for topic, body in self.retained.items():
            if any(_matches(f, topic) for f in filters):
                client.deliver(Received(topic, body, True))

    def publish(self, client: SimClient, topic: str, body: bytes, retain: bool) -> None:
        if self.sessions.get(client.client_id) is not client or client.client_id in self.links_down:
            self.stats["lost_in_link"] += 1  # written into a dead link: nobody will read it
            return
        self._route(topic, body, retain)

    def disconnect(self, client: SimClient, *, will: bool) -> None:
        if self.sessions.get(client.client_id) is client:
            self._drop(client, will=will, notify=False)

    # -- faults ------------------------------------------------------------------------------------------
    def go_down(self) -> None:
        """The broker process dies: every connection closes at once, no Will is sent."""
        self.up = False
        self.stats["outages"] += 1
        self._routes.clear()
        for client in list(self.sessions.values()):
            del self.sessions[client.client_id]
            client.lost()
        if not self.persistence:
            self.retained.clear()

    def come_up(self) -> None:
        self.up = True

    def cut(self, client_id: str, broker_notices: float, client_notices: float) -> None:
        """The client's network goes away: each side notices after its own delay (seconds)."""
        self.links_down.add(client_id)
        self._routes.clear()
        self.stats["link_losses"] += 1
        client = self.sessions.get(client_id)
        if client is None:
            return
        loop = asyncio.get_running_loop()
        loop.call_later(broker_notices, self._link_timeout, client)
        loop.call_later(client_notices, client.lost)

    def restore(self, client_id: str) -> None:
        self.links_down.discard(client_id)
        self._routes.clear()

    def _link_timeout(self, client: SimClient) -> None:
        if self.sessions.get(client.client_id) is client and client.client_id in self.links_down:
            self._drop(client, will=True, notify=False)  # keepalive ran out: the Will goes out

    # -- inside ------------------------------------------------------------------------------------------
    def _drop(self, client: SimClient, *, will: bool, notify: bool) -> None:
        del self.sessions[client.client_id]
        self._routes.clear()
        if notify:
            client.lost()
        if will and client.will is not None:
            self.stats["wills"] += 1
            self._route(client.will.topic, client.will.body, client.will.retain)

    def _route(self, topic: str, body: bytes, retain: bool) -> None:
        self.stats["published"] += 1
        if retain:
            if body:
                self.retained[topic] = body
            else:
                self.retained.pop(topic, None)
        clients = self._routes.get(topic)
        if clients is None:
            if len(self._routes) > 50_000:  # many distinct topics: forget rather than grow
                self._routes.clear()
            clients = self._routes[topic] = [
                client for client in self.sessions.values()
                if client.client_id not in self.links_down and any([_matches(f, topic) for f in client.filters])]
        for client in clients:
            client.deliver(Received(topic, body, False))
        self.stats["delivered" if clients else "no_subscriber"] += 1


class SimClient(Handover):
    """``forge_sparkplug.mqtt.SparkplugClient``'s surface on a :class:`SimBroker` (see the module docstring); what it
    hands its owner, and how, is the real client's (``Handover``)."""

    def __init__(self, sim: SimBroker, settings: MqttSettings, client_id: str, *, name: str,
                 will: Callable[[], Will | None], on_connect: Callable[[], Awaitable[None]],
                 on_disconnect: Callable[[], Awaitable[None]],
                 on_messages: Callable[[list[Received]], Awaitable[None]]) -> None:
        self.sim = sim
        self.settings = settings
        self.client_id = client_id
        self.name = name
        self.broker = f"simulated broker {sim.name!r}"
        self._will_of = will
        self._on_connect, self._on_disconnect, self._on_messages = on_connect, on_disconnect, on_messages
        self.will: Will | None = None
        self.filters: list[str] = []
        self.connected = False
        self.connects = 0
        self._inbox: deque[Received] = deque()
        self._events: deque[bool] = deque()
        self._woken = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pumping(), name=f"{self.name}:sim-mqtt"),
                       loop.create_task(self._connecting(first=True), name=f"{self.name}:sim-connect")]

    async def _connecting(self, first: bool = False) -> None:
        """paho's reconnect loop: ``reconnect_min_delay`` doubling to ``reconnect_max_delay``."""
        s = self.settings
        delay = max(1, round(s.reconnect_min_delay))
        if not first:
            await asyncio.sleep(delay)
        while not self._stopped:
            self.will = self._will_of()
            if self.sim.connect(self):
                self._event(True)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, max(1, round(s.reconnect_max_delay)))

    def lost(self) -> None:
        """The connection is gone (the broker died, or keepalive ran out): reconnect in the background."""
        if self._stopped or not (self.connected or (self._events and self._events[-1])):
            return
        if self.sim.sessions.get(self.client_id) is self:
            self.sim.disconnect(self, will=False)
        self._event(False)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._connecting(), name=f"{self.name}:sim-reconnect"))

    def deliver(self, message: Received) -> None:
        self._inbox.append(message)
        self._woken.set()

    def _event(self, up: bool) -> None:
        self._events.append(up)
        self._woken.set()

    async def _pumping(self) -> None:
        while True:
            await self._woken.wait()
            self._woken.clear()
            events = list(self._events)
            self._events.clear()
            await self._hand_over(events)

    # -- what the owner does -----------------------------------------------------------------------------
    def publish(self, topic: str, body: bytes, qos: int = 0, retain: bool = False) -> int | None:
        if not self.connected or (self.sim.sessions.get(self.client_id) is not self and \
                self.client_id not in self.sim.links_down):
            return None
        self.sim.publish(self, topic, body, retain)
        return 1

    async def publish_written(self, topic: str, body: bytes, qos: int = 0, retain: bool = False,
                              timeout: float = 5.0) -> bool:
        return self.publish(topic, body, qos, retain) is not None

    async def probe(self, timeout: float = 5.0) -> bool:
        """``SparkplugClient.probe``: the broker's answer comes at once over a live link; over a cut one, never
        (False once the client notices the loss, or after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._live() and self.client_id in self.sim.links_down:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return self._live()

    def _live(self) -> bool:
        return self.connected and self.sim.sessions.get(self.client_id) is self

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        self.sim.subscribe(self, [f for f, _ in filters])

    async def stop(self, *, will: bool = False, timeout: float = 2.0) -> None:
        self._stopped = True
        self.sim.disconnect(self, will=will)
        self._end()

    def drop(self) -> None:
        self._stopped = True
        if self.sim.sessions.get(self.client_id) is self:
            self.sim._drop(self, will=True, notify=False)
        self._end()

    def _end(self) -> None:
        self.connected = False
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
