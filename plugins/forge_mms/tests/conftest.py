"""A small test plant: the mms components (their ``mms.*`` schemas registered by the plugin), and a
sensor reading and alert type of the plant's own."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import TestPlant

SENSOR_PLUGIN = '''
from forge_core import hookimpl


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.reading", {"type": "object", "required": ["sensor", "values"],
                                  "properties": {"sensor": {"type": "string"}, "values": {"type": "object"}}})
    registry.add("test.stock_alert", {"type": "object", "required": ["aFresh", "aDry", "bFresh", "bDry"],
                                      "properties": {k: {"type": "number"} for k in ("aFresh", "aDry", "bFresh", "bDry")}})
    registry.add("test.sensor_alert", {"type": "object", "required": ["sensor", "value", "direction"],
                                       "additionalProperties": False,
                                       "properties": {"sensor": {"type": "string"}, "value": {"type": "number"},
                                                      "direction": {"enum": ["low", "high"]},
                                                      "note": {"type": "string"}}})
'''

MANIFEST = """
version: 1
plant: {{name: mms_test}}
plugins: [mms]
local_plugins: [sensors.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
components: {components}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: false}}
"""

BATCHES = """CREATE TABLE batches (id INTEGER PRIMARY KEY, blade_type VARCHAR(1) NOT NULL, is_fresh BOOLEAN NOT NULL,
                                   production_date TIMESTAMP, in_stock INTEGER NOT NULL)"""


@pytest.fixture
def mms_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``mms_plant(components={...}, batches=[(blade, fresh, stock), ...])``: a started TestPlant."""
    plants: list[TestPlant] = []

    def make(components: dict[str, Any], *, batches: list[tuple[str, bool, int]] | None = None,
             seed: int = 1) -> TestPlant:
        root = tmp_path / f"plant{len(plants)}"
        root.mkdir()
        (root / "sensors.py").write_text(SENSOR_PLUGIN)
        (root / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(
            components=json.dumps(components))))
        if batches is not None:
            import sqlalchemy as sa

            engine = sa.create_engine(f"sqlite:///{root / 'plant.db'}")
            with engine.begin() as conn:
                conn.execute(sa.text(BATCHES))
                for blade, fresh, stock in batches:
                    conn.execute(sa.text("INSERT INTO batches (blade_type, is_fresh, production_date, in_stock) "
                                         "VALUES (:b, :f, '2024-01-01 00:00:00', :s)"),
                                 {"b": blade, "f": fresh, "s": stock})
            engine.dispose()
        plant = TestPlant(root, seed=seed)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()


# -- mms.factory_monitor: a plant with a fake production management system (PMS) on the bus ---------
FAKE_PMS_PLUGIN = '''
from forge_core import Component, Settings, hookimpl
from pydantic import Field


class FakePmsParams(Settings):
    silent_first: int = Field(0, description="answer nothing to the first N reports (the reporter times out)")
    not_leader_first: int = Field(0, description="then answer the next N with code not_leader")
    capacity: dict[str, list[int]] | None = Field(None, description="factory -> [capacity, load] the capacity "
                                                  "query answers, all UP (null: every factory reported, its "
                                                  "status, 10 and 0)")
    capacity_silent: bool = Field(False, description="answer no capacity query (the reporter times out)")


class FakePms(Component):
    """Answers mms.status_report like the order scheduler: refuses an epoch older than the newest seen."""

    Params = FakePmsParams
    publishes = ("sched.status_report_result", "sched.factory_capacity")

    async def start(self):
        self.newest = {}
        self.requests = []
        self.accepted = []
        self.rejected = []
        self.queries = []
        self.statuses = {}
        await self.ctx.subscribe("mms/status_report", self.on_report, types=["mms.status_report"])
        await self.ctx.subscribe("mms/status_report", self.on_query, types=["mms.capacity_query"])

    async def on_query(self, envelope):
        self.queries.append((self.ctx.clock.time(), envelope.payload))
        if self.params.capacity_silent:
            return
        table, statuses = self.params.capacity, {}  # a table given: as it stood before any report (all UP)
        if table is None:
            table, statuses = {f: [10, 0] for f in self.statuses}, self.statuses
        await self.ctx.publish("sched/status_report_result", "sched.factory_capacity", {
            "requestId": envelope.payload["requestId"], "factories": [
                {"factoryId": f, "status": statuses.get(f, "UP"), "capacity": c, "load": n, "free": c - n}
                for f, (c, n) in sorted(table.items())]})

    async def on_report(self, envelope):
        body = envelope.payload
        self.requests.append(body)
        if len(self.requests) <= self.params.silent_first:
            return
        if len(self.requests) <= self.params.silent_first + self.params.not_leader_first:
            await self.ctx.publish("sched/status_report_result", "sched.status_report_result", {
                "requestId": body["requestId"], "accepted": False, "detail": "a shadow replica", "ordersMoved": 0,
                "code": "not_leader"})
            return
        newest = self.newest.get(body["lease"], -1)
        ok = body["epoch"] >= newest
        if ok:
            self.newest[body["lease"]] = body["epoch"]
            self.accepted.append(body)
            self.statuses[body["factoryId"]] = body["status"]
        else:
            self.rejected.append(body)
        await self.ctx.publish("sched/status_report_result", "sched.status_report_result", {
            "requestId": body["requestId"], "accepted": ok,
            "detail": "" if ok else f"stale epoch {body['epoch']} < {newest}", "ordersMoved": 0})


@hookimpl
def forge_register_components(registry):
    registry.add("test.fake_pms", FakePms)


@hookimpl(trylast=True)  # forge_sched owns the type; register it only where forge_sched did not
def forge_register_schemas(registry):
    if "sched.status_report_result" not in registry:
        registry.add("sched.status_report_result", {
            "type": "object", "required": ["requestId", "accepted", "detail", "ordersMoved"],
            "properties": {"requestId": {"type": "string"}, "accepted": {"type": "boolean"},
                           "detail": {"type": "string"}, "ordersMoved": {"type": "integer"},
                           "code": {"type": "string"}}})
    if "sched.factory_capacity" not in registry:
        registry.add("sched.factory_capacity", {
            "type": "object", "required": ["requestId", "factories"],
            "properties": {"requestId": {"type": "string"}, "factories": {"type": "array"}}})
'''

