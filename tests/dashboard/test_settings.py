"""settings.dashboard and --dashboard's [HOST:]PORT."""

from __future__ import annotations

import pytest

from forge_core.dashboard import DashboardSettings, parse_address
from forge_core.errors import SettingsError


def test_address_forms():
    assert parse_address("8080") == (None, 8080)
    assert parse_address("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_address("[::1]:9000") == ("::1", 9000)


@pytest.mark.parametrize("text", ["http", "host:", "70000"])
def test_bad_address_names_the_option(text):
    with pytest.raises(ValueError, match=r"--dashboard takes \[HOST:\]PORT"):
        parse_address(text)


def test_on_by_default_in_the_embedded_profile_only():
    default = DashboardSettings()
    assert default.on("embedded") and not default.on("distributed") and not default.on(None)
    assert DashboardSettings(enabled=True).on("distributed")
    assert not DashboardSettings(enabled=False).on("embedded")


def test_unknown_key_and_bad_path_are_errors_naming_the_field():
    with pytest.raises(SettingsError, match=r"settings\.dashboard\.prot"):
        DashboardSettings.load({"prot": 80}, where="settings.dashboard")
    with pytest.raises(SettingsError, match=r"settings\.dashboard\.path"):
        DashboardSettings.load({"path": "dash"}, where="settings.dashboard")
