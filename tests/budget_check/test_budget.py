"""The Azure budget kept in shape: created when missing, updated in place
(eTag, start date kept) when drifted, left alone when in shape."""
import json
from datetime import date

import pytest

from jobs.budget_check.budget import budget_actions, drift, parse_budget

from tests.budget_check.helpers import EMAIL, SUB, budget, settings

TODAY = date(2026, 11, 27)
TARGET = f"{SUB}/providers/Microsoft.Consumption/budgets/ops-monthly"


def arm(amount=500, notifications=None, start="2025-03-01T00:00:00Z", **props):
    """A budget as Azure returns it (budget.as_dict() of azure-mgmt-consumption)."""
    if notifications is None:
        notifications = {
            "Actual_GreaterThan_80_Percent": note(80, "Actual"),
            "Forecasted_GreaterThan_100_Percent": note(100, "Forecasted")}
    return {"id": TARGET, "name": "ops-monthly", "eTag": '"1d9f3c"',
            "properties": {"category": "Cost", "amount": amount, "timeGrain": "Monthly",
                           "timePeriod": {"startDate": start, "endDate": "2035-02-28T00:00:00Z"},
                           "notifications": notifications,
                           "currentSpend": {"amount": 212.5, "unit": "USD"},
                           "forecastSpend": {"amount": 480.0, "unit": "USD"}, **props}}


def note(threshold, kind="Actual", emails=(EMAIL,), **kw):
    return {"enabled": True, "operator": "GreaterThan", "threshold": threshold, "thresholdType": kind,
            "contactEmails": list(emails), "contactGroups": [], "contactRoles": [], "locale": "en-us", **kw}


def plan_budget(observed_arm, error=None, **config):
    cfg = settings(**config)
    observed = parse_budget(observed_arm) if observed_arm else None
    return budget_actions(budget(cfg), observed, error, cfg, TODAY)


def test_a_budget_in_shape_needs_nothing():
    actions, status = plan_budget(arm())
    assert actions == [] and status.state == "in shape"


def test_a_missing_budget_is_created_from_the_first_of_this_month():
    [action], status = plan_budget(None)
    assert (action.kind, action.target, status.state) == ("create-budget", TARGET, "missing")
    body = action.params["body"]
    assert "eTag" not in body
    assert body["properties"]["timePeriod"] == {"startDate": "2026-11-01T00:00:00Z"}
    assert body["properties"]["amount"] == 500.0
    assert body["properties"]["notifications"]["Actual_GreaterThan_80_Percent"] == {
        "enabled": True, "operator": "GreaterThan", "threshold": 80.0, "thresholdType": "Actual",
        "contactEmails": [EMAIL], "contactGroups": [], "contactRoles": [], "locale": "en-us"}
    assert action.reason == "create budget ops-monthly: 500 USD a month, alerts at 80% actual, 100% forecast"
    json.dumps(action.params)  # apply and the run report take it as JSON


@pytest.mark.parametrize("case, observed, config, words", [
    ("amount", arm(amount=400), {}, ["amount is 400, settings say 500"]),
    ("missing notification", arm(notifications={"a": note(80)}), {}, ["no notification at 100% forecast"]),
    ("extra notification", arm(notifications={"a": note(80), "b": note(100, "Forecasted"), "c": note(50)}), {},
     ["notification 50% actual is not in settings"]),
    ("threshold moved", arm(notifications={"a": note(90), "b": note(100, "Forecasted")}), {},
     ["no notification at 80% actual", "notification 90% actual is not in settings"]),
    ("emails", arm(notifications={"a": note(80, emails=["old@example.org"]), "b": note(100, "Forecasted")}), {},
     ["notification 80% actual: emails old@example.org, settings say finops@example.org"]),
    ("disabled", arm(notifications={"a": note(80, enabled=False), "b": note(100, "Forecasted")}), {},
     ["notification 80% actual: disabled"]),
    ("action group added in settings", arm(), {"action_groups": [
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ops/providers/"
        "microsoft.insights/actionGroups/ag-ops"]},
     ["notification 80% actual: action groups none, settings say /subscriptions/00000000-0000-0000-0000-"
      "000000000001/resourcegroups/ops/providers/microsoft.insights/actiongroups/ag-ops",
      "notification 100% forecast: action groups none, settings say /subscriptions/00000000-0000-0000-0000-"
      "000000000001/resourcegroups/ops/providers/microsoft.insights/actiongroups/ag-ops"]),
    ("money threshold", arm(), {"thresholds": ["$400", "100% forecast"]}, []),
    ("time grain", arm(timeGrain="Quarterly"), {}, ["time grain is Quarterly, not Monthly"]),
])
def test_drift_is_said_in_words(case, observed, config, words):
    cfg = settings(**config)
    assert drift(parse_budget(observed), budget(cfg), cfg) == words, case