FACTORY_MANIFEST = """
version: 1
plant: {{name: mms_factories}}
plugins: [mms]
local_plugins: [pms.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
bindings: [{{topic: "factory/+/heartbeat", type: mms.factory_heartbeat}}]
tactics: {tactics}
components: {components}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: true}}
"""

#: Fast, deterministic defaults for the tests: no retry jitter, a short reporter timeout.
TEST_TACTICS: dict[str, Any] = {"retry": {"jitter": 0.0, "initial": 0.5, "max_backoff": 2.0, "max_attempts": 3},
                                "status_reporter": {"use": "bus", "timeout": 1.0}}


@pytest.fixture
def factory_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``factory_plant(monitor_params={...}, tactics={...}, replicas=1, pms={...})``: a started TestPlant
    with ``monitor`` (mms.factory_monitor; instances monitor-0.. with replicas > 1) and ``pms`` (a fake PMS)."""
    plants: list[TestPlant] = []

    def make(monitor_params: dict[str, Any] | None = None, *, tactics: dict[str, Any] | None = None,
             replicas: int = 1, pms: dict[str, Any] | None = None, seed: int = 1,
             plugins: list[tuple[str, object]] | None = None) -> TestPlant:
        root = tmp_path / f"factories{len(plants)}"
        root.mkdir()
        (root / "pms.py").write_text(FAKE_PMS_PLUGIN)
        components: dict[str, Any] = {
            "monitor": {"type": "mms.factory_monitor", "replicas": replicas, "params": monitor_params or {}},
            "pms": {"type": "test.fake_pms", "params": pms or {}}}
        merged = {**TEST_TACTICS, **(tactics or {})}
        (root / "plant.yaml").write_text(textwrap.dedent(FACTORY_MANIFEST.format(
            components=json.dumps(components), tactics=json.dumps(merged))))
        plant = TestPlant(root, seed=seed, plugins=plugins)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()


def beat(plant: TestPlant, factory: str, *, errors: float = 0.0, **extra: Any) -> None:
    """One ``mms.factory_heartbeat`` of ``factory`` now (timestamp = the plant's clock)."""
    plant.publish(f"factory/{factory}/heartbeat", "mms.factory_heartbeat",
                  {"factoryId": factory, "timestamp": plant.clock.time(),
                   "metrics": {"cpu": 10.0, "memory": 20.0, "errors": errors}, **extra})


@pytest.fixture
def beats() -> Callable[..., None]:
    """``beats(plant, seconds, "f1", "f2", errors={"f1": 3})``: every factory beats once a second for ``seconds``
    (the beat, then one second of plant time)."""
    def run(plant: TestPlant, seconds: int, *factories: str, errors: dict[str, float] | None = None) -> None:
        for _ in range(seconds):
            for factory in factories:
                beat(plant, factory, errors=(errors or {}).get(factory, 0.0))
            plant.advance(1.0)

    run.one = beat  # type: ignore[attr-defined]  # beats.one(plant, "f1", errors=2): a single beat, now
    return run


# -- mms.sensor_processor: readings and a plant around the processor ------------------------------------------
def sensor_reading(seq: int, value: float, *, sensor: str = "temp-1", kind: str = "temperature",
                   ts: float | None = None, start: float = 1_800_000_000.0) -> Any:
    """A :class:`forge_mms.anomaly.Reading` (one per second from ``start`` unless ``ts`` is given)."""
    from forge_mms.anomaly import Reading
    from forge_mms.storage.sensor_store import iso

    units = {"temperature": "C", "vibration": "mm/s", "energy": "kW"}
    at = start + seq - 1 if ts is None else ts
    return Reading(sensor, kind, "line-1", seq, float(value), units.get(kind, "x"), at, iso(at))


@pytest.fixture
def make_reading() -> Callable[..., Any]:
    """``make_reading(seq, value, sensor="temp-1", kind="temperature", ts=None)``: a Reading."""
    return sensor_reading


@pytest.fixture
def judge() -> Callable[..., list[Any]]:
    """``judge(rule_settings_dict, values, kind=...)``: feed values (one per second) through one rule and its
    alert tracker; the events as ``(seq, state, severity)``."""
    from forge_mms.anomaly import AlertTracker, build_rule
    from forge_mms.settings import SensorProcessorParams

    def run(rule: dict[str, Any], values: list[float], *, kind: str = "temperature",
            times: list[float] | None = None) -> list[tuple[int, str, str]]:
        settings = SensorProcessorParams.load({"rules": [rule]}).rules[0]
        built = build_rule(settings)  # type: ignore[arg-type]
        state, tracker = built.fresh(), AlertTracker(settings.name, settings.type, settings.clear_after)  # type: ignore[attr-defined]
        events = []
        for seq, value in enumerate(values, start=1):
            r = sensor_reading(seq, value, kind=kind, ts=None if times is None else times[seq - 1])
            verdict = built.judge(state, r, tracker.held)
            events += [(e.reading.seq, e.state, e.severity) for e in tracker.update(verdict, r)]
        return events

    return run


SENSOR_MANIFEST = """
version: 1
plant: {{name: sensor_processing}}
plugins: [mms]
transports: {{bus: {{type: memory}}}}
default_transport: bus
tactics: {{retry: {{jitter: 0.0, initial: 0.5, max_backoff: 2.0}}}}
components: {components}
storage: {{url: "{url}", migrate_on_start: true}}
"""
SQLITE_URL = "sqlite:///{plant_dir}/plant.db"

_UNITS = {"temperature": "C", "vibration": "mm/s", "energy": "kW"}


def reading_payload(sensor: str, kind: str, seq: int, value: float, *, ts: float | None = None,
                    start: float = 1_800_000_000.0, anomaly: str | None = None) -> dict[str, Any]:
    """An ``mms.sensor_reading`` body (one reading per second from ``start`` unless ``ts``)."""
    from forge_mms.storage.sensor_store import iso

    return {"sensor_id": sensor, "kind": kind, "location": "line-1", "seq": seq, "value": value,
            "unit": _UNITS.get(kind, "x"), "timestamp": iso(start + seq - 1 if ts is None else ts), "anomaly": anomaly}


@pytest.fixture
def sensor_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``sensor_plant(processor={params}, extra={name: spec}, url=SQLite)``: a started TestPlant with
    ``processor`` (mms.sensor_processor on topic sensor-data) and its storage (SQLite unless ``url``), migrated."""
    plants: list[TestPlant] = []

    def make(processor: dict[str, Any] | None = None, *, extra: dict[str, Any] | None = None,
             seed: int = 1, url: str = SQLITE_URL) -> TestPlant:
        root = tmp_path / f"sensors{len(plants)}"
        root.mkdir()
        components = {"processor": {"type": "mms.sensor_processor", "params": processor or {}}, **(extra or {})}
        (root / "plant.yaml").write_text(textwrap.dedent(SENSOR_MANIFEST.format(
            components=json.dumps(components), url=url)))
        plant = TestPlant(root, seed=seed)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()


def send_readings(plant: TestPlant, sensor: str, kind: str, values: list[float], *, first_seq: int = 1,
                  topic: str = "sensor-data", anomalies: dict[int, str] | None = None) -> None:
    """Publish ``values`` as readings ``first_seq``.. of ``sensor``, one per second of plant time."""
    for offset, value in enumerate(values):
        seq = first_seq + offset
        plant.publish(topic, "mms.sensor_reading",
                      reading_payload(sensor, kind, seq, value, anomaly=(anomalies or {}).get(seq)), key=sensor)
        plant.advance(1.0)


def db_rows(plant: TestPlant, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    import sqlalchemy as sa

    with plant.runtime.storage().connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


@pytest.fixture
def send() -> Callable[..., None]:
    """``send(plant, sensor, kind, values, first_seq=1, topic="sensor-data", anomalies={seq: label})``."""
    return send_readings


@pytest.fixture
def rows() -> Callable[..., list[tuple[Any, ...]]]:
    """``rows(plant, "SELECT ...", **params)``: rows of the plant's database."""
    return db_rows


@pytest.fixture
def payload() -> Callable[..., dict[str, Any]]:
    """``payload(sensor, kind, seq, value, ts=None, anomaly=None)``: an mms.sensor_reading body."""
    return reading_payload


@pytest.fixture(scope="module")
def shared_sensor_plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPlant]:
    """One started plant with ``processor`` (default params) for a whole module: property tests give each
    example its own sensor id, so examples do not see each other (a plant per example would cost seconds)."""
    root = tmp_path_factory.mktemp("shared_sensors")
    components = {"processor": {"type": "mms.sensor_processor", "params": {}}}
    (root / "plant.yaml").write_text(textwrap.dedent(SENSOR_MANIFEST.format(
        components=json.dumps(components), url=SQLITE_URL)))
    plant = TestPlant(root, seed=1).start()
    yield plant
    plant.stop()
