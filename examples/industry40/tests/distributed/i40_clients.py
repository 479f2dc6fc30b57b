"""The distributed plant's plain users, without Forge: a paho wiretap on ``#``, curl against the PMS
replicas (good and malformed order bodies) and a ten-line grpcio client reporting statuses; what they
did and got is kept in a ``User`` for the tests."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

paho = pytest.importorskip("paho.mqtt.client")
pytest.importorskip("forge_sched")

PROTO = Path(__import__("forge_sched").__file__).parent / "proto" / "factory_status.proto"
PLAIN_CLIENT = '''
import sys, grpc, factory_status_pb2 as pb, factory_status_pb2_grpc as rpc
stub = rpc.FactoryStatusServiceStub(grpc.insecure_channel(sys.argv[1]))
new = sys.argv[2]  # a factory id no attempt used before: this one's report must add it
for factory, status, epoch in [("9", pb.UP, 5), (new, pb.DOWN, 5), ("9", pb.UP, 4), ("9", 0, 6), ("", pb.UP, 6)]:
    try:
        reply = stub.ReportFactoryStatus(pb.FactoryStatusUpdate(factory_id=factory, status=status, reason="plain"),
                                         metadata=[("forge-epoch", str(epoch)), ("forge-lease", "plain")], timeout=10)
        print("OK", reply.accepted, reply.detail)
    except grpc.RpcError as e:
        print(e.code().name, e.details())
'''



class Wiretap:
    """A plain MQTT 5 client on ``#``: every body as the broker delivers it, with its arrival time."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: list[tuple[float, str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="wiretap", protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((time.time(), msg.topic, bytes(msg.payload)))

    def json(self, pattern: str) -> list[tuple[float, str, dict[str, Any]]]:
        """(time, topic, body) of the JSON objects on topics matching the regex ``pattern``."""
        out = []
        with self.lock:
            messages = list(self.messages)
        for t, topic, body in messages:
            if re.fullmatch(pattern, topic):
                with contextlib.suppress(ValueError):
                    data = json.loads(body)
                    if isinstance(data, dict):
                        out.append((t, topic, data))
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pms_endpoints(plant: Path) -> list[tuple[str, str]]:
    """(REST URL, gRPC target) of each PMS process's newest life, from what ``forge run`` printed in its log."""
    found = []
    for log in sorted((plant / ".forge" / "processes").glob("pms-*.log")):
        text = log.read_text(errors="replace").split("--- ")[-1]  # the newest life
        http = re.findall(r"HTTP on (http://[\d.]+:\d+)", text)
        grpc = re.findall(r"gRPC on ([\d.]+:\d+)", text)
        if http and grpc:
            found.append((http[-1], grpc[-1]))
    return found


def curl(*args: str) -> tuple[int, Any]:
    """``curl`` (a plain HTTP client): (status, JSON body or text); (0, error) when nothing answered."""
    result = subprocess.run(["curl", "-s", "-m", "10", "-w", "\n%{http_code}", *args], capture_output=True,
                            text=True, timeout=20)
    body, _, status = result.stdout.rpartition("\n")
    try:
        return int(status or 0), json.loads(body)
    except ValueError:
        return int(status or 0), body or result.stderr


def curl_any(plant: Path, path: str, *args: str) -> tuple[int, Any]:
    """Try each PMS replica (one may be dead: chaos) until one answers."""
    answer: tuple[int, Any] = (0, "no PMS endpoint printed yet")
    for http, _ in pms_endpoints(plant):
        answer = curl(*args, http + path)
        if answer[0]:
            return answer
    return answer


