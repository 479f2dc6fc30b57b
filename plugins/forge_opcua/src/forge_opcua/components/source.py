"""``opcua.source``: an OPC UA server's data changes as ``opcua.data_change`` messages.

Connects (security from ``params.security``), resolves the configured and browsed nodes, and
subscribes to them in one subscription; each notification becomes a message on
``topic`` (key: the tag), through a bounded backlog. A lost connection is followed by a new one,
with backoff, until the server is back; then the nodes are resolved and subscribed again (one
subscription, never two). The backpressure tactic switches the sampling interval between fast and
slow on the backlog's depth (or a downstream queue's, ``depth_topic``) by modifying the monitored
items in place. Never silent: every loss, refusal and drop is logged, counted in ``health()``
and the report, and connects and losses are published as ``opcua.source_status``.

A node that does not exist, a certificate refused by either side, or a server without the
configured security endpoint is a :class:`SourceError` naming the component, the endpoint and the
node or certificate: at ``start`` when the server is reachable then, at the next connect otherwise.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asyncua import ua
from forge_core import Check, Component, Envelope, ForgeError, Publishes, Subscribes
from forge_core.tactics import Backoff, BackpressureController

from forge_opcua.client.backlog import Backlog, Pending
from forge_opcua.client.convert import DATA_CHANGE, Tag, payload_of
from forge_opcua.client.nodes import NodeError
from forge_opcua.client.session import Session
from forge_opcua.security import SecurityError, describe, load_certificates, refusal_text
from forge_opcua.settings import SourceParams

__all__ = ["SOURCE_STATUS", "OpcUaSource", "SourceError"]

SOURCE_STATUS = "opcua.source_status"
QUEUE_DEPTH = "opcua.queue_depth"


class SourceError(ForgeError):
    """A configuration the server refuses: a node, a certificate, a security policy."""


def _level(text: str) -> str:
    return text.replace("+", "_").replace("#", "_")


def _milestone(count: int) -> bool:
    """Log the 1st, 10th, 100th and every 1000th drop: loud at first, never a flood."""
    return count in (1, 10, 100) or count % 1000 == 0


class OpcUaSource(Component):
    """Subscribes to an OPC UA server's nodes; publishes their data changes (see the module docstring)."""

    Params = SourceParams
    params: SourceParams
    publishes = (Publishes(DATA_CHANGE, param="topic", key="the tag"),
                 Publishes(SOURCE_STATUS, param="status_topic", key="source"))
    subscribes = (Subscribes(QUEUE_DEPTH, param="depth_topic"),)

    # what health() and report() read before start() ran (or after it failed)
    backlog: Backlog | None = None
    session: Session | None = None
    connected = False
    sampling_interval = 0.25
    _previous_subscription: int | None = None
    _first_change = False

    async def start(self) -> None:
        if getattr(self.ctx.clock, "is_virtual", False):
            raise SourceError(f"opcua.source {self.name!r}: needs the real clock (asyncua talks TCP to "
                              f"{self.params.endpoint}); run the plant without --simulate, or leave this "
                              "component out of simulated profiles")
        p = self.params
        self.backlog = Backlog(p.max_backlog)
        self.session: Session | None = None
        self.connected = False
        self.connects = self.losses = self.connect_failures = self.switches = self.publish_failures = 0
        self.unconvertible = 0
        self.last_error = ""
        self.downstream: tuple[int, float] | None = None  # (depth, monotonic time reported)
        self._publishing = asyncio.Event()
        self._sampling_lock = asyncio.Lock()
        self.pressure: BackpressureController = self.ctx.backpressure(self._on_pressure,
                                                                      **p.backpressure_overrides())
        self.sampling_interval = self.pressure.fast_interval
        if p.depth_topic:
            await self.ctx.subscribe(p.depth_topic, self._on_depth, types=[QUEUE_DEPTH])
        try:
            await self._open()
        except SourceError:
            raise
        except Exception as exc:  # not reachable now: keep trying in the background
            self._failed(exc)
        self._tasks = [self.ctx.spawn(self._supervise(), name="connection"),
                       self.ctx.spawn(self._pump(), name="publish")]
        if p.adaptive_sampling:
            self.ctx.every(p.check_every, self._check_pressure, name="backpressure")

    # -- connection ----------------------------------------------------------------------
    async def _open(self) -> None:
        session = Session(self.params, f"opcua.source {self.name!r}", self._on_data_change)
        try:
            await session.open(self.sampling_interval, self._previous_subscription)
        except BaseException as exc:
            await session.close()
            raise self._explain(exc, session) from exc
        self.session = session
        self._previous_subscription = session.subscription_id
        self._first_change = True  # the session's first notification is logged (INFO): the chain is live
        self.connects += 1
        self.connected = True
        self.ctx.log.info("subscribed to %d nodes of %s (subscription %s, sampling %.2fs)", len(session.tags),
                          self.params.endpoint, session.subscription_id, self.sampling_interval)
        await self._status(True, "subscribed" if self.connects == 1 else "resubscribed")

    def _explain(self, exc: BaseException, session: Session) -> BaseException:
        """A SourceError for what no retry fixes (naming node, certificate, policy); ``exc`` otherwise."""
        where = f"opcua.source {self.name!r} ({self.params.endpoint})"
        if isinstance(exc, NodeError):
            return SourceError(f"{where}: {exc}")
        if isinstance(exc, SecurityError):
            return SourceError(f"{where}: {exc}")
        security = self.params.security
        if isinstance(exc, ua.UaError) and str(exc).startswith("No matching endpoints"):
            wanted = "None" if security.policy == "None" else f"{security.policy}/{security.mode}"
            return SourceError(f"{where}: the server offers no {wanted} endpoint (set security to one it offers)")
        code = getattr(exc, "code", None)
        if isinstance(exc, ua.UaStatusCodeError) and code is not None and refusal_text(code) != "was refused":
            name = ua.StatusCode(code).name
            if session.trust is not None and session.trust.refused:
                return SourceError(f"{where}: this source refused the server's certificate: it "
                                   f"{refusal_text(code)} ({name}; trusted: {self.params.security.trusted})")
            own = self.params.security.cert_file
            mine = describe(load_certificates([own])[0]) if own else "none"
            return SourceError(f"{where}: the server refused this source's certificate {own} ({mine}): it "
                               f"{refusal_text(code)} ({name})")
        return exc

    def _failed(self, exc: BaseException) -> None:
        self.connect_failures += 1
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error != self.last_error:  # once per kind of failure, not once per retry
            self.ctx.log.warning("cannot connect to %s: %s (retrying)", self.params.endpoint, error)
            self.ctx.spawn(self._status(False, error), name="status")
        self.last_error = error

    async def _supervise(self) -> None:
        p = self.params
        backoff = Backoff(p.reconnect_min_delay, p.reconnect_max_delay, seed=self.ctx.random.getrandbits(32))
        while True:
            if self.session is None:
                try:
                    await self._open()
                except SourceError:
                    raise  # crashes the component: the supervisor restarts it, the error named
                except Exception as exc:
                    self._failed(exc)
                    await self.ctx.clock.sleep(backoff.next())
                    continue
                backoff.reset()
            session = self.session
            assert session is not None
            reason = await session.lost
            self.session, self.connected = None, False
            self.losses += 1
            self.last_error = reason
            self.ctx.log.warning("lost %s (%s); reconnecting", p.endpoint, reason)
            await session.close()
            await self._status(False, reason)

    async def _status(self, connected: bool, reason: str) -> None:
        session = self.session
        security = self.params.security
        body = {"endpoint": self.params.endpoint, "connected": connected, "reason": reason[:500],
                "subscription_id": session.subscription_id if session and connected else None,
                "monitored_items": len(session.tags) if session and connected else 0,
                "sampling_interval": self.sampling_interval, "connects": self.connects,
                "security": "None" if security.policy == "None" else f"{security.policy}/{security.mode}"}
        try:
            await self.ctx.publish(self.params.status_topic.format(source=_level(self.name), tag=""),
                                   SOURCE_STATUS, body, key=self.name)
        except Exception as exc:  # the status is a courtesy; health() and the log have it too
            self.ctx.log.info("could not publish %s: %s", SOURCE_STATUS, exc)

    # -- data ----------------------------------------------------------------------------
    def _on_data_change(self, tag: Tag, value: ua.DataValue) -> None:
        backlog = self.backlog
        assert backlog is not None
        topic = self.params.topic.format(source=_level(self.name), tag=_level(tag.name))
        try:
            payload = payload_of(tag, value, self.params.endpoint)
        except Exception:  # asyncua would log and drop it; count it and say which tag
            self.unconvertible += 1
            self.ctx.log.exception("data change of %s (%s) could not be converted: %r", tag.name, tag.node_text, value)
            return
        if self._first_change:
            self._first_change = False
            self.ctx.log.info("first data change of subscription %s: %s = %r", self._previous_subscription, tag.name,
                              payload.get("value"))
        if not backlog.add(Pending(topic, tag.name, payload)) and _milestone(backlog.dropped):
            self.ctx.log.warning("backlog full (%d waiting): dropped %d oldest data changes so far", backlog.limit,
                                 backlog.dropped)
        self._publishing.set()

    async def _pump(self) -> None:
        backlog = self.backlog
        assert backlog is not None
        backoff = Backoff(0.1, 5.0)
        while True:
            await self._publishing.wait()
            if not backlog.waiting:
                self._publishing.clear()
                continue
            try:
                await backlog.publish(self._send, self.params.publish_batch)
            except Exception as exc:  # the transport is away: keep the changes, try again
                self.publish_failures += 1
                self.ctx.log.warning("publishing data changes failed (%s); %d waiting", exc, backlog.depth)
                await self.ctx.clock.sleep(backoff.next())
            else:
                backoff.reset()

    async def _send(self, topic: str, payloads: Any, keys: Any) -> object:
        return await self.ctx.publish_batch(topic, DATA_CHANGE, payloads, keys=keys)

    # -- adaptive sampling ----------------------------------------------------------------
    async def _on_depth(self, envelope: Envelope) -> None:
        self.downstream = (int(envelope.payload["depth"]), time.monotonic())

    def depth(self) -> int:
        """The depth the controller sees: this source's backlog, or a fresh downstream report if larger."""
        depth = self.backlog.depth if self.backlog is not None else 0
        if self.downstream is not None and time.monotonic() - self.downstream[1] <= self.params.depth_max_age:
            depth = max(depth, self.downstream[0])
        return depth

    def _check_pressure(self) -> None:
        self.pressure.update(self.depth())

    def _on_pressure(self, old: float, new: float, depth: int) -> None:
        self.sampling_interval = new
        self.ctx.spawn(self._apply_sampling(), name="sampling")

    async def _apply_sampling(self) -> None:
        async with self._sampling_lock:  # switches apply in order; a later one wins
            session, wanted = self.session, self.sampling_interval
            if session is None or not self.connected or session.sampling_interval == wanted:
                return  # the next subscription uses the interval wanted then
            try:
                revised = await session.set_sampling_interval(wanted)
            except NodeError as exc:
                self.ctx.log.error("%s", exc)
                return
            except Exception as exc:  # lost meanwhile: the resubscription applies it
                self.ctx.log.warning("changing the sampling interval to %.2fs failed: %s", wanted, exc)
                return
            self.switches += 1
            self.ctx.log.info("sampling %.2fs on subscription %s (%d items; server revised to %s ms)", wanted,
                              session.subscription_id, len(session.tags), revised)

    # -- life cycle and reporting ----------------------------------------------------------
    async def stop(self) -> None:
        for task in getattr(self, "_tasks", ()):  # no reconnect, no publish loop while stopping
            task.cancel()
        session, self.session = self.session, None
        self.connected = False
        if session is not None:
            await session.close()
        backlog = self.backlog
        if backlog is not None and backlog.waiting:
            try:  # one last try to hand over what arrived; what is left is counted as dropped
                await asyncio.wait_for(backlog.publish(self._send, len(backlog.waiting)), 2.0)
            except Exception as exc:
                self.ctx.log.warning("%d data changes not published at stop: %s", backlog.depth, exc)
            backlog.dropped += backlog.depth
            backlog.waiting.clear()

    def health(self) -> dict[str, Any]:
        session = self.session
        return {"ready": self.connected, "endpoint": self.params.endpoint,
                "subscription_id": session.subscription_id if session else None,
                "monitored_items": len(session.tags) if session else 0,
                "sampling_interval": self.sampling_interval, **self.report()}

    def report(self) -> dict[str, Any]:
        backlog = self.backlog
        if backlog is None:
            return {}
        return {"connected": self.connected, "connects": self.connects, "losses": self.losses,
                "connect_failures": self.connect_failures, "sampling_switches": self.switches,
                "data_changes": backlog.received, "published": backlog.published, "backlog": backlog.depth,
                "dropped": backlog.dropped, "rejected": backlog.rejected,
                "publish_failures": self.publish_failures, "unconvertible": self.unconvertible,
                "last_error": self.last_error}

    def checks(self) -> list[Check]:
        backlog = self.backlog
        if backlog is None:
            return []
        lost = backlog.dropped + self.unconvertible
        return [Check("no OPC UA data change dropped", lost == 0,
                      f"{backlog.dropped} dropped of {backlog.received} (max_backlog {backlog.limit}), "
                      f"{self.unconvertible} not convertible")]

