"""The ERP's operator during the distributed run: B2MML schedules dropped into ``inbox/`` and POSTed
with curl (malformed ones both ways), and each ERP process SIGKILLed mid-exchange (the parent restarts it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from i40_clients import User, curl

ERP = {"first_after": 20.0, "min_interval": 6.0, "max_interval": 12.0,   # the simulated ERP, busier than a day's
       "min_quantity": 1, "max_quantity": 20,
       # patient enough for the HTTP inbox's restart (killed by the test; a new process took 10 s to
       # listen at load 15, and 5 tries 2 s apart gave up on a schedule the ERP then counted as refused)
       "http_attempts": 30, "http_retry_after": 2.0}
USER_REQUESTS = {"PS-USER-1": [("PR-U1", 2), ("PR-U2", 3)], "PS-USER-2": [("PR-U3", 2)],  # the test's own schedules
                 "PS-USER-3": [("PR-U4", 2)],                   # POSTed as erp_http is killed
                 "PS-USER-4": [("PR-U5", 1), ("PR-U6", 2)],     # dropped, erp_inbox killed while it picks it up
                 "PS-USER-5": [("PR-U7", 1)]}                   # left claimed in processing/ by a killed erp_inbox


def schedule(schedule_id: str, *, bad: bool = False) -> bytes:
    """One of the test's B2MML ProductionSchedules (``bad``: a StartTime that is no date-time)."""
    from forge_b2mml import build_schedule

    requests = [{"request_id": rid, "start_time": "2030-01-01T00:00:00Z", "end_time": "2030-01-02T00:00:00Z",
                 "request_state": "Released", "process_segment_id": "ASSEMBLY", "material_definition_id": "WIDGET-A",
                 "quantity": quantity, "unit": "EA"} for rid, quantity in USER_REQUESTS.get(schedule_id, [("PR-X", 1)])]
    xml = build_schedule(requests, version="V0600", schedule_id=schedule_id, published="2030-01-01T00:00:00Z")
    return xml.replace(b"2030-01-01T00:00:00Z</StartTime>", b"yesterday</StartTime>") if bad else xml


def drop(plant: Path, name: str, data: bytes) -> None:
    """Into inbox/ as a careful writer does: written under a hidden name, then renamed."""
    inbox = plant / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / f".{name}.part").write_bytes(data)
    os.replace(inbox / f".{name}.part", inbox / name)


def kill_process(plant: Path, instance: str) -> bool:
    """SIGKILL the OS process running ``instance`` of this plant, as a crash would (the parent restarts it)."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if f"--only {instance} " in args and str(plant) in args:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
                return True
    return False


def kill_when_running(plant: Path, instance: str, stop: threading.Event, within: float = 60.0) -> bool:
    """:func:`kill_process`, tried every 0.5 s until ``instance`` has a process to kill (or ``within`` s, or
    the run's end): on a loaded box a process killed before, or started with the plant, may not be back
    yet at the step's time (load 20: erp_inbox, killed at 26.5 s, had no process at 34 s, and the test
    then counted one kill of two)."""
    deadline = time.monotonic() + within
    while not kill_process(plant, instance):
        if time.monotonic() > deadline or stop.wait(0.5):
            return False
    return True


def erp_calls(plant: Path, user: User, stop: threading.Event, t0: float) -> None:
    """The ERP's operator: a schedule into inbox/, one POSTed (while the link is being killed), malformed ones
    both ways, the first schedule again, the link killed a second time."""
    url = f"{user.erp_url}/b2mml/schedule"
    xml = ["-X", "POST", "-H", "Content-Type: application/xml", "--data-binary"]

    def post(data: bytes, name: str, tries: list[tuple[int, Any]] | None = None) -> tuple[int, Any]:
        (plant / name).write_bytes(data)
        answer: tuple[int, Any] = (0, "")
        # the inbox's process may still be starting (or restarting: killed): at load 30 erp_http's first
        # life began 47 s into the run and did not listen within 15 tries 1 s apart, so the POST gave up
        deadline = time.monotonic() + 90
        while True:
            answer = curl(*xml, f"@{plant / name}", url)
            if tries is not None:
                tries.append(answer)
            if answer[0] or time.monotonic() > deadline or stop.wait(1):
                return answer

    def kill_link() -> None:
        user.erp_link_kills += kill_when_running(plant, "erp_link", stop)

    def kill_http_then_post() -> None:  # an ERP posting while the inbox is down retries until it answers
        user.erp_http_kills += kill_when_running(plant, "erp_http", stop)
        post(schedule("PS-USER-3"), "user-3.xml", user.erp_http_tries)

    def kill_inbox() -> None:
        user.erp_inbox_kills += kill_when_running(plant, "erp_inbox", stop)

    def kill_inbox_leaving_a_claim() -> None:  # what a kill between the claim (os.replace) and the import leaves
        if kill_when_running(plant, "erp_inbox", stop):
            user.erp_inbox_kills += 1
            claimed = plant / "inbox" / "processing"
            claimed.mkdir(parents=True, exist_ok=True)
            (claimed / ".user-5.xml.part").write_bytes(schedule("PS-USER-5"))
            os.replace(claimed / ".user-5.xml.part", claimed / "user-5.xml")

    def kill_exporter() -> None:
        if kill_when_running(plant, "erp_exporter", stop):
            user.erp_exporter_killed_at = time.time()  # just after the kill: later exports are its successor's
            user.erp_exporter_kills += 1

    steps: list[tuple[float, Callable[[], Any]]] = [
        (2, lambda: drop(plant, "user-schedule.xml", schedule("PS-USER-1"))),
        (6, kill_link),   # the inbox (polling every 5 s) publishes the requests about now
        (7, lambda: setattr(user, "erp_posted", post(schedule("PS-USER-2"), "user-2.xml"))),
        (9, lambda: setattr(user, "erp_bad_post", post(schedule("PS-USER-BAD", bad=True), "user-bad-post.xml"))),
        (11, lambda: drop(plant, "user-bad.xml", schedule("PS-USER-BAD", bad=True))),
        (15, kill_http_then_post),
        (24, lambda: drop(plant, "user-4.xml", schedule("PS-USER-4"))),
        (26.5, kill_inbox),  # the inbox polls every 5 s (and at its start): it may be picking user-4 up
        (34, kill_inbox_leaving_a_claim),
        (40, kill_link),
        (55, lambda: drop(plant, "user-again.xml", schedule("PS-USER-1"))),
        (62, kill_exporter),  # the ERP's orders complete all along: exports are due around it
    ]
    try:
        for at, call in steps:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            call()
    except Exception as exc:  # reported by the test, not lost in a thread
        user.errors.append(f"{type(exc).__name__}: {exc}")
