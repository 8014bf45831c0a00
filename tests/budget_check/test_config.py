"""Settings of budget-check: scopes, amounts and thresholds as people write
them, each fault named with the app setting."""

import pytest

from jobs.budget_check.config import BudgetCheckSettings, parse_threshold
from jobs.settings import SettingsError, load_settings

from tests.budget_check.helpers import SUB, SUB2

G1, G2 = SUB.rsplit("/", 1)[1], SUB2.rsplit("/", 1)[1]


@pytest.fixture
def env(clean_env):
    return clean_env


def test_defaults_follow_the_seed_500_a_month_alert_at_400_and_at_forecast_100(env):
    s = load_settings()
    b = s.budget_check.scope_budgets([G1])[0]
    assert (b.scope, b.amount, b.currency) == (SUB, 500.0, "USD")
    assert [(t.kind, t.percent, t.limit(b.amount)) for t in b.thresholds] == [
        ("actual", 80.0, 400.0), ("forecast", 100.0, 500.0)]
    assert s.budget_check.budget_name == "ops-monthly"
    assert s.budget_check.max_throttle_wait_seconds == 60


@pytest.mark.parametrize("written, amount, percent, kind", [
    ("$400", 500, 80.0, "actual"),          # the seed's alert
    ("400 USD actual", 500, 80.0, "actual"),
    ("USD 250 forecast", 500, 50.0, "forecast"),
    ("80%", 500, 80.0, "actual"),
    ("100 % Forecasted", 500, 100.0, "forecast"),
    ("$333", 1000, 33.3, "actual"),          # two decimals, as Azure keeps
    ("$1", 3, 33.33, "actual"),
])
def test_a_threshold_in_money_becomes_a_percentage_of_the_amount(written, amount, percent, kind):
    b = BudgetCheckSettings(amount=amount, thresholds=[written]).scope_budgets([SUB])[0]
    assert [(t.percent, t.kind) for t in b.thresholds] == [(percent, kind)]


@pytest.mark.parametrize("text, fault", [
    ("400", "needs a unit: '400%' for a percentage of the budget, '$400' or '400 USD' for money"),
    ("80% soon", "'soon' is not actual or forecast"),
    ("eighty", "is not a threshold"),
    ("$80%", "gives its unit twice"),
])
def test_an_unreadable_threshold_says_how_to_write_it(text, fault):
    with pytest.raises(ValueError) as err:
        parse_threshold(text)
    assert fault in str(err.value)


