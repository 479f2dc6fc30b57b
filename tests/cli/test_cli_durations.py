import pytest

from forge_core.cli.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("90m", 5400), ("24h", 86400), ("1d", 86400), ("1h30m", 5400), ("0.5s", 0.5), ("45", 45),
    ("1.5", 1.5), ("250ms", 0.25), ("1d2h3m4s", 93784), (" 2H ", 7200),
])
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"), ("abc", "not a duration"), ("5x", "not a duration"), ("1h 30m", "not a duration"),
    ("-5s", "not a duration"), ("0s", "longer than zero"), ("1h1h", "twice"), ("h", "not a duration"),
])
def test_refuses(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(text)


def test_formats_round_trip() -> None:
    for text in ("30s", "1h30m", "1d", "0.5s", "2d3h"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
    assert format_duration(5400) == "1h30m"


def test_bad_duration_is_a_usage_error(invoke, bakery) -> None:
    result = invoke("run", bakery, "--duration", "5x")
    assert result.exit_code == 2
    assert "not a duration: '5x'" in result.output


def test_duration_and_simulate_together_is_a_usage_error(invoke, bakery) -> None:
    result = invoke("run", bakery, "--duration", "5s", "--simulate", "1h")
    assert result.exit_code == 2
    assert "not both" in result.output
