"""Report values for a person: ISO times instead of epoch floats, record lists as tables, long lists cut."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from forge_core.cli import readable


def render(value: object, key: str = "") -> str:
    out = Console(file=io.StringIO(), width=200, emoji=False)
    out.print(readable.cell(value, key))
    return out.file.getvalue()  # type: ignore[attr-defined]


def test_epoch_floats_become_iso_times() -> None:
    assert readable.text(1704074349.361) == "2024-01-01T01:59:09.361Z"
    assert readable.text({"beats": [1704074349.361, 1704074368.955]}) == \
        "beats: 2024-01-01T01:59:09.361Z, 2024-01-01T01:59:28.955Z"


def test_epoch_ints_only_under_a_time_key() -> None:
    assert readable.text(1704074400, "stopped_at") == "2024-01-01T02:00:00.000Z"
    assert readable.text({"at": 1704074330}) == "at: 2024-01-01T01:58:50.000Z"
    assert readable.text(1704074400, "units") == "1704074400"  # a count stays a count
    assert readable.text(3600.5) == "3600.5" and readable.text(0.25) == "0.25"


def test_int_runs_become_ranges_and_long_lists_are_cut() -> None:
    assert readable.text(list(range(1, 137))) == "1-136"
    assert readable.text([1, 2, 5, 7, 8, 9, 12]) == "1, 2, 5, 7-9, 12"
    cut = readable.text([f"x{i}" for i in range(30)])
    assert cut.endswith("x23, … +6 more (--json has all)")


def test_a_list_of_records_is_a_table() -> None:
    events = [{"at": 1704074337.043, "title": "KillingScheduler"}, {"at": 1704074350.918, "title": "KillingMachine"}]
    assert isinstance(readable.cell(events), Table)
    text = render(events)
    assert "2024-01-01T01:58:57.043Z" in text and "KillingMachine" in text and "1704074" not in text


def test_a_mapping_of_small_mappings_is_a_keyed_table() -> None:
    text = render({"0": {"state": "WORKING", "last_beat": 1704074398.955}, "2": {"state": "KILLED"}})
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["state", "last_beat"]
    assert lines[1] == ["0", "WORKING", "2024-01-01T01:59:58.955Z"] and lines[2] == ["2", "KILLED"]
