"""Status codes to quality; OPC UA values to JSON."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from asyncua import ua

from forge_opcua.client.convert import Tag, json_value, payload_of, quality_of


def test_quality_is_the_severity_of_the_status_code() -> None:
    assert quality_of(None) == "good"
    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) == "good"
    assert quality_of(ua.StatusCode(ua.StatusCodes.GoodClamped)) == "good"
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)) == "uncertain"
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainSensorNotAccurate)) == "uncertain"
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadSensorFailure)) == "bad"
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadCommunicationError)) == "bad"
    assert quality_of(0xC0000000) == "bad"  # severity 11 is reserved, read as bad


def test_values_become_json() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert json_value(when) == 1_704_067_200.0
    assert json_value(dt.datetime(2024, 1, 1)) == 1_704_067_200.0  # naive means UTC
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value([1.5, math.nan, -math.inf]) == [1.5, "NaN", "-Infinity"]
    assert json_value(ua.LocalizedText("running")) == "running"
    assert json_value(ua.NodeId("M1", 2)) == "ns=2;s=M1"
    assert json_value(ua.QualifiedName("State", 2)) == "2:State"
    assert json_value(ua.StatusCode(ua.StatusCodes.BadTimeout)) == "BadTimeout"
    assert json_value(ua.MessageSecurityMode.SignAndEncrypt) == 3
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value(ua.Range(0.0, 10.0)) == {"Low": 0.0, "High": 10.0}


def test_payload_carries_value_status_quality_and_timestamps() -> None:
    source = dt.datetime(2024, 1, 1, 0, 0, 1, 500000, tzinfo=dt.UTC)
    data = ua.DataValue(ua.Variant(7, ua.VariantType.UInt32), ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
                        SourceTimestamp=source, ServerTimestamp=source + dt.timedelta(milliseconds=2))
    tag = Tag(ua.NodeId("M1.GoodCount", 2), "M1/GoodCount", 7)
    payload = payload_of(tag, data, "opc.tcp://127.0.0.1:4840/")
    assert payload == {
        "node_id": "ns=2;s=M1.GoodCount", "tag": "M1/GoodCount", "value": 7, "data_type": "UInt32",
        "status": "UncertainLastUsableValue", "status_code": ua.StatusCodes.UncertainLastUsableValue,
        "quality": "uncertain", "source_timestamp": 1_704_067_201.5, "server_timestamp": 1_704_067_201.502,
        "endpoint": "opc.tcp://127.0.0.1:4840/"}
    empty = payload_of(tag, ua.DataValue(None, ua.StatusCode(ua.StatusCodes.BadSensorFailure)), "e")
    assert (empty["value"], empty["data_type"], empty["quality"]) == (None, None, "bad")
    assert empty["source_timestamp"] is None
