"""forge_sparkplug.host.state: what a host knows of a node and its devices, without I/O."""

from __future__ import annotations

from forge_sparkplug.codec.payload import Metric, Payload
from forge_sparkplug.host.state import BAD, GOOD, STALE, NodeState

DOUBLE, INT64 = 10, 4


def _birth(bdseq: int = 3) -> Payload:
    return Payload(
        timestamp=1,
        seq=0,
        metrics=[
            Metric(name="bdSeq", datatype=INT64, value=bdseq),
            Metric(name="Temperature", alias=1, datatype=DOUBLE, value=20.5),
        ],
    )


def test_a_birth_learns_metrics_aliases_and_the_bdseq_a_death_must_match() -> None:
    node = NodeState("line1", "edge-1")
    assert node.birth(_birth(3), now_ms=100) == 3
    assert node.online and node.last_seq == 0 and "bdSeq" not in node.metrics
    assert node.aliases == {1: (None, "Temperature")}
    assert node.metrics["Temperature"].quality == GOOD

    assert node.death(4, now_ms=200) is False  # a stale NDEATH of an earlier session
    assert node.online
    assert node.death(3, now_ms=300) is True
    assert not node.online and node.metrics["Temperature"].quality == STALE


def test_data_by_alias_updates_live_values_and_historical_ones_leave_them() -> None:
    node = NodeState("line1", "edge-1")
    node.birth(_birth(), now_ms=0)
    known, unknown = node.apply(
        None, Payload(seq=1, metrics=[Metric(alias=1, value=21.0, timestamp=5), Metric(alias=99, value=1.0)])
    )
    assert unknown == 1 and [s.name for s, _ in known] == ["Temperature"]
    assert node.metrics["Temperature"].value == 21.0

    node.apply(None, Payload(seq=2, metrics=[Metric(alias=1, value=7.0, timestamp=1, is_historical=True)]))
    assert node.metrics["Temperature"].value == 21.0  # a replayed sample does not move the live value back


def test_a_device_death_marks_its_metrics_stale_and_unsupported_values_are_bad() -> None:
    node = NodeState("line1", "edge-1")
    node.birth(_birth(), now_ms=0)
    node.device_birth(
        "press",
        Payload(
            seq=1,
            metrics=[
                Metric(name="Count", alias=2, datatype=INT64, value=0),
                Metric(name="Blob", alias=3, datatype=0, value=None, unsupported=True),
            ],
        ),
        now_ms=1,
    )
    assert node.devices["press"].metrics["Blob"].quality == BAD
    assert node.resolve("press", Metric(alias=2)) is node.devices["press"].metrics["Count"]
    assert node.resolve(None, Metric(alias=2)) is None  # the alias belongs to the device, not the node

    node.device_death("press", timestamp=9)
    press = node.snapshot()["devices"]["press"]
    assert press["online"] is False and press["metrics"]["Count"]["quality"] == STALE


def test_datatype_of_follows_every_birth() -> None:
    node = NodeState("g", "n")
    node.birth(
        Payload(timestamp=0, seq=0, metrics=[Metric(name="bdSeq", value=1), Metric(name="T", alias=1, datatype=9)]), 0
    )
    assert node.datatype_of() == {1: 9}
    node.device_birth("M1", Payload(timestamp=0, seq=1, metrics=[Metric(name="Count", alias=2, datatype=7)]), 0)
    assert node.datatype_of() == {1: 9, 2: 7}, "a DBIRTH's aliases join"
    node.device_birth("M1", Payload(timestamp=0, seq=2, metrics=[Metric(name="Count", alias=3, datatype=4)]), 0)
    assert node.datatype_of() == {1: 9, 3: 4}, "a device's rebirth replaces its aliases"
    node.birth(
        Payload(timestamp=0, seq=0, metrics=[Metric(name="bdSeq", value=2), Metric(name="T", alias=1, datatype=10)]), 0
    )
    assert node.datatype_of() == {1: 10}, "a new NBIRTH starts over"