@dataclass
class User:
    """What the plain clients did and got during the run (the driver thread fills it)."""

    beats_9: int = 0
    bad_beats: int = 0
    bad_events: int = 0
    factories_seen: list[dict[str, Any]] = field(default_factory=list)
    posted: list[tuple[int, Any]] = field(default_factory=list)       # curl POST /orders answers
    replayed: tuple[int, Any] | None = None                            # the same Idempotency-Key again
    read: tuple[int, Any] | None = None                                # curl GET /orders/{id}
    bad_rest: dict[str, tuple[int, Any]] = field(default_factory=dict)
    grpc_lines: list[str] = field(default_factory=list)
    grpc_new_factory: str = ""                                          # the id the answered run reported DOWN
    erp_url: str = ""                                                  # the ERP's HTTP inbox (a fixed port)
    erp_posted: tuple[int, Any] | None = None                          # curl POST /b2mml/schedule
    erp_bad_post: tuple[int, Any] | None = None                        # ... of a malformed schedule
    erp_link_kills: int = 0
    erp_http_kills: int = 0
    erp_http_tries: list[tuple[int, Any]] = field(default_factory=list)  # POST PS-USER-3 while erp_http restarts
    erp_inbox_kills: int = 0
    erp_exporter_kills: int = 0
    erp_exporter_killed_at: float = 0.0
    errors: list[str] = field(default_factory=list)


BAD_BEATS = [b"not json", b'{"metrics": {"cpu": 1}}', b"[1, 2, 3]", b'{"timestamp": "yesterday"}', b"\xff\xfe"]
BAD_EVENTS = [("factory/factory-1/completed", b"garbage"),
              ("factory/factory-1/completed", b'{"orderId": 5, "factoryId": "factory-1"}'),
              ("factory/factory-2/completed", b'{"orderId": "ord-nope", "factoryId": "factory-2"}'),
              ("factory/factory-3/progress", b'{"orderId": "ord-nope", "factoryId": "factory-3", "progress": "x"}')]
GOOD_ORDER = {"product_type": "valve", "quantity": 3, "deadline": "2030-01-01T00:00:00Z"}
BAD_REST = {
    "not json": "{nope",
    "repeated key": '{"product_type": "a", "quantity": 1, "quantity": 2, "deadline": "2030-01-01T00:00:00Z"}',
    "quantity 0": json.dumps({**GOOD_ORDER, "quantity": 0}),
    "NUL in product_type": json.dumps({**GOOD_ORDER, "product_type": "a\x00b"}),
    "deadline without timezone": json.dumps({**GOOD_ORDER, "deadline": "2030-01-01T00:00:00"}),
    "unknown field": json.dumps({**GOOD_ORDER, "priority": 1}),
}



def factories(plant: Path) -> list[dict[str, Any]]:
    status, body = curl_any(plant, "/factories")
    return body.get("factories", []) if status == 200 and isinstance(body, dict) else []


def plain_http(plant: Path, user: User) -> None:
    key = f"plain-{uuid.uuid4().hex}"
    args = ["-X", "POST", "-H", "Content-Type: application/json", "-H", f"Idempotency-Key: {key}",
            "-d", json.dumps(GOOD_ORDER)]
    user.posted.append(curl_any(plant, "/orders", *args))
    user.replayed = curl_any(plant, "/orders", *args)
    status, order = user.posted[-1]
    if status == 201:
        user.read = curl_any(plant, f"/orders/{order['id']}")
    for name, body in BAD_REST.items():
        user.bad_rest[name] = curl_any(plant, "/orders", "-X", "POST", "-H", "Content-Type: application/json",
                                       "--data-binary", body)


def plain_grpc(plant: Path, user: User, tmp: Path) -> None:
    from grpc_tools import protoc

    assert protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
                        str(PROTO)]) == 0
    (tmp / "client.py").write_text(PLAIN_CLIENT)
    attempt = 0
    for _ in range(4):  # chaos may have killed the leader just now: its successor leads within the lease
        for _, target in pms_endpoints(plant):  # the leader answers; a shadow says UNAVAILABLE (not leader)
            attempt += 1
            user.grpc_new_factory = f"plain-{76 + attempt}"
            out = subprocess.run([sys.executable, str(tmp / "client.py"), target, user.grpc_new_factory], cwd=tmp,
                                 capture_output=True, text=True, timeout=60)
            user.grpc_lines = out.stdout.splitlines() or [out.stderr[-500:]]
            # chaos may also kill the leader between two of the five calls (UNAVAILABLE: socket closed,
            # connection refused): the whole sequence again, with a new factory id, on the successor
            if user.grpc_lines[0].startswith("OK") and not any(x.startswith("UNAVAILABLE") for x in user.grpc_lines):
                return
        time.sleep(3)


