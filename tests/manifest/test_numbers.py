"""Numbers no schema can refuse: inf, nan, floats beyond 1e12 and integers beyond int64, wherever they sit."""

from __future__ import annotations

from forge_core.manifest.numbers import INT64, MAX_FLOAT, number_issues, number_problem


def test_sane_numbers_and_non_numbers_have_no_problem():
    for value in (0, -1, 1.5, MAX_FLOAT, -MAX_FLOAT, INT64 - 1, -INT64, True, "inf", None):
        assert number_problem(value) is None, value


def test_each_insane_number_says_what_is_wrong():
    assert "not a finite number" in (number_problem(float("inf")) or "")
    assert "not a finite number" in (number_problem(float("nan")) or "")
    assert "at most 1e+12" in (number_problem(1e13) or "")
    assert "64-bit" in (number_problem(INT64) or "")
    assert "64-bit" in (number_problem(-INT64 - 1) or "")


def test_number_issues_name_the_place_of_every_bad_number_in_nested_documents():
    doc = {"transports": {"k": {"settings": {"librdkafka": {"linger.ms": 1e30}}}}, "list": [1, [float("nan")]]}
    issues = number_issues(doc)
    assert sorted(issue.path for issue in issues) == [("list", 1, 0), ("transports", "k", "settings", "librdkafka",
                                                                       "linger.ms")]
