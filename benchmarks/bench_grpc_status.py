"""ReportFactoryStatus round trip: Forge's servicer + status_reporter.grpc client vs raw grpc.aio.

Usage: python benchmarks/bench_grpc_status.py [--calls 2000] [--warmup 200]

Both sides run in this process on one event loop, each with its own grpc.aio server on 127.0.0.1
and one reused channel, calls made one after another (latency, not throughput). They do the same
work per call: read forge-epoch/forge-lease from the metadata, check the status enum and the
factory id, check the epoch against the newest seen on the lease, update an in-memory factory
table, answer a StatusResponse. Forge's side is ``FactoryStatusServicer`` delegating to a handler
(``report_factory_status``) and ``GrpcStatusReporter.report``; the raw side is a hand-written
servicer method and a generated stub. Calls alternate raw/Forge one by one (the order swapped
every call) so load drift on a shared machine hits both sides alike.

Prints p50/p99/mean per side, speed = raw latency / Forge latency (Forge does a little more:
the handler call, the result dataclass, the ReportResult; expect <= 1. Above 1 means the raw
baseline does something Forge does not, or noise: see the paired figure), and the median of the
paired differences (each Forge call minus the raw call made next to it), the robust figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import grpc
from forge_sched.grpc import FactoryStatusServicer, GrpcStatusReporter, add_FactoryStatusServiceServicer_to_server
from forge_sched.orders.status import StatusReportResult
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceServicer, FactoryStatusServiceStub
from forge_sched.settings import GrpcStatusReporterSettings

NAMES = {pb.UP: "UP", pb.DEGRADED: "DEGRADED", pb.DOWN: "DOWN"}
STATUSES = ("DOWN", "UP", "DEGRADED")


class Table:
    """The work both sides do after decoding: fence per lease, factory table."""

    def __init__(self) -> None:
        self.factories: dict[str, str] = {}
        self.newest: dict[str, int] = {}

    def apply(self, factory_id: str, status: str, epoch: int, lease: str) -> tuple[bool, str]:
        if epoch < self.newest.get(lease, 0):
            return False, f"stale epoch {epoch}"
        self.newest[lease] = epoch
        self.factories[factory_id] = status
        return True, f"{factory_id} {status}"


class Handler:
    """Forge side: the order scheduler's method shape."""

    def __init__(self) -> None:
        self.table = Table()

    async def report_factory_status(self, factory_id: str, status: str, reason: str, epoch: int | None,
                                    lease: str | None) -> StatusReportResult:
        accepted, detail = self.table.apply(factory_id, status, epoch or 0, lease or "default")
        return StatusReportResult(accepted, detail, 0, "ok" if accepted else "stale_epoch")


class RawServicer(FactoryStatusServiceServicer):  # type: ignore[misc]
    """Raw side: the same checks written straight into the servicer method."""

    def __init__(self) -> None:
        self.table = Table()

    async def ReportFactoryStatus(self, request: pb.FactoryStatusUpdate, context: Any) -> pb.StatusResponse:
        meta = dict(context.invocation_metadata())
        status = NAMES.get(request.status)
        epoch_text, lease = meta.get("forge-epoch"), meta.get("forge-lease")
        if not request.factory_id or status is None or not (epoch_text or "").isdigit() or not lease:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad report")
        accepted, detail = self.table.apply(request.factory_id, status, int(epoch_text), lease)
        if not accepted:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, detail)
        return pb.StatusResponse(accepted=True, detail=detail, orders_moved=0)


async def start(servicer: Any) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    add_FactoryStatusServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(calls: int, warmup: int) -> None:
    forge_server, forge_target = await start(FactoryStatusServicer(Handler()))
    raw_server, raw_target = await start(RawServicer())
    reporter = GrpcStatusReporter(GrpcStatusReporterSettings(target=forge_target, timeout=5))
    raw_channel = grpc.aio.insecure_channel(raw_target)
    raw_stub = FactoryStatusServiceStub(raw_channel)
    metadata = (("forge-epoch", "1"), ("forge-lease", "mms"))

    async def forge_call(i: int) -> None:
        result = await reporter.report(f"factory-{i % 4 + 1}", STATUSES[i % 3], "bench", epoch=1, lease="mms")
        assert result.accepted

    async def raw_call(i: int) -> None:
        status = pb.FactoryStatus.Value(STATUSES[i % 3])
        update = pb.FactoryStatusUpdate(factory_id=f"factory-{i % 4 + 1}", status=status, reason="bench")
        response = await raw_stub.ReportFactoryStatus(update, timeout=5, metadata=metadata)
        assert response.accepted

    samples: dict[str, list[float]] = {"raw": [], "forge": []}
    try:
        for i in range(warmup):
            await raw_call(i)
            await forge_call(i)
        for i in range(calls):  # interleaved call by call, the order swapped every call: load drift hits both
            pair = (("raw", raw_call), ("forge", forge_call)) if i % 2 else (("forge", forge_call), ("raw", raw_call))
            for side, call in pair:
                t0 = time.perf_counter()
                await call(i)
                samples[side].append(time.perf_counter() - t0)
    finally:
        await reporter.aclose()
        await raw_channel.close()
        await forge_server.stop(None)
        await raw_server.stop(None)

    print(f"ReportFactoryStatus round trip, {len(samples['raw'])} calls per side, one at a time, "
          f"client and server in one process on one loop (127.0.0.1)")
    print(f"{'side':<34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    rows = {"raw": "raw grpc.aio servicer + stub", "forge": "Forge servicer + status_reporter.grpc"}
    for side, label in rows.items():
        s = samples[side]
        print(f"{label:<34} {pct(s, .5) * 1e3:8.3f} {pct(s, .99) * 1e3:8.3f} {statistics.fmean(s) * 1e3:8.3f}")
    for name, q in (("p50", .5), ("p99", .99)):
        raw, forge = pct(samples["raw"], q), pct(samples["forge"], q)
        print(f"speed {name}: raw/Forge = {raw / forge:.2f} (Forge {(forge - raw) * 1e6:+.0f} us per call)")
    # Each Forge call against the raw call made next to it: robust to load swings that move the
    # unpaired percentiles (on a loaded machine a short run's p50 ratio can cross 1 by noise alone).
    paired = statistics.median(f - r for f, r in zip(samples["forge"], samples["raw"], strict=True))
    print(f"Forge's cost per call, median of paired differences: {paired * 1e6:+.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per side")
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()
    asyncio.run(bench(args.calls, args.warmup))


if __name__ == "__main__":
    main()
