"""Adversarial JSON into every topic of the pasta plant (issue 11, section 2), by property.

Bodies are built from each bound type's own fields with hostile values: integers beyond 64 bits
(which orjson reads as floats), integral floats, the NaN/Infinity tokens JSON does not have,
strings holding ``+ # /`` and NUL, deep nesting, huge strings. Whatever comes, each message is
either valid (and then every integer in it is a Python int within int64) and handled, or
dead-lettered with a reason; no component crashes or restarts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forge_core.testing import TestPlant

#: topic -> (message type, its title for plain JSON bodies) as the plant's bindings type them.
TOPICS = {
    "heartbeats": ("sched.machine_heartbeat", "heartbeat"),
    "productionPlan/assignBlade": ("sched.assign_blade", "AssignBlade"),
    "productionPlan/swapBlade": ("sched.swap_blade", "SwapBlade"),
    "productionPlan/bladeSwapped": ("sched.blade_swapped", "BladeSwapped"),
    "updateManager/killMachine": ("pasta.kill_machine", "KillMachine"),
    "sorting/changeFreshAmount": ("sched.change_fresh_amount", "ChangeFreshAmount"),
    "sorting/freshAmountChanged": ("sched.fresh_amount_changed", "FreshAmountChanged"),
    "storage/levels": ("mms.storage_levels", "StorageLevels"),
    "storage/alert": ("sched.storage_alert", "StorageAlert"),
    "storage/newBatch": ("pasta.new_batch", "NewBatch"),
    "experiment": ("pasta.killing_machine", "KillingMachine"),
}
FIELDS = ["machineId", "bladeType", "epoch", "change", "freshAmount", "aFresh", "aDry", "bFresh", "bDry", "batchId",
          "isFresh", "inStock", "productionDate", "restartIn", "source", "seq"]
INT64 = (-(2**63), 2**63 - 1)

# Values as JSON *text*, so that what the wire can carry and Python's json cannot (a NaN token, a
# 40-digit integer, 1.0 as written) reaches the decoder as such.
numbers = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200).map(str),                  # huge and ordinary integers
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2).map(str),              # the int64/uint64 edges
    st.integers(min_value=-10, max_value=10**20).map(lambda n: f"{n}.0"),         # integral floats
    st.sampled_from(["1e308", "1e400", "-1e400", "1E2", "0.0", "-0", "-0.0", "5e-324"]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf"]),             # not JSON
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
strings = st.one_of(
    st.sampled_from(["+", "#", "a/b", "x/+/#", "\x00", "nul\x00here", "$SYS/x", "A", "B", "", "heartbeat"]),
    st.text(alphabet=st.sampled_from("+#/\x00ab\x1f é"), max_size=12),
    st.integers(min_value=10_000, max_value=200_000).map(lambda n: "x" * n),    # huge strings
).map(json.dumps)
deep = st.integers(min_value=1, max_value=3000).map(lambda d: "[" * d + "]" * d)
values = st.one_of(numbers, strings, deep, st.sampled_from(["true", "false", "null", "{}", "[]"]))


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(sorted(TOPICS)))
    _type, title = TOPICS[topic]
    fields = {"title": json.dumps(draw(st.sampled_from([title, title, "x+#/"])))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        fields[name] = draw(values)
    text = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"
    return topic, text.encode()


def integers_are_int64(value: Any) -> bool:
    """No float that is integral where an int was meant is checkable only per schema; what holds
    for every accepted payload: every int is within int64 or the schema declared it as a number."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is float and not math.isfinite(item):
            return False
        if type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return True


def expected_verdict(plant: TestPlant, topic: str, body: bytes) -> bool:
    """True when the bus should accept the body (decodes, and valid against its bound type)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    type_ = TOPICS[topic][0] if topic != "experiment" and topic != "heartbeats" else None
    if topic == "heartbeats":
        type_ = "sched.machine_heartbeat" if payload.get("title") == "heartbeat" else None
    if topic == "experiment":
        type_ = "pasta.killing_machine" if payload.get("title") == "KillingMachine" else None
    if type_ is None:
        return False
    return plant.runtime.bus.schemas.errors(type_, payload) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(bodies(), min_size=10, max_size=30))
def test_adversarial_json_is_handled_or_dead_lettered_and_nothing_crashes(pasta, messages):
    plant = pasta(seed=3)
    plant.advance(15)  # discovery done, a leader elected, blades assigned
    before = len(plant.dead_letters)
    accepted = 0
    for topic, body in messages:
        plant.publish_raw(topic, body)
        accepted += expected_verdict(plant, topic, body)
        plant.advance(0.2)
    plant.advance(20)  # a failover's worth: the state the leader saved is merged by the shadow if it leads
    letters = plant.dead_letters[before:]
    reasons = {d.reason for d in letters}
    assert reasons <= {"decode_error", "invalid", "unknown_type", "refused"}, [(d.reason, d.detail) for d in letters]
    assert all(d.detail for d in letters)
    assert len([d for d in letters if d.topic in TOPICS]) == len(messages) - accepted, [d.detail for d in letters]
    for envelope in plant.sent("#"):
        assert integers_are_int64(envelope.payload)
    states = {name: s.state for name, s in plant.runtime.supervisors.items()}
    assert set(states.values()) == {"running"}, states
    assert not plant.summary.restarts
    scheduler = next(plant.component(n) for n in ("scheduler-0", "scheduler-1") if plant.component(n).leading)
    assert all(type(mid) is int and 0 <= mid <= INT64[1] for mid in scheduler.machines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(bodies())
def test_what_the_schemas_accept_has_integers_only_where_they_say_integer(pasta_schemas, message):
    """The same bodies against the schemas alone, many more of them: an accepted payload's
    integer fields hold Python ints within int64 (or the field's declared range)."""
    topic, body = message
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    type_ = TOPICS[topic][0]
    schema = pasta_schemas.get(type_)
    if pasta_schemas.errors(type_, payload):
        return
    for name, spec in schema.schema.get("properties", {}).items():
        if spec.get("type") == "integer" and name in payload:
            value = payload[name]
            assert type(value) is int, (name, value)
            assert max(spec.get("minimum", INT64[0]), INT64[0]) <= value <= min(spec.get("maximum", INT64[1]),
                                                                                INT64[1])
