"""OEE arithmetic on the ISO 22400-2 time model, checked against the literature's worked example."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oee_line.oee import combine, compute

MIN = 60.0


def test_the_literature_example_is_79_2_percent() -> None:
    # 480 min planned, 420 min run, ideal cycle 1 min, 400 made, 380 good (Nakajima / Vorne's worked example)
    f = compute(480 * MIN, 420 * MIN, 1 * MIN, total=400, good=380)
    assert f.availability == pytest.approx(0.875)
    assert f.performance == pytest.approx(400 / 420)
    assert f.quality == pytest.approx(0.95)
    assert f.oee == pytest.approx(0.7917, abs=5e-5)
    assert round(f.oee * 100, 1) == 79.2
    assert f.oee == pytest.approx(f.availability * f.performance * f.quality)


def test_nothing_planned_or_run_gives_zeros_not_a_division_error() -> None:
    f = compute(0.0, 0.0, 30.0, 0, 0)
    assert (f.availability, f.performance, f.quality, f.oee) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(("args", "names"), [
    ((100.0, 120.0, 1.0, 10, 5), "run_time 120.0 s exceeds planned_time 100.0"),
    ((100.0, 50.0, 1.0, 10, 11), "good=11, total=10"),
    ((-1.0, 0.0, 1.0, 0, 0), "planned_time=-1.0"),
])
def test_impossible_inputs_are_refused_naming_the_field(args: tuple[float, float, float, int, int],
                                                         names: str) -> None:
    with pytest.raises(ValueError, match=names):
        compute(*args)


def test_a_line_is_its_machines_weighted_by_planned_time() -> None:
    a = compute(480 * MIN, 420 * MIN, 1 * MIN, 400, 380)
    b = compute(240 * MIN, 240 * MIN, 2 * MIN, 100, 100)
    line = combine([a, b])
    weighted = (a.oee * a.planned_time + b.oee * b.planned_time) / (a.planned_time + b.planned_time)
    assert line.oee == pytest.approx(weighted)
    assert line.oee == pytest.approx(line.availability * line.performance * line.quality)
    assert (line.total, line.good) == (500, 480)


# no denormal run time: 1e-308 s with 2 parts makes performance inf and A x P x Q NaN
@given(planned=st.floats(1.0, 1e6), run_share=st.one_of(st.just(0.0), st.floats(1e-6, 1.0)),
       cycle=st.floats(0.01, 100.0),
       total=st.integers(0, 10_000), good_share=st.floats(0.0, 1.0))
def test_a_times_p_times_q_is_the_oee(planned: float, run_share: float, cycle: float, total: int,
                                       good_share: float) -> None:
    good = int(total * good_share)
    f = compute(planned, planned * run_share, cycle, total, good)
    if f.run_time > 0 and total > 0:
        assert f.availability * f.performance * f.quality == pytest.approx(f.oee, rel=1e-9)
    assert 0.0 <= f.availability <= 1.0 + 1e-12
    assert 0.0 <= f.quality <= 1.0
