"""forge_mqtt.testing: the Mosquitto test server starts, answers CONNECT, keeps its port across
stop/start, refuses anonymous clients when it has users, and reports a broken config with its log."""

from __future__ import annotations

import pytest
from forge_core.testing import ServerError, port_free

from forge_mqtt.testing import MosquittoServer, mqtt_connect_probe

pytestmark = pytest.mark.servers




def test_fixture_comes_from_the_plugins_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("forge_mqtt"), "forge_mqtt.testing not loaded through pytest11"


def test_mosquitto_connack(mosquitto_server: MosquittoServer) -> None:
    assert mqtt_connect_probe(mosquitto_server.host, mosquitto_server.port) == 0


def test_mosquitto_stop_start_same_port() -> None:
    with MosquittoServer() as broker:
        port = broker.port
        assert mqtt_connect_probe(broker.host, port) == 0
        broker.stop()
        assert port_free(port)
        with pytest.raises(OSError):
            mqtt_connect_probe(broker.host, port, timeout=0.5)
        broker.start()
        assert broker.port == port
        assert mqtt_connect_probe(broker.host, port) == 0
    assert port_free(port)


def test_mosquitto_password_file_refuses_anonymous() -> None:
    with MosquittoServer(users={"plant": "s3cret"}) as broker:
        assert not broker.allow_anonymous
        assert broker.password_file is not None and broker.password_file.exists()
        # CONNACK return code 5: not authorised (no credentials were sent)
        assert mqtt_connect_probe(broker.host, broker.port) == 5


def test_broken_config_raises_with_log() -> None:
    broker = MosquittoServer(extra_config="this_is_not_an_option 1")
    try:
        # "exited": the broker's exit is noticed and reported with its log, not waited out as a
        # start that never came (which is a different error)
        with pytest.raises(ServerError, match="mosquitto exited") as info:
            broker.start()
        assert "this_is_not_an_option" in str(info.value) or "Error" in str(info.value)
    finally:
        broker.close()


def test_mosquitto_acl_file_and_persistence_are_configured(tmp_path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("user plant\ntopic write heartbeats\n")
    server = MosquittoServer(users={"plant": "s3cret"}, acl_file=acl, persistence=True, base_dir=tmp_path / "b")
    server._prepare()
    config = server.config_path.read_text()
    assert f"acl_file {acl}" in config and "allow_anonymous false" in config
    assert "persistence true" in config and f"persistence_location {server.dir}/" in config