def test_a_drifted_budget_is_updated_in_place_with_its_etag_and_start_date():
    [action], status = plan_budget(arm(amount=400, start="2025-03-01T00:00:00Z"))
    assert (action.kind, status.state) == ("update-budget", "drifted")
    body = action.params["body"]
    assert body["eTag"] == '"1d9f3c"'
    assert body["properties"]["timePeriod"] == {"startDate": "2025-03-01T00:00:00Z",
                                                "endDate": "2035-02-28T00:00:00Z"}
    assert body["properties"]["amount"] == 500.0
    assert action.reason == "budget drifted: amount is 400, settings say 500"
    assert action.params["drift"] == ["amount is 400, settings say 500"]


def test_an_update_keeps_the_budgets_filter():
    flt = {"dimensions": {"name": "ResourceGroupName", "operator": "In", "values": ["rg-web"]}}
    [action], _ = plan_budget(arm(amount=1, filter=flt))
    assert action.params["body"]["properties"]["filter"] == flt


def test_drift_is_only_reported_when_budgets_may_not_be_managed():
    [action], status = plan_budget(arm(amount=400), manage_budget=False)
    assert (action.kind, action.verdict, action.reason) == (
        "budget-unmanaged", "skipped", "budget drifted, not managed (OPS_BUDGET_CHECK__MANAGE_BUDGET=false)")
    assert status.drift == ("amount is 400, settings say 500",)


def test_without_contacts_in_settings_the_budgets_own_contacts_are_kept():
    observed = arm(amount=400, notifications={"a": note(80, emails=["owner@example.org"])})
    [action], status = plan_budget(observed, contact_emails=[])
    assert status.drift == ("amount is 400, settings say 500", "no notification at 100% forecast")
    notes = action.params["body"]["properties"]["notifications"]
    assert {n: v["contactEmails"] for n, v in notes.items()} == {
        "Actual_GreaterThan_80_Percent": ["owner@example.org"],
        "Forecasted_GreaterThan_100_Percent": ["owner@example.org"]}


def test_without_any_contact_a_missing_budget_is_not_created():
    [action], status = plan_budget(None, contact_emails=[])
    assert (action.kind, action.verdict, status.state) == ("budget-unmanaged", "skipped", "missing")
    assert action.reason == ("budget missing, but Azure needs a contact to notify: set "
                             "OPS_BUDGET_CHECK__CONTACT_EMAILS or __ACTION_GROUPS")


def test_a_budget_that_cannot_be_read_fails_that_scope_only():
    [action], status = plan_budget(None, error="AuthorizationFailed")
    assert (action.kind, action.verdict, status.state) == ("budget", "failed", "unknown")
    assert "AuthorizationFailed" in action.reason


def test_the_budgets_own_spend_and_forecast_are_read():
    b = parse_budget(arm())
    assert (b.current_spend, b.forecast_spend, b.unit, b.start_date) == (
        212.5, 480.0, "USD", "2025-03-01T00:00:00Z")
