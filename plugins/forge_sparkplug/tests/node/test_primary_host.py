"""on_state: the primary host's STATE starts, ends and renews an edge node's session; older STATEs are ignored."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from forge_sparkplug.node.primary_host import on_state


def edge(in_session: bool, host_online: bool) -> Any:
    calls: list[str] = []

    async def host_offline() -> None:
        calls.append("offline")

    return SimpleNamespace(
        name="edge",
        calls=calls,
        host_timestamp=None,
        in_session=in_session,
        host_online=host_online,
        confirmed=True,
        lost_broker=False,
        client=SimpleNamespace(connected=True),
        lookback=[],
        params=SimpleNamespace(primary_host="analytics", unconfirmed_hold=0.0),
        _births=lambda: calls.append("births"),
        _host_offline=host_offline,
        stats={"host_resumed": 0},
    )


def state(online: bool, timestamp: int) -> bytes:
    return json.dumps({"online": online, "timestamp": timestamp}).encode()


def test_births_wait_for_state_online_and_an_older_sessions_state_is_ignored() -> None:
    node = edge(in_session=False, host_online=False)
    asyncio.run(on_state(node, state(True, 100)))
    assert node.calls == ["births"] and node.host_online and node.host_timestamp == 100
    asyncio.run(on_state(node, state(False, 99)))  # an older session's Will
    assert node.calls == ["births"] and node.host_online


def test_state_offline_ends_the_session() -> None:
    node = edge(in_session=True, host_online=True)
    node.host_timestamp = 100
    asyncio.run(on_state(node, state(False, 100)))
    assert node.calls == ["offline"] and not node.host_online
