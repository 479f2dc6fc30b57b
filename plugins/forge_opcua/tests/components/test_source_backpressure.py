"""Adaptive sampling: the backpressure tactic switches the sampling interval 250 ms -> 2,000 ms and back
by modifying the monitored items in place; the subscription and its items survive the switch and the
server answers with the new revised sampling interval."""

from __future__ import annotations

import datetime as dt

import pytest
from asyncua import ua
from forge_core import hookimpl

pytestmark = pytest.mark.servers


class Switches:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, int]] = []

    @hookimpl
    def forge_backpressure_changed(self, component: str, old_interval: float, new_interval: float,
                                   depth: int) -> None:
        self.calls.append((component, old_interval, new_interval, depth))


def test_a_deep_downstream_queue_slows_sampling_without_dropping_the_subscription(kit, tmp_path) -> None:
    hooks = Switches()

    async def scenario() -> None:
        async with kit.plc_server() as plc:
            params = {"browse": [{"path": "Machines"}], "depth_topic": "edge/outbox/depth",
                      "high_watermark": 20, "low_watermark": 10, "settle": 1.0, "check_every": 0.1}
            async with kit.real_plant(tmp_path, {"src": kit.source(plc.endpoint, **params)}, hooks=hooks) as plant:
                source = plant.component("src")
                await plant.until(lambda: source.connected, what="subscribed")
                session = source.session
                subscription, items = session.subscription_id, dict(session.item_ids)
                assert len(items) == 12 and session.sampling_interval == 0.25
                assert list(plc.subscriptions()) == [subscription]

                await plant.publish("edge/outbox/depth", "opcua.queue_depth", {"depth": 50, "queue": "outbox"})
                await plant.until(lambda: source.switches == 1, what="the switch to slow sampling")
                assert source.sampling_interval == 2.0
                assert set(session.revised_sampling.values()) == {2000.0}  # the server's answer
                assert source.session is session and session.subscription_id == subscription
                assert session.item_ids == items
                assert plc.subscriptions() == {subscription: {**plc.subscriptions()[subscription],
                                                              "monitored_items": 12}}
                assert hooks.calls == [("src", 0.25, 2.0, 50)]

                plant.seen.clear()  # data still flows on the same subscription
                value = ua.DataValue(ua.Variant(42, ua.VariantType.UInt32), ServerTimestamp=dt.datetime.now(dt.UTC))
                await plc.server.write_attribute_value(plc._nodes["M1.TotalCount"], value)
                await plant.until(lambda: plant.messages("opcua.data_change", lambda m: m["value"] == 42),
                                  what="a change after the switch")

                await plant.publish("edge/outbox/depth", "opcua.queue_depth", {"depth": 0})
                await plant.until(lambda: source.switches == 2, what="back to fast after settling")
                assert source.sampling_interval == 0.25 and set(session.revised_sampling.values()) == {250.0}
                assert session.subscription_id == subscription and session.item_ids == items
                assert list(plc.subscriptions()) == [subscription]
                assert [c[1:3] for c in hooks.calls] == [(0.25, 2.0), (2.0, 0.25)]
                assert source.connects == 1 and not plant.messages("opcua.source_status",
                                                                   lambda m: m["reason"] == "resubscribed")

    kit.run(scenario())


def test_a_resubscription_keeps_the_slow_interval(kit, tmp_path) -> None:
    """Switched to slow while subscribed, then the connection is lost: the new subscription samples slow."""
    async def scenario() -> None:
        async with kit.plc_server() as plc:
            params = {"nodes": [kit.node("M1.State")], "depth_topic": "depth", "high_watermark": 5,
                      "low_watermark": 1, "settle": 60.0, "check_every": 0.1}
            async with kit.real_plant(tmp_path, {"src": kit.source(plc.endpoint, **params)}) as plant:
                source = plant.component("src")
                await plant.until(lambda: source.connected, what="subscribed")
                await plant.publish("depth", "opcua.queue_depth", {"depth": 9})
                await plant.until(lambda: source.switches == 1, what="slow")
                source.session.mark_lost("test: connection cut")
                await plant.until(lambda: source.connects == 2 and source.connected, what="resubscribed")
                assert source.session.sampling_interval == 2.0
                assert len(plc.subscriptions()) == 1

    kit.run(scenario())
