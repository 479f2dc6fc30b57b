"""The storage probe behind /ready: a background ping whose last verdict a probe reads, naming the
database (password masked) and what failed; a file gone or corrupt, a closed port and a server that
never answers each make it not ok, and a database back makes it ok again."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from forge_core.storage import create_engine_from_url
from forge_core.storage.probe import StorageProbe


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"still waiting for {what}")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Path]:
    engine = create_engine_from_url(f"sqlite:///{tmp_path}/plant.db")
    yield tmp_path / "plant.db"
    engine.dispose()


def test_a_sqlite_file_gone_or_corrupt_is_reported_and_its_return_seen(sqlite_file: Path) -> None:
    probe = StorageProbe(make_url(f"sqlite:///{sqlite_file}"), timeout=1.0, interval=0.02)
    probe.start()
    try:
        assert probe.status() == {"ok": True, "url": f"sqlite:///{sqlite_file}"}
        sqlite_file.rename(sqlite_file.with_suffix(".moved"))  # a volume unmounted, a file deleted
        gone = wait_for(lambda: not probe.status()["ok"] and probe.status(), "the missing file")
        assert gone["error"] == "unable to open database file"
        assert not sqlite_file.exists(), "the probe never creates an empty database in its place"
        sqlite_file.with_suffix(".moved").rename(sqlite_file)
        wait_for(lambda: probe.status()["ok"], "the file back")
        with sqlite_file.open("r+b") as f:
            f.write(b"not a database" * 10)
        corrupt = wait_for(lambda: not probe.status()["ok"] and probe.status(), "the corrupt file")
        assert corrupt["error"] == "file is not a database"
    finally:
        probe.close()


def test_a_closed_postgresql_port_is_reported_with_the_password_masked() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = StorageProbe(make_url(f"postgresql+psycopg://forge:s3cret@127.0.0.1:{port}/plant"), timeout=1.0)
    probe.start()
    try:
        status = probe.status()
        assert status["ok"] is False and status["url"] == f"postgresql+psycopg://forge:***@127.0.0.1:{port}/plant"
        assert "refused" in status["error"].lower(), status
        assert "s3cret" not in json.dumps(status)
    finally:
        probe.close()


def test_a_server_that_never_answers_is_judged_by_the_pings_age_not_waited_for() -> None:
    listener = socket.socket()  # accepts connections (the kernel's backlog) and never says a word
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    probe = StorageProbe(make_url(f"postgresql+psycopg://forge@127.0.0.1:{port}/plant"), timeout=0.2)
    try:
        probe.start()  # returns once the first ping is older than the timeout
        status = wait_for(lambda: probe.status()["ok"] is False and probe.status(), "the no-answer verdict")
        assert status["error"] == "no answer within 0.2 s"
        probe.close()  # does not wait for the ping stuck in the driver
    finally:
        listener.close()


def test_the_status_before_any_ping_is_not_ok(sqlite_file: Path) -> None:
    probe = StorageProbe(make_url(f"sqlite:///{sqlite_file}"))
    assert probe.status()["ok"] is False and probe.status()["error"] == "not checked yet"
    assert probe.check()["ok"] is True and probe.status()["ok"] is True
    probe.close()


@pytest.mark.parametrize("timeout, interval", [(0, 1.0), (1.0, -1)])
def test_a_timeout_or_interval_that_is_not_positive_is_refused(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError, match=r"forge:\*\*\*@.*must be > 0"):
        StorageProbe(make_url("postgresql+psycopg://forge:pw@db/plant"), timeout=timeout, interval=interval)


def test_the_probe_leaves_the_file_alone_when_it_is_missing_from_the_start(tmp_path: Path) -> None:
    probe = StorageProbe(make_url(f"sqlite:///{tmp_path}/none.db"))
    assert probe.check()["error"] == "unable to open database file"
    assert os.listdir(tmp_path) == []
    probe.close()
