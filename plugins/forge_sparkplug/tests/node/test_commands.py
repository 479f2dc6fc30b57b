"""on_command: NCMD/DCMD fenced per host group, rebirth honoured, the rest one sparkplug.write with epoch and lease."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from forge_core.tactics import FencedReceiver

from forge_sparkplug.codec.payload import Metric, encode
from forge_sparkplug.node.commands import EPOCH, LEASE, REBIRTH, on_command
from forge_sparkplug.node.metrics import MetricTable
from forge_sparkplug.settings import DeviceSpec, MetricSpec

INT64, STRING, BOOLEAN, INT32 = 4, 12, 11, 3
TOPIC = "spBv1.0/g/{verb}/n"


def edge(require_epoch: bool = False) -> Any:
    table = MetricTable(
        [], {"M1": DeviceSpec(metrics=[MetricSpec(name="Speed", datatype="Int32")])}, aliases=True, now_ms=0
    )
    published: list[tuple[str, str, dict[str, Any]]] = []
    rebirths: list[bool] = []

    async def publish(topic: str, type_: str, body: dict[str, Any]) -> None:
        published.append((topic, type_, body))

    return SimpleNamespace(
        name="edge",
        table=table,
        fence=FencedReceiver(),
        published=published,
        rebirths=rebirths,
        _rebirth=lambda: rebirths.append(True),
        ctx=SimpleNamespace(publish=publish),
        params=SimpleNamespace(
            require_epoch=require_epoch, writes_topic="sparkplug/writes/{group}/{node}", group="g", node="n"
        ),
        stats=dict.fromkeys(("commands", "stale_commands", "unfenced_commands", "refused_unfenced"), 0),
    )


def command(*metrics: Metric, epoch: int | None = None, lease: str = "hosts") -> bytes:
    fenced = [Metric(name=EPOCH, datatype=INT64, value=epoch), Metric(name=LEASE, datatype=STRING, value=lease)]
    return encode(0, [*metrics, *(fenced if epoch is not None else [])])


def test_a_deposed_hosts_command_is_refused_and_the_newer_ones_write() -> None:
    node = edge()
    speed = Metric(name="Speed", datatype=INT32, value=7)
    asyncio.run(on_command(node, TOPIC.format(verb="DCMD") + "/M1", command(speed, epoch=2)))
    asyncio.run(on_command(node, TOPIC.format(verb="DCMD") + "/M1", command(speed, epoch=1)))  # deposed
    assert node.stats["commands"] == 1 and node.stats["stale_commands"] == 1
    assert node.published == [
        (
            "sparkplug/writes/g/n/M1",
            "sparkplug.write",
            {
                "group": "g",
                "node": "n",
                "device": "M1",
                "metrics": [{"name": "Speed", "value": 7, "datatype": INT32}],
                "epoch": 2,
                "lease": "hosts",
            },
        )
    ]


def test_rebirth_is_honoured_and_not_written_and_unfenced_commands_follow_require_epoch() -> None:
    node = edge()
    asyncio.run(
        on_command(node, TOPIC.format(verb="NCMD"), command(Metric(name=REBIRTH, datatype=BOOLEAN, value=True)))
    )
    assert node.rebirths == [True] and node.published == [] and node.stats["unfenced_commands"] == 1
    strict = edge(require_epoch=True)
    asyncio.run(
        on_command(strict, TOPIC.format(verb="NCMD"), command(Metric(name=REBIRTH, datatype=BOOLEAN, value=True)))
    )
    assert strict.rebirths == [] and strict.stats["refused_unfenced"] == 1
