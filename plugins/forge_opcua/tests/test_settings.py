"""The params models: node id syntax, security completeness, watermarks, simulator machines."""

from __future__ import annotations

import pytest
from forge_core import SettingsError

from forge_opcua import ClientSecurity, PlcSimulatorParams, ServerSecurity, SourceParams


def load(**params):
    return SourceParams.load({"endpoint": "opc.tcp://127.0.0.1:4840/", **params}, where="components.plc.params")


def test_node_id_syntax_is_checked_and_named() -> None:
    assert load(nodes=["ns=2;s=M1.State", {"node_id": "i=2258", "tag": "time"}]).node_specs()[1].tag == "time"
    with pytest.raises(SettingsError) as caught:
        load(nodes=["ns=two;s=M1.State"])
    text = str(caught.value)
    assert "components.plc.params.nodes" in text and "'ns=two;s=M1.State' is not an OPC UA node id" in text
    with pytest.raises(SettingsError, match="'Machines' is not an OPC UA node id"):
        load(browse=[{"root": "Machines"}])


def test_something_to_subscribe_to_and_one_browse_root() -> None:
    with pytest.raises(SettingsError, match="nothing to subscribe to"):
        load()
    with pytest.raises(SettingsError, match="exactly one of root"):
        load(browse=[{"root": "ns=2;s=Machines", "path": "Machines"}])
    assert load(browse=[{"path": "Machines"}]).browse[0].max_depth == 4


def test_endpoint_topic_and_watermarks() -> None:
    with pytest.raises(SettingsError, match="endpoint"):
        SourceParams.load({"endpoint": "http://x", "nodes": ["i=2258"]})
    with pytest.raises(SettingsError, match="may only use"):
        load(nodes=["i=2258"], topic="opcua/{machine}")
    with pytest.raises(SettingsError, match=r"low_watermark \(600\) must be below"):
        load(nodes=["i=2258"], high_watermark=500, low_watermark=600)
    params = load(nodes=["i=2258"], high_watermark=20, settle=1.0)
    assert params.backpressure_overrides() == {"high": 20, "settle": 1.0}


def test_security_needs_certificates_and_trust() -> None:
    assert ClientSecurity().policy == "None"
    with pytest.raises(SettingsError, match="needs cert_file and key_file"):
        ClientSecurity.load({"policy": "Basic256Sha256"})
    with pytest.raises(SettingsError, match="needs trusted"):
        ClientSecurity.load({"policy": "Basic256Sha256", "cert_file": "c.pem", "key_file": "k.pem"})
    assert ClientSecurity.load({"policy": "Basic256Sha256", "cert_file": "c.pem", "key_file": "k.pem",
                                "verify_server": False}).mode == "SignAndEncrypt"
    with pytest.raises(SettingsError, match="need trusted"):
        ServerSecurity.load({"policies": ["Basic256Sha256_SignAndEncrypt"], "cert_file": "c", "key_file": "k"})


def test_simulator_machines() -> None:
    assert PlcSimulatorParams().machines == ["M1", "M2", "M3"]
    with pytest.raises(SettingsError, match="may not be empty or contain"):
        PlcSimulatorParams.load({"machines": ["M.1"]})
    with pytest.raises(SettingsError, match="not in machines"):
        PlcSimulatorParams.load({"cycle_times": {"M9": 2.0}})