@pytest.mark.parametrize("setting, value, fault", [
    ("OPS_BUDGET_CHECK__THRESHOLDS", "50%,60%,70%,80%,90%,100% forecast",
     "OPS_BUDGET_CHECK__THRESHOLDS: 6 thresholds given; an Azure budget keeps at most 5 notifications"),
    ("OPS_BUDGET_CHECK__THRESHOLDS", "$400, 80%",
     "'400 USD actual' and '80% actual' are the same threshold"),
    ("OPS_BUDGET_CHECK__THRESHOLDS", "$6000",
     "threshold '6000 USD actual' is 1200% of 500 USD; Azure takes more than 0% and at most 1000%"),
    ("OPS_BUDGET_CHECK__THRESHOLDS", " , ", "at least one threshold is needed"),  # "" means unset (default)
    ("OPS_BUDGET_CHECK__AMOUNT", "-5", "OPS_BUDGET_CHECK__AMOUNT: Input should be greater than 0"),
    ("OPS_BUDGET_CHECK__CURRENCY", "dollars", "'dollars' is not a three-letter currency code"),
    ("OPS_BUDGET_CHECK__SCOPES", "/subscriptions/not-a-guid",
     "'/subscriptions/not-a-guid' is not a budget scope"),
    ("OPS_BUDGET_CHECK__SCOPES", f"{G1}=lots", "OPS_BUDGET_CHECK__SCOPES"),
    ("OPS_BUDGET_CHECK__SCOPES", f"{G1}=", "is not SCOPE=AMOUNT[:CURRENCY]"),
    ("OPS_BUDGET_CHECK__SCOPES", f"{G1}, {SUB}", f"{SUB} is given twice"),
    ("OPS_BUDGET_CHECK__SCOPES", '[{"scope": "x"', "looks like JSON but is not valid JSON"),
    ("OPS_BUDGET_CHECK__SCOPES", f'[{{"scope": "{G1}", "amounts": 5}}]', "Extra inputs are not permitted"),
    ("OPS_BUDGET_CHECK__CONTACT_EMAILS", "ops at example", "not an email address: ops at example"),
    ("OPS_BUDGET_CHECK__ACTION_GROUPS", "ag-ops", "not an action group id: ag-ops"),
    ("OPS_BUDGET_CHECK__BUDGET_NAME", "my budget!", "is not a budget name"),
])
def test_a_bad_setting_is_named_with_its_fault(env, setting, value, fault):
    env.setenv(setting, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert fault in str(err.value)


def test_a_dollar_threshold_is_refused_for_a_budget_in_another_currency(env):
    env.setenv("OPS_BUDGET_CHECK__THRESHOLDS", "$400")
    env.setenv("OPS_BUDGET_CHECK__SCOPES", f"{G1}=1000:EUR")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert (f"OPS_BUDGET_CHECK__SCOPES: {SUB}: threshold '400 USD actual' is in USD but the budget "
            "is in EUR") in str(err.value)


def test_the_compact_scope_list_sets_amount_and_currency_per_scope(env):
    env.setenv("OPS_BUDGET_CHECK__THRESHOLDS", "80% actual, 100% forecast")
    env.setenv("OPS_BUDGET_CHECK__SCOPES",
               f"{G1}=1000:eur, /SUBSCRIPTIONS/{G2.upper()}/resourcegroups/rg-Web=200")
    budgets = load_settings().budget_check.scope_budgets(["ignored-when-scopes-are-set"])
    assert [(b.scope, b.amount, b.currency) for b in budgets] == [
        (SUB, 1000.0, "EUR"), (f"{SUB2}/resourceGroups/rg-Web", 200.0, "USD")]
    assert budgets[1].label == f"resource group rg-Web (subscription {G2})"


def test_a_json_scope_has_its_own_thresholds_and_contacts(env):
    env.setenv("OPS_BUDGET_CHECK__CONTACT_EMAILS", "shared@example.org")
    env.setenv("OPS_BUDGET_CHECK__SCOPES",
               f'[{{"scope": "{SUB}", "amount": 2000, "currency": "GBP", '
               f'"thresholds": "£1000, 90% forecast", "contact_emails": ["Team@Example.org"]}}, '
               f'{{"scope": "{G2}"}}]')
    first, second = load_settings().budget_check.scope_budgets()
    assert [(t.kind, t.percent) for t in first.thresholds] == [("actual", 50.0), ("forecast", 90.0)]
    assert first.contact_emails == ("team@example.org",)
    assert (second.amount, second.contact_emails) == (500.0, ("shared@example.org",))


def test_without_scopes_every_app_subscription_gets_the_shared_budget(env):
    env.setenv("OPS_SUBSCRIPTIONS", f"{G1},{G2}")
    env.setenv("OPS_BUDGET_CHECK__AMOUNT", "750")
    s = load_settings()
    assert [(b.scope, b.amount) for b in s.budget_check.scope_budgets(s.subscriptions)] == [
        (SUB, 750.0), (SUB2, 750.0)]


def test_thresholds_show_in_the_config_as_written_in_one_form(env):
    env.setenv("OPS_BUDGET_CHECK__THRESHOLDS", "$400, 100 % forecasted")
    assert load_settings().masked()["budget_check"]["thresholds"] == ["400 USD actual", "100% forecast"]
