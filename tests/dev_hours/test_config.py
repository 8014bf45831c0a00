"""dev-hours settings as app settings: OPS_DEV_HOURS__* values are parsed, and a
bad one is refused with a message naming the setting and the fault."""
from __future__ import annotations

from datetime import date

import pytest

from jobs.settings import SettingsError, load_settings


@pytest.fixture
def env(clean_env):
    monkeypatch = clean_env

    def setenv(**values):
        for key, value in values.items():
            monkeypatch.setenv(f"OPS_DEV_HOURS__{key.upper()}", value)
    return setenv


def test_defaults(env):
    s = load_settings().dev_hours
    assert (s.opt_in_tag, s.default_schedule, s.timezone) == ("ops-dev-hours", "Mon-Fri 08:00-19:00",
                                                              "Europe/London")
    assert (s.max_actions_per_run, s.scale_down_capacity, s.scale_down_sku) == (50, 1, None)


def test_lists_prices_and_zones_are_read_from_plain_app_settings(env):
    env(subscriptions="00000000-0000-0000-0000-0000000000AA, 00000000-0000-0000-0000-0000000000bb",
        resource_groups="RG-Dev,rg-test", holiday_country="us-ny",
        holiday_dates="2026-12-24,2026-12-31", timezone="america/new_york",
        prices="P1v3=0.169, B1=0.018,S1=0.1", scale_down_sku="b1", deny_tag_values="Live,UAT",
        default_schedule="Mon-Fri 07:00-18:00; tz=Europe/Berlin")
    s = load_settings().dev_hours
    assert s.subscriptions == ["00000000-0000-0000-0000-0000000000aa",
                               "00000000-0000-0000-0000-0000000000bb"]
    assert s.resource_groups == ["rg-dev", "rg-test"]
    assert (s.holiday_country, s.timezone, s.scale_down_sku) == ("US-NY", "America/New_York", "B1")
    assert s.holiday_dates == [date(2026, 12, 24), date(2026, 12, 31)]
    assert s.prices == {"P1v3": 0.169, "B1": 0.018, "S1": 0.1}
    assert s.deny_tag_values == ["live", "uat"]


@pytest.mark.parametrize("field, value, message", [
    ("timezone", "Europe/Lndon", "unknown time zone 'Europe/Lndon'"),
    ("holiday_country", "ZZ", "unknown holiday country 'ZZ'"),
    ("holiday_dates", "2026-12-24,24/12/2026", "'24/12/2026' is not a date YYYY-MM-DD"),
    ("default_schedule", "Mon-Fri 8-19", "'8' is not a time"),
    ("deny_name_pattern", "(prod", "not a valid regular expression"),
    ("subscriptions", "my-sub", "not a subscription id: my-sub"),
    ("scale_down_sku", "Y1", "Y1 (Dynamic) cannot be a scale-down target"),
    ("scale_down_sku", "X9", "'X9' is not an App Service SKU name"),
    ("prices", "P1v3:0.169", "'P1v3:0.169' is not NAME=PRICE"),
    ("prices", "P1v3=-1", "price of P1v3 is negative"),
    ("max_actions_per_run", "0", "greater than or equal to 1"),
    ("opt_in_tag", "dev/hours", "not a usable tag name"),
    ("typo_field", "1", "Extra inputs are not permitted"),
])
def test_a_bad_setting_is_refused_naming_it(env, field, value, message):
    env(**{field: value})
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert f"OPS_DEV_HOURS__{field.upper()}: " in str(err.value)
    assert message in str(err.value)
