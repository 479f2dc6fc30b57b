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
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from forge_core.testing import ServerError, ServerProcess, shared_server, which_or_skip

if TYPE_CHECKING:
    from forge_mqtt.pki import Pki

__all__ = ["MosquittoServer", "MosquittoTLS", "SelfConnectingSockets", "mosquitto_server", "mqtt_connect_probe"]


@dataclass(frozen=True)
class MosquittoTLS:
    """TLS settings for the Mosquitto listener (PEM file paths), named as in mosquitto.conf.

    ``require_certificate``: clients must present a certificate signed by ``cafile`` (mutual TLS).
    ``use_identity_as_username``: the certificate's CN becomes the client's user name (``%u`` in ACL
    patterns, ``user`` blocks); passwords are then not asked for, and not checked.
    ``crlfile``: a PEM certificate revocation list of ``cafile``'s CA; a listed certificate is refused,
    and so is every client once the list is past its next-update time. Reread on :meth:`MosquittoServer.reload`.
    ``tls_version``: the oldest TLS version accepted, ``tlsv1.2`` or ``tlsv1.3`` (Mosquitto 2.0 alone would accept 1.1).
    """

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    require_certificate: bool = False
    use_identity_as_username: bool = False
    crlfile: Path | None = None
    tls_version: str | None = None

    def __post_init__(self) -> None:
        if self.use_identity_as_username and not (self.require_certificate and self.cafile):
            raise ValueError("MosquittoTLS: use_identity_as_username needs require_certificate and a cafile "
                             "(the user name is the CN of a certificate the broker verified)")
        if self.crlfile is not None and not self.cafile:
            raise ValueError("MosquittoTLS: crlfile needs the cafile of the CA that signed it")

    @classmethod
    def mutual(cls, pki: Pki, *, crl: bool = True, tls_version: str | None = None) -> MosquittoTLS:
        """Mutual TLS from a :class:`forge_mqtt.pki.Pki`: its broker certificate, its CA, client
        certificates required, the CN as user name, and its CRL (unless ``crl`` is False)."""
        return cls(certfile=pki.server.cert, keyfile=pki.server.key, cafile=pki.ca.cert, require_certificate=True,
                   use_identity_as_username=True, crlfile=pki.crl if crl else None, tls_version=tls_version)


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
    ``tls`` makes the listener TLS (:class:`MosquittoTLS`; ``MosquittoTLS.mutual(pki)`` for mTLS with the
    CN as user name, which also turns anonymous access off). ``use_username_as_clientid=True`` replaces
    the client id a client sends with its user name (with mTLS: its certificate's CN), so no client can
    connect under another's id, take its session over or set off its Will (docs/security.md).
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
        use_username_as_clientid: bool = False,
        extra_config: str = "",
        persistence: bool = False,
    ) -> None:
        self._binary = which_or_skip("mosquitto")
        super().__init__(port=port, base_dir=base_dir)
        self.users = dict(users or {})
        self.password_file = Path(password_file) if password_file else None
        self.acl_file = Path(acl_file) if acl_file else None
        identity = tls is not None and tls.use_identity_as_username
        auth = bool(self.users) or self.password_file is not None or identity
        self.allow_anonymous = (not auth) if allow_anonymous is None else allow_anonymous
        self.tls = tls
        self.use_username_as_clientid = use_username_as_clientid
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
            if self.tls.use_identity_as_username:
                lines.append("use_identity_as_username true")
            if self.tls.crlfile is not None:
                lines.append(f"crlfile {self.tls.crlfile}")
            if self.tls.tls_version is not None:
                lines.append(f"tls_version {self.tls.tls_version}")
        if self.use_username_as_clientid:
            lines.append("use_username_as_clientid true")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def _command(self) -> list[str]:
        return [self._binary, "-c", str(self.config_path)]

    def reload(self, timeout: float = 10.0) -> None:
        """SIGHUP, as an operator reloads Mosquitto: it rereads the ACL and password files and its TLS
        files (certificate, key, CA, CRL) for new connections; connected clients keep their TLS session.
        Returns once the broker has logged the reload (it then serves the next connection with it)."""
        if self.proc is None or not self.running:
            raise ServerError(f"mosquitto on {self.host}:{self.port} is not running: nothing to reload")
        before = self._log_text().count("Reloading config.")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._log_text().count("Reloading config.") <= before:
            if time.monotonic() > deadline:
                raise ServerError(f"mosquitto on {self.host}:{self.port} did not log a reload within {timeout:g}s; "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.02)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


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


class SelfConnectingSockets:
    """A stand-in for paho's ``socket`` module (``monkeypatch.setattr(paho.mqtt.client, "socket", ...)``)
    whose ``create_connection`` (paho's TCP connect) connects to itself for the first ``times`` connects
    to ``port``: a real kernel self-connection (bind to the broker's own address, then connect to it),
    which is what the kernel does by chance when it hands a client retrying a local broker's port from
    the ephemeral range that very port. Everything else passes through to :mod:`socket`."""

    def __init__(self, port: int, times: int) -> None:
        self.port, self.times = port, times
        #: the source address of each self-connection made (each one is the broker's own address)
        self.made: list[tuple[str, int]] = []
        self._create = socket.create_connection

    def create_connection(self, address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if address[1] == self.port and len(self.made) < self.times:
            sock = socket.socket()
            # SO_REUSEADDR: the broker's side of an earlier connection may be in TIME_WAIT on the port; the
            # kernel's own pick of a source port looks at the whole address pair, so it would not mind either
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.connect(("127.0.0.1", self.port))
            self.made.append(sock.getsockname())
            return sock
        return self._create(address, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)
