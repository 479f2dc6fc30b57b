"""Sequence numbers that stay unique when a sensor restarts: a boot counter on the sensor's side.

``seq = epoch * SEQ_SPAN + n``: ``n`` counts 1, 2, 3, ... the readings one *life* of the sensor
published, ``epoch`` counts its lives. The epochs live in ``<data dir>/sensor_monitoring/epochs.json``
(``{sensor_id: last epoch}``), the process's own durable files (``<plant>/.forge/`` in one process,
``.forge/processes/<instance>/`` in the cluster profile), as a real transmitter keeps its boot count
in non-volatile memory: never in the plant's database, which the sensors do not reach. A life
writes (and fsyncs) its epoch before it publishes, so whatever kills it, the next life's seqs are
above every seq it sent, in this run or the next one on the same database. A fresh plant starts at
epoch 0: seqs 1, 2, 3, ...

Within one process the lives are also kept in a per-runtime :class:`Ledger`, so an instance that
crashed and was restarted in-process still reports what its earlier lives produced.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core import ComponentContext

#: A life's readings are numbered epoch * SEQ_SPAN + 1 ... (10^9 readings: 31 years at 1 Hz).
SEQ_SPAN = 1_000_000_000
FILE = Path("sensor_monitoring") / "epochs.json"


def epoch_of(seq: int) -> int:
    return seq // SEQ_SPAN


def _read(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: int(v) for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def next_epochs(data_dir: Path | None, sensor_ids: list[str]) -> dict[str, int]:
    """Bump and persist the epoch of each sensor; the new epochs (0 for a sensor never seen).

    ``data_dir`` None (no durable files): every sensor starts at 0."""
    if data_dir is None:
        return dict.fromkeys(sensor_ids, 0)
    path = Path(data_dir) / FILE
    saved = _read(path)
    epochs = {sid: saved[sid] + 1 if sid in saved else 0 for sid in sensor_ids}
    saved.update(epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w") as out:
        json.dump(saved, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return epochs


@dataclass
class Life:
    """What one life of one sensor published."""

    epoch: int
    started: float  # clock time (seconds since the Unix epoch)
    produced: int = 0  # readings published (ctx.publish returned)
    skipped: int = 0  # samples not taken: the backlog was full
    publish_errors: int = 0
    #: (seq, clock time) of the latest readings published, for "in flight at the end" (recent_from)
    recent: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=4096))

    @property
    def first_seq(self) -> int:
        return self.epoch * SEQ_SPAN + 1

    @property
    def last_seq(self) -> int:
        return self.epoch * SEQ_SPAN + self.produced

    def view(self, now: float, in_flight: float) -> dict[str, Any]:
        """What the life reports; ``recent_from``: the first seq published within ``in_flight`` seconds of
        ``now`` (every seq from it to ``last_seq`` was: they go out in order), None if none was."""
        recent = [seq for seq, at in self.recent if at >= now - in_flight]
        return {"epoch": self.epoch, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "produced": self.produced, "skipped": self.skipped, "publish_errors": self.publish_errors,
                "recent_from": recent[0] if recent else None}


@dataclass
class SensorRecord:
    """Every life of one sensor in this process, and the anomalies injected into it."""

    kind: str
    location: str
    unit: str
    lives: list[Life] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)


class Ledger:
    """Per runtime (``ctx.tactics.shared``): sensor id -> its record, across in-process restarts."""

    def __init__(self) -> None:
        self.sensors: dict[str, SensorRecord] = {}
        #: instance -> clock.monotonic() of its first start in this process (schedules count from it)
        self.started: dict[str, float] = {}


def ledger(ctx: ComponentContext) -> Ledger:
    found = ctx.tactics.shared("sensor_monitoring:ledger", Ledger)
    assert isinstance(found, Ledger)
    return found


def data_dir(ctx: ComponentContext) -> Path | None:
    """The process's durable-files dir (the runtime's ``data_dir``), None when there is none."""
    runtime = ctx.services.get("runtime")
    found = getattr(runtime, "data_dir", None)
    return Path(found) if found is not None else None
