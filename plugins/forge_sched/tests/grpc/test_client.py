"""GrpcStatusReporter against a real server on 127.0.0.1: results, the two error families, one
channel for many calls, and the retry tactic carrying a report across a server restart."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from forge_core import SettingsError, TransportNotReady
from forge_core.tactics import RetryPolicy
from forge_core.testing import find_free_port

from forge_sched.grpc import (
    FactoryStatusServicer,
    GrpcStatusReporter,
    ReportResult,
    StatusReportRejected,
    StatusReportUnavailable,
)
from forge_sched.settings import GrpcStatusReporterSettings


def reporter(port: int, **settings) -> GrpcStatusReporter:
    return GrpcStatusReporter(GrpcStatusReporterSettings(target=f"127.0.0.1:{port}", **settings))


def test_report_returns_the_schedulers_answer(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port:
            client = reporter(port)
            try:
                result = await client.report("factory-1", "DOWN", "3 beats missed", epoch=3, lease="mms")
            finally:
                await client.aclose()
        assert result == ReportResult(True, "factory-1 DOWN", 2)
        assert scheduler.calls == [("factory-1", "DOWN", "3 beats missed", 3, "mms")]
    arun(body)


def test_one_connection_carries_every_call(scheduler, serve, arun) -> None:
    peers: list[str] = []

    class Recording(FactoryStatusServicer):
        async def ReportFactoryStatus(self, request, context):
            peers.append(context.peer())
            return await super().ReportFactoryStatus(request, context)

    async def body() -> None:
        async with serve(scheduler, servicer=Recording(scheduler)) as port:
            client = reporter(port)
            try:
                for status in ("DEGRADED", "DOWN", "UP"):
                    await client.report("factory-2", status, "", epoch=1, lease="mms")
            finally:
                await client.aclose()
    arun(body)
    assert len(peers) == 3 and len(set(peers)) == 1, peers  # same client port: the channel was reused


def test_refusals_are_answers_not_errors(scheduler, serve, arun) -> None:
    """As the status_reporter kind has it: a refusal is a result with accepted=False (forge_mms
    records it as 'rejected' and does not retry it); the gRPC code says which refusal."""
    async def body() -> tuple[ReportResult, ...]:
        async with serve(scheduler) as port:
            client = reporter(port)
            try:
                await client.report("factory-1", "UP", "", epoch=6, lease="mms")
                # forge_mms's policy: retry on any exception; a refusal must take one attempt only
                policy = RetryPolicy(max_attempts=5, initial=0.01)
                stale = await policy.acall(client.report, "factory-1", "DOWN", "", epoch=5, lease="mms")
                assert policy.stats.attempts == 1
                empty = await client.report("", "DOWN", "", epoch=6, lease="mms")
                bad_status = await client.report("factory-1", "BROKEN", "", epoch=6, lease="mms")
            finally:
                await client.aclose()
        return stale, empty, bad_status

    stale, empty, bad_status = arun(body)
    assert (stale.accepted, stale.code) == (False, "FAILED_PRECONDITION") and "newest is 6" in stale.detail
    assert (empty.accepted, empty.code) == (False, "INVALID_ARGUMENT") and empty.detail.startswith("factory_id")
    assert (bad_status.accepted, bad_status.code) == (False, "INVALID_ARGUMENT") and "BROKEN" in bad_status.detail
    assert len(scheduler.calls) == 2  # the unknown status never left the client


def test_a_server_that_is_not_a_pms_is_a_final_error(arun) -> None:
    async def body() -> StatusReportRejected:
        server = grpc.aio.server()  # serves nothing: every method is UNIMPLEMENTED
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        client = reporter(port)
        try:
            with pytest.raises(StatusReportRejected) as caught:
                await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")
        finally:
            await client.aclose()
            await server.stop(None)
        return caught.value

    error = arun(body)
    assert error.code == "UNIMPLEMENTED" and not error.retryable and not isinstance(error, TransportNotReady)
    assert "status_reporter.grpc (127.0.0.1:" in str(error)


def test_no_server_and_a_slow_server_are_retryable(scheduler, serve, arun) -> None:
    async def body() -> None:
        client = reporter(find_free_port(), timeout=1.0)
        try:
            with pytest.raises(StatusReportUnavailable) as down:
                await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")
        finally:
            await client.aclose()
        scheduler.delay = 1.0
        async with serve(scheduler) as port:
            slow = reporter(port, timeout=0.2)
            try:
                with pytest.raises(StatusReportUnavailable) as late:
                    await slow.report("factory-1", "DOWN", "", epoch=1, lease="mms")
            finally:
                await slow.aclose()
        assert down.value.code == "UNAVAILABLE" and isinstance(down.value, TransportNotReady)
        assert late.value.code == "DEADLINE_EXCEEDED" and late.value.retryable
    arun(body)


def test_the_retry_tactic_carries_a_report_across_a_server_restart(scheduler, serve, arun) -> None:
    """Server up, stopped (a PMS upgrade), started again on the same port: the report made while
    it is down gets through on a later attempt; a refused one is not retried."""
    async def body() -> tuple[ReportResult, int]:
        async with serve(scheduler) as port:
            client = reporter(port, timeout=1.0)
            await client.report("factory-1", "UP", "", epoch=2, lease="mms")  # the channel is connected
        policy = RetryPolicy(max_attempts=30, initial=0.05, max_backoff=0.2, retry_on=(TransportNotReady,))

        done = asyncio.Event()

        async def restart_later() -> None:
            await asyncio.sleep(0.8)
            async with serve(scheduler, port=port):
                await done.wait()

        server = asyncio.create_task(restart_later())
        try:
            result = await policy.acall(client.report, "factory-1", "DOWN", "beats stopped", epoch=2, lease="mms")
            retries = policy.stats.retries
            refusing = RetryPolicy(max_attempts=5, initial=0.01, retry_on=(TransportNotReady,))
            refused = await refusing.acall(client.report, "factory-1", "UP", "", epoch=1, lease="mms")
            assert (refused.accepted, refused.code, refusing.stats.attempts) == (False, "FAILED_PRECONDITION", 1)
        finally:
            await client.aclose()
            done.set()
            await server
        return result, retries

    result, retries = arun(body)
    assert result.accepted and scheduler.factories["factory-1"] == "DOWN"
    assert retries >= 2  # it did fail while the server was down


def test_settings_name_the_field_at_fault() -> None:
    for data, path in [({}, "target"), ({"target": "localhost"}, "target"), ({"target": "h:0"}, "target"),
                       ({"target": "h:1", "timeout": 0}, "timeout"),
                       ({"target": "h:1", "ca_cert": "/ca.pem"}, "ca_cert given but tls is false"),
                       ({"target": "h:1", "tls": True, "client_cert": "/c.pem"}, "client_key")]:
        with pytest.raises(SettingsError) as caught:
            GrpcStatusReporterSettings.load(data, where="tactics.status_reporter")
        assert path in str(caught.value), (data, str(caught.value))
    ok = GrpcStatusReporterSettings.load({"target": "[::1]:50051"})
    assert (ok.timeout, ok.tls) == (5.0, False)


def test_a_closed_reporter_opens_a_new_channel(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port:
            client = reporter(port)
            await client.report("factory-1", "UP", "", epoch=1, lease="mms")
            await client.aclose()
            await client.aclose()  # twice is fine
            assert (await client.report("factory-1", "UP", "", epoch=1, lease="mms")).accepted
            await client.aclose()
    arun(body)


def test_several_targets_a_dead_one_and_a_shadow_are_passed_over_for_the_leader(serve, arun) -> None:
    """targets: a dead port, a shadow replica (answers not_leader = UNAVAILABLE), the leader: one call
    reaches the leader, and the next goes to it first."""
    from .conftest import FakeScheduler

    shadow, leader = FakeScheduler(), FakeScheduler()
    shadow.code = "not_leader"

    async def body() -> tuple[ReportResult, ReportResult]:
        async with serve(shadow) as shadow_port, serve(leader) as leader_port:
            client = GrpcStatusReporter(GrpcStatusReporterSettings(
                target=f"127.0.0.1:{find_free_port()}", targets=[f"127.0.0.1:{shadow_port}",
                                                                 f"127.0.0.1:{leader_port}"], timeout=1.0))
            try:
                first = await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")
                second = await client.report("factory-1", "UP", "", epoch=1, lease="mms")
            finally:
                await client.aclose()
            return first, second

    first, second = arun(body)
    assert first.accepted and second.accepted
    assert [c[1] for c in leader.calls] == ["DOWN", "UP"] and len(shadow.calls) == 1  # asked once, then skipped


def test_no_target_answering_is_retryable_and_names_each(arun) -> None:
    async def body() -> StatusReportUnavailable:
        ports = [find_free_port(), find_free_port()]
        client = GrpcStatusReporter(GrpcStatusReporterSettings(targets=[f"127.0.0.1:{p}" for p in ports],
                                                               timeout=1.0))
        try:
            with pytest.raises(StatusReportUnavailable) as caught:
                await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")
        finally:
            await client.aclose()
        assert all(f"127.0.0.1:{p}" in str(caught.value) for p in ports), str(caught.value)
        return caught.value

    assert arun(body).retryable


def test_replicas_are_found_by_their_sched_endpoint_announcements(serve, arun) -> None:
    """endpoints_topic: start(ctx) subscribes (once per component); the announced leader is tried first,
    a replica announced again on a new port (restarted) replaces its old target."""
    from types import SimpleNamespace

    from .conftest import FakeScheduler

    shadow, leader = FakeScheduler(), FakeScheduler()
    shadow.code = "not_leader"
    subscribed: list[tuple[str, Any, list[str], bool]] = []

    class Ctx:
        name = "mms-0"

        async def subscribe(self, topic: str, callback: Any, *, types: list[str], shared: bool) -> None:
            subscribed.append((topic, callback, types, shared))

    async def body() -> None:
        client = GrpcStatusReporter(GrpcStatusReporterSettings(endpoints_topic="sched/endpoints", timeout=1.0))
        await client.start(Ctx())
        await client.start(Ctx())  # a second start of the same component subscribes nothing more
        assert [(t, ty, sh) for t, _, ty, sh in subscribed] == [("sched/endpoints", ["sched.endpoint"], False)]
        with pytest.raises(StatusReportUnavailable, match="no PMS known yet"):
            await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")
        announce = subscribed[0][1]
        async with serve(shadow) as shadow_port, serve(leader) as leader_port:
            await announce(SimpleNamespace(payload={"instance": "pms-1", "grpc": f"127.0.0.1:{find_free_port()}",
                                                    "http": None, "leading": True, "epoch": 1}))
            await announce(SimpleNamespace(payload={"instance": "pms-0", "grpc": f"127.0.0.1:{shadow_port}",
                                                    "leading": False, "epoch": 1}))
            await announce(SimpleNamespace(payload={"instance": "pms-1", "grpc": f"127.0.0.1:{leader_port}",
                                                    "leading": True, "epoch": 2}))  # pms-1 again, new port
            await announce(SimpleNamespace(payload={"instance": 7, "grpc": "junk"}))  # ignored
            assert client.candidates() == [f"127.0.0.1:{leader_port}", f"127.0.0.1:{shadow_port}"]
            try:
                assert (await client.report("factory-1", "DOWN", "", epoch=1, lease="mms")).accepted
            finally:
                await client.aclose()
        assert len(leader.calls) == 1 and shadow.calls == []

    arun(body)
