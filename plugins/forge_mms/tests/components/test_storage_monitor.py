"""mms.storage_monitor: levels from messages or from the batches table; alerts out of band only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from forge_core import ManifestError

LEVELS = {"title": "StorageLevels", "aFresh": 50.0, "aDry": 50.0, "bFresh": 50.0, "bDry": 50.0}


def levels(plant, **changes):
    plant.publish("storage/levels", "mms.storage_levels", {**LEVELS, **changes})


def alerts(plant):
    return [e.payload for e in plant.sent("storage/alert", type="mms.storage_alert")]


def test_alert_when_a_level_leaves_the_band_with_all_four_levels(mms_plant):
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor"}})
    levels(plant)
    plant.advance(10.5)
    assert alerts(plant) == [], "all levels in 20..80"
    levels(plant, aFresh=15.0)
    plant.advance(10)
    assert alerts(plant) == [{"title": "StorageAlert", "aFresh": 15.0, "aDry": 50.0, "bFresh": 50.0, "bDry": 50.0}]
    levels(plant, bDry=85.0, aFresh=50.0)
    plant.advance(10)
    assert alerts(plant)[-1]["bDry"] == 85.0 and len(alerts(plant)) == 2


def test_no_second_alert_unless_a_level_moved_more_than_min_change(mms_plant):
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor"}})
    levels(plant, aFresh=15.0)
    plant.advance(10.5)
    levels(plant, aFresh=15.5, bDry=50.9)
    plant.advance(10)
    levels(plant, aFresh=15.5, bDry=51.0)         # moved 1.0: not more than min_change
    plant.advance(10)
    assert len(alerts(plant)) == 1
    levels(plant, aFresh=13.0)
    plant.advance(10)
    assert len(alerts(plant)) == 2
    monitor = plant.component("storage_monitor")
    assert monitor.report()["suppressed"] == 2
    assert all(check.passed for check in monitor.checks())


def test_interval_and_band_are_params(mms_plant):
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor",
                                           "params": {"interval": 2.0, "low": 40.0, "high": 60.0}}})
    levels(plant, aDry=35.0)
    plant.advance(2.5)
    assert len(alerts(plant)) == 1


def test_levels_from_the_batches_table(mms_plant):
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor", "params": {"source": "database"}}},
                      batches=[("A", True, 10), ("A", True, 5), ("A", False, 50), ("B", True, 60),
                               ("B", False, 85)])
    plant.advance(10.5)
    assert alerts(plant) == [{"title": "StorageAlert", "aFresh": 15.0, "aDry": 50.0, "bFresh": 60.0, "bDry": 85.0}]
    monitor = plant.component("storage_monitor")
    with monitor.ctx.storage.begin() as conn:
        conn.execute(sa.text("UPDATE batches SET in_stock = 0 WHERE blade_type = 'B' AND is_fresh = 0"))
        conn.execute(sa.text("UPDATE batches SET in_stock = 30 WHERE blade_type = 'A' AND is_fresh = 1"))
    plant.advance(10)
    assert len(alerts(plant)) == 2 and alerts(plant)[-1]["bDry"] == 0.0


def test_a_missing_table_is_logged_and_counted_not_a_crash(mms_plant):
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor", "params": {"source": "database"}}})
    plant.advance(25)
    monitor = plant.component("storage_monitor")
    assert monitor.report()["database_errors"] == 2 and plant.state("storage_monitor") == "running"
    assert alerts(plant) == []


def test_the_alert_type_is_a_param_for_a_consumer_that_owns_the_same_body(mms_plant):
    """A plant whose scheduler consumes its own type for this body names it; the monitor publishes it."""
    plant = mms_plant({"storage_monitor": {"type": "mms.storage_monitor",
                                           "params": {"alert_type": "test.stock_alert", "alert_topic": "stock/alert"}}})
    levels(plant, bDry=90.0)
    plant.advance(10.5)
    sent = plant.sent("stock/alert", type="test.stock_alert")
    assert [e.payload["bDry"] for e in sent] == [90.0] and alerts(plant) == []


def test_low_must_be_below_high(mms_plant):
    # the model's own rule runs at validate time: a manifest error, naming the params
    with pytest.raises(ManifestError, match=r"components\.storage_monitor\.params: .*low \(60.0\) must be below high"):
        mms_plant({"storage_monitor": {"type": "mms.storage_monitor", "params": {"low": 60.0, "high": 40.0}}})
