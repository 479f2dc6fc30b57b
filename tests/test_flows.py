"""Component flow declarations (forge_core.flows) resolved against params, without running."""

from __future__ import annotations

import pytest

from forge_core import Component, Publishes, Settings, Subscribes, subscribe
from forge_core.flows import FlowError


class Topics(Settings):
    created: str = "orders/created"
    extra: list[str] = ["a/+", "b/#"]


class Params(Settings):
    alert_topic: str = "alerts/{source}"
    optional_topic: str | None = None
    topics: Topics = Topics()
    bridge_to: str = "kafka"
    beat_types: list[str] | None = None


class Declared(Component):
    Params = Params
    publishes = ("test.bare", Publishes("test.alert", param="alert_topic", key="source"),
                Publishes(("test.a", "test.b"), topic="fixed/topic", transport_param="bridge_to"))
    subscribes = (Subscribes("test.order", param="topics.created", shared=False),
                  Subscribes("test.any", param="topics.extra"),
                  Subscribes("test.never", param="optional_topic"),
                  Subscribes((), topic="beats/+", types_param="beat_types"))

    @subscribe("commands/+", types=["test.command"])
    async def on_command(self, envelope):
        pass


def test_flows_resolve_literal_param_list_and_decorated_topics():
    flows = Declared.flows(Params())
    by_topic = {f.topic: f for f in flows}
    assert by_topic["alerts/{source}"].action == "send"
    assert by_topic["alerts/{source}"].key == "source"
    assert by_topic["fixed/topic"].types == ("test.a", "test.b")
    assert by_topic["fixed/topic"].transport == "kafka"
    assert by_topic["orders/created"].action == "receive" and by_topic["orders/created"].shared is False
    assert {"a/+", "b/#"} <= set(by_topic)
    assert by_topic["commands/+"].origin == "@subscribe on on_command()"
    assert "test.never" not in {t for f in flows for t in f.types}  # an unset topic param: no flow
    assert Declared.published_types() == ["test.bare", "test.alert", "test.a", "test.b"]
    assert by_topic["beats/+"].types == ()  # any type
    assert next(f for f in Declared.flows(Params(beat_types=["t.beat"])) if f.topic == "beats/+").types == ("t.beat",)


def test_a_dict_of_params_resolves_too():
    flows = Declared.flows({"alert_topic": "x", "optional_topic": "y", "topics": {"created": "c", "extra": []},
                            "bridge_to": "", "beat_types": None})
    assert {f.topic for f in flows} == {"x", "y", "c", "fixed/topic", "commands/+", "beats/+"}
    assert next(f for f in flows if f.topic == "fixed/topic").transport is None


def test_a_missing_param_names_it():
    with pytest.raises(FlowError, match=r"param 'topics\.created': no 'topics'"):
        Declared.flows({"alert_topic": "x", "bridge_to": "kafka", "optional_topic": None, "beat_types": None})


def test_declarations_are_checked_at_class_definition():
    with pytest.raises(TypeError, match=r"exactly one of topic= .* or param="):
        Publishes("t.x")
    with pytest.raises(TypeError, match="message types"):
        Subscribes(("",), topic="x")
    with pytest.raises(TypeError, match=r"subscribes: a tuple of Subscribes, got Publishes"):
        type("Bad", (Component,), {"subscribes": (Publishes("t.x", topic="x"),)})
