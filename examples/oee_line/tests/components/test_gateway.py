"""oee_line.gateway: an OPC UA tag names the machine (Sparkplug device) and the metric."""

from __future__ import annotations

from oee_line.components.gateway import split_tag


def test_browsed_and_given_tags_split_into_machine_and_metric() -> None:
    assert split_tag("M1/State", "/.") == ("M1", "State")
    assert split_tag("M1.GoodCount", "/.") == ("M1", "GoodCount")
    assert split_tag("Uptime", "/.") is None
    assert split_tag("/State", "/.") is None
