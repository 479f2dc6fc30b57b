"""SensorStore's readings on SQLite's two INSERTs (with and without the anomaly label) and on PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa

from forge_mms.storage.sensor_store import SensorStore


@pytest.mark.parametrize("offload", [False, True], ids=["group", "per_batch"])
def test_labels_are_stored_as_given_whichever_statement_inserts(sensor_db, make_reading, offload):
    """A batch without a label leaves anomaly out (NULL); one with any label binds every reading's, None too.
    Batches of one and of several, a redelivery of a mixed one: each reading's label (None, "spike", "") as
    given, in the batch's order (rowids)."""
    store = SensorStore(lambda: sensor_db, offload=offload, processor="p-0", group=50)
    labelled = [replace(make_reading(s, 40.0 + s), anomaly=a) for s, a in ((3, "spike"), (4, None), (5, ""))]
    batches = [[make_reading(1, 41.0)], [replace(make_reading(2, 42.0), anomaly="stuck")], labelled,
               [make_reading(6, 46.0), make_reading(7, 47.0)], [*labelled, make_reading(8, 48.0)]]
    for batch in batches:
        asyncio.run(store.call(store.write_batch, batch, [], 9.0))
    store.close()
    order = "rowid" if sensor_db.dialect.name == "sqlite" else "seq"  # SQLite: in the batches' order
    with sensor_db.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text(f"SELECT seq, anomaly FROM readings ORDER BY {order}"))]
    assert stored == [(1, None), (2, "stuck"), (3, "spike"), (4, None), (5, ""), (6, None), (7, None), (8, None)]
