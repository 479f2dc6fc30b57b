"""The message bus and tracing: trace context across the bus in headers, a batch as one span, traced
handlers that raise, and the TraceRecorder's digest."""

from __future__ import annotations

import asyncio

from forge_core.bus import TraceRecorder
from forge_core.clock import VirtualClock
from forge_core.messages.envelope import NO_HEADERS, Envelope
from forge_core.telemetry import Telemetry
from tests.bus.bus_helpers import make_bus, run, settle


def test_trace_context_crosses_the_bus_in_headers():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry)
        got = []
        await bus.subscribe("r", got.append, owner="monitor")
        with telemetry.tracer.start_as_current_span("machine tick"):
            await bus.publish("r", "test.reading", {"value": 1}, source="m1")
        await settle(bus)
        # send() of an envelope with the shared read-only empty headers (NO_HEADERS) gives it a dict too
        await bus.send("r/again", Envelope("test.reading", {"value": 2}, "m1", "x1", 0.0, headers=NO_HEADERS))
        return got

    (envelope,) = run(body)
    assert NO_HEADERS == {}
    telemetry.force_flush()
    spans = {}
    for span in telemetry.span_exporter.get_finished_spans():  # the first of each name (send's publish last)
        spans.setdefault(span.name, span)
    assert envelope.headers["traceparent"].startswith("00-")
    publish, handle = spans["publish test.reading"], spans["handle test.reading"]
    assert handle.context.trace_id == publish.context.trace_id == spans["machine tick"].context.trace_id
    assert handle.parent.span_id == publish.context.span_id
    assert handle.attributes["forge.component"] == "monitor"
    telemetry.shutdown()


def test_trace_recorder_digest_depends_on_content_and_order():
    async def body(clock, values):
        recorder = TraceRecorder()
        bus = make_bus(clock, trace=recorder)
        for value in values:
            await bus.publish("r", "test.reading", {"value": value}, source="m1")
        await asyncio.sleep(0)
        return recorder.digest

    def digest(values):
        clock = VirtualClock()
        try:
            return clock.run(body(clock, values))
        finally:
            clock.close()

    assert digest([1, 2]) != digest([2, 1])
    assert digest([1, 2]) != digest([1, 3])


def test_publish_batch_is_traced_as_one_span_and_each_message_carries_its_context():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry)
        got = []
        await bus.subscribe("r", got.extend, owner="monitor", batch=True)
        await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": 2}], source="m1")
        await settle(bus)
        return got

    got = run(body)
    telemetry.force_flush()
    spans = telemetry.span_exporter.get_finished_spans()
    (publish,) = [s for s in spans if s.name == "publish test.reading"]
    handles = [s for s in spans if s.name == "handle test.reading"]
    assert publish.attributes["messaging.batch.message_count"] == 2
    assert len(got) == 2 and all(e.headers["traceparent"].split("-")[1] == f"{publish.context.trace_id:032x}"
                                 for e in got)
    assert handles and all(h.context.trace_id == publish.context.trace_id for h in handles)
    telemetry.shutdown()


def test_traced_handlers_that_raise_are_dead_lettered_and_recorded_on_their_span():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    def fails(_):
        raise ValueError("broken handler")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry, transports=("one", "many"))
        await bus.subscribe("r", fails, owner="single", transport="one")
        await bus.subscribe("r", fails, owner="batch", transport="many", batch=True)
        await bus.publish("r", "test.reading", {"value": 1}, source="m1", transport="one")
        await bus.publish_batch("r", "test.reading", [{"value": 2}, {"value": 3}], source="m1", transport="many")
        await settle(bus)
        return list(bus.dead_letters.recent), bus.stats

    letters, stats = run(body)
    telemetry.force_flush()
    handles = [s for s in telemetry.span_exporter.get_finished_spans() if s.name == "handle test.reading"]
    assert sorted((d.component, d.envelope.payload["value"], d.detail) for d in letters) == [
        ("batch", 2, "ValueError: broken handler (batch of 2)"),
        ("batch", 3, "ValueError: broken handler (batch of 2)"),
        ("single", 1, "ValueError: broken handler")]
    assert len(handles) == 2 and all(any(e.name == "exception" for e in h.events) for h in handles)  # one a list
    assert sum(stats.handled.values()) == 0
    telemetry.shutdown()
