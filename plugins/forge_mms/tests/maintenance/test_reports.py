"""Status reports: the retry tactic around a failing reporter, a refusal not retried, a resend later."""

from __future__ import annotations

import itertools
from typing import ClassVar

import sqlalchemy as sa
from forge_core import Settings, TransportError, TransportNotReady, hookimpl

from forge_mms.tactics.status_reporter import ReportResult


def events(plant):
    return [e.payload for e in plant.sent("mms/failover/+", type="mms.failover_event")]


def test_a_silent_pms_is_retried_with_backoff_until_it_answers(factory_plant, beats):
    plant = factory_plant(pms={"silent_first": 2})  # the reporter times out after 1 s, twice
    beats(plant, 6, "f1")
    assert [e["outcome"] for e in events(plant)] == ["accepted"]
    assert events(plant)[0]["attempts"] == 3
    requests = plant.sent(type="mms.status_report")
    assert len(requests) == 3 and len({r.payload["requestId"] for r in requests}) == 3
    gaps = [b.time - a.time for a, b in itertools.pairwise(requests)]
    assert gaps == [1.0 + 0.5, 1.0 + 1.0], "timeout + backoff 0.5 s, then 1.0 s (tactics.retry, no jitter)"
    assert plant.component("monitor").reports.stats["attempts"] == 3


def test_spent_retries_are_a_failed_event_and_the_report_is_sent_again_later(factory_plant, beats):
    plant = factory_plant({"resend_after": 5.0}, pms={"silent_first": 3})  # 3 attempts per report: all silent
    beats(plant, 6, "f1")
    assert [(e["outcome"], e["attempts"]) for e in events(plant)] == [("failed", 3)]
    assert "TimeoutError" in events(plant)[0]["detail"]
    beats(plant, 6, "f1")
    assert [e["outcome"] for e in events(plant)] == ["failed", "accepted"]
    with plant.component("monitor").ctx.storage.connect() as conn:
        rows = conn.execute(sa.text("SELECT outcome, attempts, epoch, holder FROM failover_events ORDER BY id")).all()
        status = conn.execute(sa.text("SELECT status, reported_status, reported_epoch FROM factory_status")).one()
    assert [tuple(r) for r in rows] == [("failed", 3, 1, "monitor"), ("accepted", 1, 1, "monitor")]
    assert tuple(status) == ("UP", "UP", 1)


def test_a_refusal_is_an_answer_not_retried(factory_plant, beats):
    plant = factory_plant({"resend_after": 30.0})
    pms = plant.component("pms")
    pms.newest["mms"] = 99  # the PMS has seen a newer MMS leader
    beats(plant, 4, "f1")
    assert [(e["outcome"], e["attempts"], e["epoch"]) for e in events(plant)] == [("rejected", 1, 1)]
    assert "stale epoch 1 < 99" in events(plant)[0]["detail"]
    assert len(pms.requests) == 1
    monitor = plant.component("monitor")
    assert monitor.reports.pending()["f1"].status == "UP", "still wanted: tried again after resend_after"


def test_an_answer_that_decides_nothing_is_retried(factory_plant, beats):
    plant = factory_plant(pms={"not_leader_first": 2})  # e.g. the PMS leader was being replaced
    beats(plant, 6, "f1")
    assert [(e["outcome"], e["attempts"]) for e in events(plant)] == [("accepted", 3)]


class Raising:
    """A reporter of another plugin that raises forge_core transport errors, as status_reporter.grpc does."""

    errors: ClassVar[list[Exception]] = []

    async def report(self, factory_id, status, reason, *, epoch, lease):
        if self.errors:
            raise self.errors.pop(0)
        return ReportResult(True)


class RaisingPlugin:
    @hookimpl
    def forge_register_tactics(self, registry):
        class NoSettings(Settings):
            pass

        registry.add("status_reporter.raising", lambda settings, services: Raising(), settings=NoSettings)


def test_not_ready_is_retried_another_transport_error_is_not(factory_plant, beats):
    Raising.errors = [TransportNotReady("unavailable"), TransportNotReady("unavailable"),
                      TransportError("UNIMPLEMENTED: no PMS at the target")]
    plant = factory_plant({"resend_after": 5.0}, tactics={"status_reporter": {"use": "raising"}},
                          plugins=[("raising", RaisingPlugin())])
    beats(plant, 4, "f1")
    assert [(e["outcome"], e["attempts"]) for e in events(plant)] == [("failed", 3)], "2 retries, then not retried"
    assert "UNIMPLEMENTED" in events(plant)[0]["detail"]
    Raising.errors = [TransportError("UNIMPLEMENTED")]
    beats(plant, 4, "f1")
    assert [(e["outcome"], e["attempts"]) for e in events(plant)][1:] == [("failed", 1)], "given up at once"
    beats(plant, 6, "f1")
    assert events(plant)[-1]["outcome"] == "accepted"
