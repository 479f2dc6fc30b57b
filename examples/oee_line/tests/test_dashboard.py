"""The OEE line's dashboard panel: the current shift's OEE per machine and for the line, read from
the OEE component's newest figures (historian + oee on the plant's plant.yaml, virtual time)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forge_opcua.settings import MachineTiming
from oee_line.dashboard import panel
from oee_line.testing import host_messages, machines

from forge_core.testing import TestPlant

PLANT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[TestPlant]:
    with TestPlant(PLANT, only=["historian", "oee"], env={"OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"}) as running:
        yield running


def test_oee_per_machine_and_line(plant: TestPlant) -> None:
    empty = panel(plant.runtime)
    assert empty is not None and empty.tables[0].rows == [] and "none yet" in str(empty.fields["figures"])
    models = machines({"M1": 2.0, "M2": 3.0}, seed=5, timing=MachineTiming(mean_running=120, mean_idle=20,
                                                                            mean_down=40, mean_setup=60))
    for _, body in host_messages(models, 300.0):
        plant.publish(f"sparkplug/data/line1/edge-1/{body['device']}", "sparkplug.metrics", body)
    oee = plant.component("oee")
    plant.advance(oee.params.interval + 1)
    shown = panel(plant.runtime)
    assert shown is not None and shown.fields["oee"] == "UP"
    rows = {row[0]: row for row in shown.tables[0].rows}
    assert {"machine:M1", "machine:M2", "line:line1"} <= set(rows)
    for key, figures in oee.report().items():  # the panel shows the component's own newest figures, in %
        assert rows[key][2] == round(100 * figures["oee"], 1)
        assert 0 <= rows[key][2] <= 100
