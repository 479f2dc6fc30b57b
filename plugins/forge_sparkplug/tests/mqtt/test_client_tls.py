"""SparkplugClient over mutual TLS (the settings of forge_mqtt's MqttSettings): a certificate the broker
verifies connects; a refused one is logged once with the broker's TLS alert while paho keeps retrying."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from forge_mqtt import MqttSettings
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer, MosquittoTLS

from forge_sparkplug.mqtt.client import SparkplugClient

pytestmark = pytest.mark.servers


async def _nothing() -> None:
    return None


async def _ignore(batch: object) -> None:
    return None


def client_for(broker: MosquittoServer, pki: Pki, folder: str, cn: str) -> SparkplugClient:
    pair = getattr(pki, folder)(cn)
    settings = MqttSettings(host=broker.host, port=broker.port, ca_file=str(pki.ca.cert), cert_file=str(pair.cert),
                            key_file=str(pair.key), reconnect_min_delay=1, reconnect_max_delay=1)
    return SparkplugClient(settings, cn, name=f"spb-{folder}", will=lambda: None, on_connect=_nothing,
                           on_disconnect=_nothing, on_messages=_ignore)


def count_attempts(client: SparkplugClient) -> list[float]:
    """The times paho began a connect of ``client`` (its on_pre_connect, wrapped)."""
    attempts: list[float] = []
    inner = client.client.on_pre_connect

    def counted(paho: Any, userdata: Any) -> None:
        attempts.append(time.monotonic())
        if inner is not None:
            inner(paho, userdata)

    client.client.on_pre_connect = counted
    return attempts


def test_mutual_tls_connects_and_a_refused_certificate_is_logged_once(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    pki = Pki.create(tmp_path / "pki", ["edge-1"], expired=["edge-1"])

    async def body() -> None:
        with MosquittoServer(tls=MosquittoTLS.mutual(pki), use_username_as_clientid=True,
                             base_dir=tmp_path / "b") as broker:
            good, bad = client_for(broker, pki, "client", "edge-1"), client_for(broker, pki, "expired", "edge-1")
            attempts = count_attempts(bad)
            with caplog.at_level(logging.WARNING, logger="forge.sparkplug.mqtt"):
                good.start()
                bad.start()
                # four attempts begun: the first three refused, each alert read (logged or not) before the next
                deadline = time.monotonic() + 30
                while not (good.connected and len(attempts) >= 4 and "certificate expired" in caplog.text):
                    assert time.monotonic() < deadline, \
                        f"connected {good.connected}, attempts {len(attempts)}, log {caplog.text!r}"
                    await asyncio.sleep(0.05)
            assert good.connected and not bad.connected and bad.connects == 0
            alerts = [r.getMessage() for r in caplog.records if "alert" in r.getMessage()]
            assert len(alerts) == 1, alerts
            assert "'sslv3 alert certificate expired'" in alerts[0] and str(pki.expired("edge-1").cert) in alerts[0]
            await good.stop()
            await bad.stop()

    asyncio.run(body())
