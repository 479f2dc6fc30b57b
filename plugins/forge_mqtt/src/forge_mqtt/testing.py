"""forge_mqtt's test server: a real Mosquitto broker on 127.0.0.1, and its pytest fixture.

Registered as a pytest plugin through this distribution's ``pytest11`` entry point
(``forge_mqtt = "forge_mqtt.testing"``), so any test run with forge-mqtt installed has the
``mosquitto_server`` fixture: one anonymous broker per test run, shared with every plugin's tests
(``forge_core.testing.shared_server``). Tests that stop, kill or restart a broker start their own
``MosquittoServer`` instead.

Built on core's :class:`~forge_core.testing.ServerProcess` (temp dir, one child process, log,
readiness wait, clean stop; ``stop()``/``start()`` keep the port for outage tests).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from forge_core.testing import ServerError, ServerProcess, shared_server, which_or_skip

__all__ = ["MosquittoServer", "MosquittoTLS", "mosquitto_server", "mqtt_connect_probe"]


@dataclass(frozen=True)
class MosquittoTLS:
    """TLS settings for the Mosquitto listener (PEM file paths)."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    require_certificate: bool = False


class MosquittoServer(ServerProcess):
    """A Mosquitto broker on one listener; ``stop()``/``start()`` reuse the port for outage tests.

    ``users`` (name → password) are hashed into a password file with ``mosquitto_passwd``;
    alternatively pass an existing ``password_file``. Either turns anonymous access off unless
    ``allow_anonymous`` is given explicitly. ``extra_config`` is appended verbatim.
    ``acl_file`` (a Mosquitto ACL file: ``user NAME`` then ``topic read|write|readwrite PATTERN``,
    ``pattern write forge/death/%c``) restricts what each user may publish and subscribe; a refused
    PUBLISH gets PUBACK 0x87 (MQTT 5) or is silently dropped (3.1.1), a refused SUBSCRIBE gets 0x87/0x80.
    ``persistence=True`` keeps sessions, subscriptions and queued QoS 1 messages in ``mosquitto.db``
    in the server's directory across ``stop()``/``start()`` (saved on a clean stop and every second).
    """

    name = "mosquitto"

    def __init__(
        self,
        *,
        port: int | None = None,
        base_dir: Path | None = None,
        allow_anonymous: bool | None = None,
        users: Mapping[str, str] | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: MosquittoTLS | None = None,
        extra_config: str = "",
        persistence: bool = False,
    ) -> None:
        self._binary = which_or_skip("mosquitto")
        super().__init__(port=port, base_dir=base_dir)
        self.users = dict(users or {})
        self.password_file = Path(password_file) if password_file else None
        self.acl_file = Path(acl_file) if acl_file else None
        auth = bool(self.users) or self.password_file is not None
        self.allow_anonymous = (not auth) if allow_anonymous is None else allow_anonymous
        self.tls = tls
        self.extra_config = extra_config
        self.persistence = persistence
        self.config_path = self.dir / "mosquitto.conf"

    def _prepare(self) -> None:
        if self.users:
            tool = which_or_skip("mosquitto_passwd")
            self.password_file = self.dir / "passwords"
            self.password_file.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [tool, "-b", str(self.password_file), user, password],
                    check=True, capture_output=True,
                )  # fmt: skip
        self._write_config()

    def _on_port_change(self) -> None:
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            # Control traffic is small packets: with Nagle on, the broker holds one back until the
            # client's delayed ACK (40 ms on Linux); a plant's command round trip: p50 50 ms, 6 ms without.
            "set_tcp_nodelay true",
            *(
                ["persistence true", f"persistence_location {self.dir}/", "autosave_interval 1"]
                if self.persistence
                else ["persistence false"]
            ),
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # Otherwise mosquitto drops to user 'mosquitto', which cannot read our temp files.
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
            if self.tls.cafile is not None:
                lines.append(f"cafile {self.tls.cafile}")
            lines.append(f"require_certificate {'true' if self.tls.require_certificate else 'false'}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def _command(self) -> list[str]:
        return [self._binary, "-c", str(self.config_path)]


def mqtt_connect_probe(host: str, port: int, client_id: str = "forge-probe", timeout: float = 2.0) -> int:
    """Send an MQTT 3.1.1 CONNECT over a raw socket and return the CONNACK return code (0 = ok).

    Lets tests check a broker without paho-mqtt installed.
    """
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"  # protocol name, level 4, clean session, keepalive 60
    payload = len(cid).to_bytes(2, "big") + cid
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(packet)
        reply = b""
        while len(reply) < 4:
            chunk = s.recv(4 - len(reply))
            if not chunk:
                raise ServerError(f"broker at {host}:{port} closed the connection before CONNACK")
            reply += chunk
        s.sendall(b"\xe0\x00")  # DISCONNECT
    if reply[0] != 0x20:
        raise ServerError(f"expected CONNACK from {host}:{port}, got {reply!r}")
    return reply[3]


@pytest.fixture(scope="session")
def mosquitto_server(pytestconfig: pytest.Config) -> MosquittoServer:
    """One anonymous Mosquitto broker for the whole test session."""
    return shared_server(pytestconfig, "mosquitto", MosquittoServer)
