"""forge_b2mml.components._common: atomic writes, with and without the fsync."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from forge_core import VirtualClock

from forge_b2mml.components import _common
from forge_b2mml.components._common import durable_files, write_atomic


@pytest.mark.parametrize("durable", [True, False])
def test_write_atomic_writes_the_whole_file_and_fsyncs_only_when_durable(tmp_path, monkeypatch, durable):
    synced: list[int] = []
    monkeypatch.setattr(_common.os, "fsync", lambda fd: synced.append(fd))
    target = tmp_path / "out" / "doc.xml"
    write_atomic(target, b"<a/>", durable=durable)
    assert target.read_bytes() == b"<a/>" and os.listdir(target.parent) == ["doc.xml"]  # no temporary left
    assert len(synced) == (1 if durable else 0)


def test_files_are_durable_except_under_a_virtual_clock():
    clock = VirtualClock()
    try:
        assert durable_files(SimpleNamespace(clock=clock)) is False
    finally:
        clock.close()
    assert durable_files(SimpleNamespace(clock=SimpleNamespace())) is True  # a real clock has no is_virtual
