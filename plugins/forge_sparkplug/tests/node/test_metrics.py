"""The edge node's metric table: aliases, births, report by exception."""

from __future__ import annotations

import pytest

from forge_sparkplug.codec import DatatypeError
from forge_sparkplug.node import BdSeq, MetricTable, Seq, UnknownMetric
from forge_sparkplug.settings import DeviceSpec, EdgeNodeParams, MetricSpec


def _table(aliases: bool = True) -> MetricTable:
    return MetricTable([MetricSpec(name="Uptime", datatype="Int64", initial=0)],
                       {"press": DeviceSpec(metrics=[MetricSpec(name="Temp", datatype="Double", deadband=0.5),
                                                     MetricSpec(name="State", datatype="String", initial="idle")])},
                       aliases=aliases, now_ms=100)


def test_aliases_are_unique_across_the_node_and_its_devices() -> None:
    table = _table()
    assert [(e.device, e.name, e.alias) for e in table.entries.values()] == [
        (None, "Uptime", 1), ("press", "Temp", 2), ("press", "State", 3)]


def test_a_birth_has_every_metric_with_name_alias_datatype_and_value_or_null() -> None:
    births = {m.name: m for m in _table().birth("press")}
    assert births["State"].value == "idle" and births["State"].datatype == 12 and births["State"].alias == 3
    assert births["Temp"].is_null and births["Temp"].value is None


def test_report_by_exception_with_a_deadband() -> None:
    table = _table()
    assert [e.name for e in table.apply("press", [{"name": "Temp", "value": 20.0}], 1)] == ["Temp"]
    assert table.apply("press", [{"name": "Temp", "value": 20.4}], 2) == []  # within 0.5 of the last reported
    assert [e.value for e in table.apply("press", [{"name": "Temp", "value": 20.6}], 3)] == [20.6]
    assert table.apply("press", [{"name": "State", "value": "idle"}], 4) == []  # unchanged
    assert table.entries[("press", "Temp")].value == 20.6


def test_unknown_metrics_and_bad_values_change_nothing() -> None:
    table = _table()
    with pytest.raises(UnknownMetric, match="'Pressure'"):
        table.apply("press", [{"name": "Temp", "value": 1.0}, {"name": "Pressure", "value": 1.0}], 1)
    with pytest.raises(UnknownMetric, match="device 'oven'"):
        table.apply("oven", [], 1)
    with pytest.raises(DatatypeError, match="'Uptime'"):
        table.apply(None, [{"name": "Uptime", "value": "soon"}], 1)
    assert table.entries[("press", "Temp")].value is None


def test_data_metrics_are_by_alias_without_name_when_aliases_are_on() -> None:
    table = _table()
    (metric,) = table.data(table.apply(None, [{"name": "Uptime", "value": 5}], 7))
    assert (metric.name, metric.alias, metric.value, metric.timestamp) == (None, 1, 5, 7)
    plain = _table(aliases=False)
    (metric,) = plain.data(plain.apply(None, [{"name": "Uptime", "value": 5}], 7))
    assert (metric.name, metric.alias, metric.datatype) == ("Uptime", None, 4)


def test_seq_wraps_after_255_and_the_birth_is_0() -> None:
    seq = Seq()
    assert seq.birth() == 0
    assert [seq.next() for _ in range(256)][-2:] == [255, 0]


def test_bdseq_starts_at_0_goes_up_per_connect_wraps_and_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "n.bdseq"
    first = BdSeq(path)
    assert [first.next_connect() for _ in range(3)] == [0, 1, 2]
    assert BdSeq(path).next_connect() == 3
    path.write_text("255")
    assert BdSeq(path).next_connect() == 0


def test_settings_refuse_reserved_names_same_names_ignoring_case_and_bad_ids() -> None:
    with pytest.raises(Exception, match="reserved"):
        MetricSpec(name="bdSeq", datatype="Int64")
    with pytest.raises(Exception, match="ignoring case"):
        EdgeNodeParams.load({"group": "g", "node": "n", "metrics": [{"name": "a", "datatype": "Int8"},
                                                                      {"name": "A", "datatype": "Int8"}]})
    with pytest.raises(Exception, match="without"):
        EdgeNodeParams.load({"group": "g/1", "node": "n"})
    with pytest.raises(Exception, match="deadband"):
        MetricSpec(name="s", datatype="String", deadband=1)
    assert MetricSpec(name="t", datatype="double").datatype == "Double"


def test_a_metric_more_than_once_in_an_update_reports_each_value_in_order() -> None:
    table = _table()
    changed = table.apply("press", [{"name": "Temp", "value": 20.0, "timestamp": 10},
                                    {"name": "State", "value": "run", "timestamp": 10},
                                    {"name": "Temp", "value": 20.2, "timestamp": 20},  # within the deadband of 20.0
                                    {"name": "Temp", "value": 21.0, "timestamp": 30},
                                    {"name": "State", "value": "idle", "timestamp": 30}], 40)
    assert [(e.name, e.value, e.timestamp) for e in changed] == [
        ("Temp", 20.0, 10), ("State", "run", 10), ("Temp", 21.0, 30), ("State", "idle", 30)]
    assert changed[2] is table.entries[("press", "Temp")] and changed[0] is not changed[2]  # the earlier: a copy
    assert table.entries[("press", "Temp")].reported == 21.0 and table.entries[("press", "State")].value == "idle"


def test_with_no_deadband_any_difference_of_a_number_is_reported_and_an_equal_one_is_not() -> None:
    table = MetricTable([MetricSpec(name="Count", datatype="UInt64"), MetricSpec(name="Speed", datatype="Double")],
                        {}, aliases=True, now_ms=0)

    def reported(name: str, value: object) -> bool:
        return bool(table.apply(None, [{"name": name, "value": value}], 1))

    assert reported("Count", 2**63) and not reported("Count", 2**63)
    assert reported("Count", 2**63 + 1)  # the same float, not the same number
    assert reported("Speed", 1) and not reported("Speed", 1.0)  # 1 and 1.0 are the same number
    assert reported("Speed", float("nan")) and reported("Speed", float("nan"))  # NaN equals nothing, itself neither
    assert reported("Speed", float("inf")) and not reported("Speed", float("inf"))
    assert reported("Speed", None) and not reported("Speed", None) and reported("Speed", 0.0)
