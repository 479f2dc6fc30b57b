"""The runtime's collector policy (src/forge_core/runtime/gc_policy.py): a real-clock plant freezes its
started heap unless FORGE_GC_FREEZE says off, a virtual one never; a freeze is undone only by the plant
that made it."""

from __future__ import annotations

import gc

import pytest

from forge_core.runtime.gc_policy import freeze_enabled, freeze_started_heap, unfreeze


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("yes", True), ("0", False),
                                           ("false", False), (" OFF ", False), ("no", False)])
def test_forge_gc_freeze_setting(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("FORGE_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("FORGE_GC_FREEZE", value)
    assert freeze_enabled() is on


def test_freeze_and_unfreeze(monkeypatch):
    monkeypatch.delenv("FORGE_GC_FREEZE", raising=False)
    kept = [[i] for i in range(100)]
    try:
        assert not freeze_started_heap(virtual=True)  # a simulation keeps its objects collectable
        assert gc.get_freeze_count() == 0
        assert freeze_started_heap(virtual=False)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        unfreeze(True)
    assert gc.get_freeze_count() == 0
    monkeypatch.setenv("FORGE_GC_FREEZE", "0")
    assert not freeze_started_heap(virtual=False)
    unfreeze(False)  # a plant that did not freeze leaves the collector alone
    assert gc.get_freeze_count() == 0
