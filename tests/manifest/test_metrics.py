"""runtime.metrics: one declaration read by the manifest, its schema and forge run --metrics."""

from __future__ import annotations

import pytest
import typer

from forge_core.cli.run import metrics_option
from forge_core.errors import SettingsError
from forge_core.manifest.metrics import MetricsSettings, parse_listen
from forge_core.manifest.validate import manifest_schema


@pytest.mark.parametrize(("text", "expected"), [
    ("9464", (None, 9464)), ("0.0.0.0:9464", ("0.0.0.0", 9464)), ("[::1]:0", ("::1", 0)),
])
def test_listen_is_host_and_port(text: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "host:", ":9464", "70000", "host:port"])
def test_a_bad_listen_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(SettingsError, match=r"runtime\.metrics\.listen"):
        MetricsSettings.load({"listen": text}, where="runtime.metrics")


def test_the_manifest_schema_s_runtime_metrics_is_the_model_s() -> None:
    assert manifest_schema()["properties"]["runtime"]["properties"]["metrics"] == MetricsSettings.json_schema()


def test_the_cli_option_sets_listen_or_turns_metrics_off() -> None:
    base = MetricsSettings(handler_latency=True)
    assert metrics_option(base, "127.0.0.1:0") == MetricsSettings(listen="127.0.0.1:0", handler_latency=True)
    assert metrics_option(base, "off").enabled is False
    with pytest.raises(typer.BadParameter, match="HOST"):
        metrics_option(base, "nine")
