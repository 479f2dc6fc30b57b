"""bench_industry40_rest's clients: the steady open-loop client (``--clients`` processes, each run as
``bench_industry40_rest.py --client``; a minimal HTTP/1.1 client on asyncio's protocol API) and the
max-throughput probe (wrk with ``bench_industry40_rest.lua``). See bench_industry40_rest.py."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAIN = Path(__file__).resolve().with_name("bench_industry40_rest.py")  # the script a client process runs
BODY = {"product_type": "widget", "quantity": 3}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wrk_max(url: str, args: argparse.Namespace, deadline: str) -> dict[str, Any]:
    """Max throughput: wrk (C, one thread) keeps ``--connections`` requests in flight for ``--max-seconds``;
    the Lua script gives each request a valid body and its own Idempotency-Key."""
    out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.max_seconds:g}s", "--timeout", "30s",
                          "-s", str(MAIN.with_suffix(".lua")), url, "--", deadline],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    took = r["duration_us"] / 1e6
    return {"done": r["requests"], "rate": r["requests"] / took, "p50": r["p50_us"] / 1e6, "p99": r["p99_us"] / 1e6,
            "errors": sum(r["errors"].values()), "first_error": [r["errors"]] if any(r["errors"].values()) else []}


class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time: the status of each answer
    (the body is read by its Content-Length and dropped)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15:stop if stop > 0 else len(head)])
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        del self.buf[:end + 4 + length]
        if not self.waiter.done():  # else cancelled: not answered in time
            self.waiter.set_result(status)
        self.waiter = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # e.g. uvicorn's keep-alive timeout on an idle connection
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiter is None
        if self.closed:
            raise ConnectionError("closed by the server")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


async def open_loop(url: str, rate: float, seconds: float, phase: float, connections: int,
                    drain: float) -> dict[str, Any]:
    """Requests due every ``1/rate`` s from ``start + phase`` for ``seconds``, where ``start`` is a wall-clock
    time read from stdin once this process said ``ready`` (warmed up; the parent gives every client
    process the same start once all are ready), each on a free connection (up to ``connections``,
    opened as needed; beyond them a request waits, and the wait counts). Latency is counted from when a
    request was due; what is not answered ``drain`` s after the last one was due counts as infinitely late."""
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    body = json.dumps({**BODY, "deadline": deadline}).encode()
    head = (f"POST /orders HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nIdempotency-Key: ").encode()
    prefix = uuid.uuid4().hex[:12]
    idle: list[_Http] = []
    waiting: collections.deque[asyncio.Future[_Http]] = collections.deque()
    opened = 0
    lat: list[float] = []
    errors: list[str] = []
    last = 0.0

    async def take() -> _Http:
        nonlocal opened
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            opened -= 1
        if opened < connections:
            opened += 1
            _, conn = await loop.create_connection(_Http, host, int(port))
            return conn
        fut: asyncio.Future[_Http] = loop.create_future()
        waiting.append(fut)
        return await fut

    def give(conn: _Http) -> None:
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        idle.append(conn)

    async def one(n: int, due: float) -> None:
        nonlocal opened, last
        conn = await take()
        try:
            status = await conn.send(head + f"{prefix}-{n}\r\n\r\n".encode() + body)
        except ConnectionError as exc:
            errors.append(str(exc))
            opened -= 1
            return
        give(conn)
        last = time.perf_counter()
        lat.append(last - due)
        if status != 201:
            errors.append(str(status))

    for n in range(20):  # warm-up: a connection open, the server's caches warm
        await one(-n - 1, time.perf_counter())
    lat.clear()
    errors.clear()
    print("ready", flush=True)
    start = float(await loop.run_in_executor(None, sys.stdin.readline))
    # the processes share a wall-clock start; due times are on perf_counter from there
    t0 = time.perf_counter() + (start + phase - time.time())
    count = int(rate * seconds)
    tasks = []
    for i in range(count):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, due)))
    sent_by = time.perf_counter()
    _, late = await asyncio.wait(tasks, timeout=max(0.0, t0 + seconds + drain - time.perf_counter()))
    for task in late:
        task.cancel()
    return {"sent": count, "send_took": sent_by - t0, "took": max(seconds, last - t0), "lat": lat,
            "late": len(late), "errors": errors[:3], "error_count": len(errors)}


def client_main(args: argparse.Namespace) -> None:
    result = asyncio.run(open_loop(args.url, args.rate, args.seconds, args.phase, args.connections, args.drain))
    print(json.dumps(result))


def steady(url: str, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """``rate`` req/s open loop from ``--clients`` processes (each ``rate/clients``, interleaved)."""
    procs = args.clients
    running = [subprocess.Popen([sys.executable, str(MAIN), "--client", "--url", url, "--rate", str(rate / procs),
                                 "--seconds", str(args.seconds), "--phase", str(k / rate),
                                 "--connections", str(args.connections), "--drain", str(args.drain)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for k in range(procs)]
    for p in running:  # each has started and warmed up
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", "a client process failed"
    start = time.time() + 0.2
    for p in running:
        assert p.stdin is not None
        p.stdin.write(f"{start}\n")
        p.stdin.close()
    parts = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in running if p.stdout is not None]
    for p in running:
        p.wait()
    late = sum(p["late"] for p in parts)
    lat = [x for p in parts for x in p["lat"]] + [float("inf")] * late
    sent = sum(p["sent"] for p in parts)
    answered = sum(len(p["lat"]) for p in parts)
    return {"offered": rate, "sent": sent, "answered": answered, "rate": answered / max(p["took"] for p in parts),
            "send_rate": sent / max(p["send_took"] for p in parts), "p50": pct(lat, .5), "p95": pct(lat, .95),
            "p99": pct(lat, .99), "late": late, "errors": sum(p["error_count"] for p in parts),
            "first_error": [e for p in parts for e in p["errors"]][:1]}
