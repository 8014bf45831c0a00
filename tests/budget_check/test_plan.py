"""Plan tests: thresholds crossed (actual and forecast), one alert per
threshold per month across runs, a failed notification retried, month
rollover, partial data that never claims too much."""
import pytest

from jobs.budget_check.alerts import AlertState, settle
from jobs.budget_check.budget import parse_budget
from jobs.budget_check.plan import ScopeObservation, plan
from jobs.model import Outcome

from tests.budget_check.helpers import SUB, SUB2, at, budget, data, row, settings, steady

NOW = at("2026-11-27T07:00")
IN_SHAPE = {"name": "ops-monthly", "eTag": "e1", "properties": {
    "category": "Cost", "amount": 500, "timeGrain": "Monthly",
    "timePeriod": {"startDate": "2026-01-01T00:00:00Z"},
    "forecastSpend": {"amount": 300.0, "unit": "USD"},
    "notifications": {
        "a": {"enabled": True, "operator": "GreaterThan", "threshold": 80, "thresholdType": "Actual",
              "contactEmails": ["finops@example.org"], "locale": "en-us"},
        "b": {"enabled": True, "operator": "GreaterThan", "threshold": 100, "thresholdType": "Forecasted",
              "contactEmails": ["finops@example.org"], "locale": "en-us"}}}}


def observe(costs, scope=SUB, budget_arm=IN_SHAPE, **kw):
    return ScopeObservation(scope, costs=costs, budget=parse_budget(budget_arm) if budget_arm else None, **kw)


def run(costs, state=None, now=NOW, cfg=None, notify_fails=False, **obs):
    """One run: plan, apply (notify succeeds unless told), settle, store as JSON."""
    cfg = cfg or settings()
    state = state or AlertState()
    result = plan([observe(costs, **obs)], [budget(cfg)], state, now, cfg)
    outcomes = [Outcome(a, a.verdict or ("failed" if notify_fails and a.kind == "notify" else "succeeded"))
                for a in result.actions]
    stored = AlertState.from_json(settle(state, result.state, outcomes).to_json())
    return result, stored


def notes(result):
    return [a for a in result.actions if a.kind == "notify"]


def spend(per_day, last="2026-11-26", first="2026-10-01"):
    """One service at a flat daily cost; today (Nov 27) has no rows yet."""
    return data(steady("Virtual Machines", per_day, first, last))


def two_levels(before, after):
    """A service at ``before`` a day to Nov 19, then ``after`` a day Nov 20-26."""
    return data(steady("Virtual Machines", before, "2026-10-01", "2026-11-19"),
                steady("Virtual Machines", after, "2026-11-20", "2026-11-26"))


@pytest.mark.parametrize("case, costs, operator, alerted", [
    # budget $500: alert when actual > $400, or forecast > $500 (see test_costs for the method)
    ("well below: 260 actual, 300 forecast", spend(10), "GreaterThan", []),
    ("close but below: 390 / 450", spend(15), "GreaterThan", []),
    ("actual only: 416 / 480", spend(16), "GreaterThan", ["actual-80"]),
    ("forecast only: 393 / 509", two_levels(10, 29), "GreaterThan", ["forecast-100"]),
    ("both: 442 / 510", spend(17), "GreaterThan", ["actual-80", "forecast-100"]),
    ("exactly $400 is not over it", spend(16, last="2026-11-25"), "GreaterThan", []),
    ("exactly $400 reaches it", spend(16, last="2026-11-25"), "GreaterThanOrEqualTo", ["actual-80"]),
])
def test_thresholds_crossed_by_actual_or_forecast_send_one_alert_each(case, costs, operator, alerted):
    result, _ = run(costs, cfg=settings(operator=operator))
    assert [n.target.rsplit(":", 1)[1] for n in notes(result)] == alerted, case
    [scope] = result.scopes
    assert [c.threshold.key for c in scope.thresholds if c.status == "crossed"] == alerted
    assert all(c.status == "below" for c in scope.thresholds if c.threshold.key not in alerted)


def test_an_alert_names_the_amounts_the_top_services_and_its_key():
    costs = data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-26"),
                 steady("Storage", 5, "2026-10-01", "2026-11-26"),
                 steady("Key Vault", 0.5, "2026-10-01", "2026-11-26"),
                 steady("Bandwidth", 0.1, "2026-10-01", "2026-11-26"))
    result, _ = run(costs, cfg=settings(thresholds=["$300", "100% forecast"]))
    [alert] = notes(result)
    assert alert.target == f"budget:{SUB}:2026-11:actual-60"
    text = alert.params["text"]
    assert text.startswith(f"Cost of subscription {SUB.rsplit('/', 1)[1]} this month is $405.60, 81% of "
                           "the $500.00 budget (alert at 300 USD actual).")
    assert "Top services: Virtual Machines $260.00, Storage $130.00, Key Vault $13.00." in text
    assert "First budget alert this month." in text
    assert "Data to Nov 26 (1 day old)." in text
    assert alert.params["facts"]["Month to date"] == "$405.60"


def test_no_repeat_alert_across_runs_and_the_next_one_says_what_changed_since():
    cfg = settings(thresholds=["80% actual", "90% actual"])
    first, state = run(spend(16, last="2026-11-26"), cfg=cfg)   # 416: 80% crossed
    assert [a.target.rsplit(":", 1)[1] for a in notes(first)] == ["actual-80"]
    again, state = run(spend(16, last="2026-11-26"), state, now=at("2026-11-27T19:00"), cfg=cfg)
    assert notes(again) == []
    assert [c.status for c in again.scopes[0].thresholds] == ["alerted", "below"]
    assert again.scopes[0].thresholds[0].note == "alerted on Nov 27"
    later, state = run(data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-27"),
                            steady("Storage", 20, "2026-11-27", "2026-11-28")),
                       state, now=at("2026-11-29T07:00"), cfg=cfg)  # 432 + 40 = 472: 90% crossed
    [alert] = notes(later)
    assert alert.target.endswith(":actual-90")
    assert "+$56.00 since the 80% actual alert on Nov 27." in alert.params["text"]
    assert "Top services: Storage $40.00 (+$40.00), Virtual Machines $432.00 (+$16.00)." in alert.params["text"]
    quiet, _ = run(data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-28")), state,
                   now=at("2026-11-29T19:00"), cfg=cfg)
    assert notes(quiet) == []


def test_a_failed_notification_is_sent_again_next_run_and_then_never_again():
    failed, state = run(spend(16), notify_fails=True)
    assert len(notes(failed)) == 1
    assert state.sent(SUB, "2026-11") == {}
    retried, state = run(spend(16), state, now=at("2026-11-27T19:00"))
    assert [a.key for a in notes(retried)] == [a.key for a in notes(failed)]
    assert set(state.sent(SUB, "2026-11")) == {"actual-80"}
    done, _ = run(spend(16), state, now=at("2026-11-28T07:00"))
    assert notes(done) == []


def test_one_failed_notification_does_not_lose_or_repeat_the_other():
    cfg = settings()
    costs = spend(17)  # both thresholds crossed
    state = AlertState()
    result = plan([observe(costs)], [budget(cfg)], state, NOW, cfg)
    assert [a.target.rsplit(":", 1)[1] for a in notes(result)] == ["actual-80", "forecast-100"]
    outcomes = [Outcome(a, "failed" if a.target.endswith("forecast-100") else "succeeded")
                for a in result.actions]
    kept = settle(state, result.state, outcomes)
    assert set(kept.sent(SUB, "2026-11")) == {"actual-80"}
    again = plan([observe(costs)], [budget(cfg)], kept, at("2026-11-27T19:00"), cfg)
    assert [a.target.rsplit(":", 1)[1] for a in notes(again)] == ["forecast-100"]


def test_a_new_month_starts_with_nothing_sent():
    _, state = run(spend(16))
    assert set(state.sent(SUB, "2026-11")) == {"actual-80"}
    december = data(steady("Virtual Machines", 16, "2026-11-01", "2026-12-26"), start="2026-11-01")
    result, state = run(december, state, now=at("2026-12-27T07:00"))
    assert [a.target for a in notes(result)] == [f"budget:{SUB}:2026-12:actual-80"]
    assert "First budget alert this month." in notes(result)[0].params["text"]
    assert state.sent(SUB, "2026-11") == {}  # November is forgotten
    assert set(state.sent(SUB, "2026-12")) == {"actual-80"}


def test_month_rollover_day_one_judges_the_new_month_only():
    _, state = run(spend(16))
    # Dec 1, 07:00: data reaches Nov 30 (November spent 480); December has nothing yet
    result, state = run(spend(16, last="2026-11-30"), state, now=at("2026-12-01T07:00"))
    [scope] = result.scopes
    assert scope.month == "2026-12" and scope.mtd.total == 0
    assert notes(result) == []
    assert scope.forecast.confidence == "low"
    assert [c.status for c in scope.thresholds] == ["below", "below"]  # 496 forecast < 500


def test_a_low_confidence_forecast_does_not_page():
    # Dec 2: one complete day, and November ran at $20/day: forecast 620 > 500
    costs = data(steady("Virtual Machines", 20, "2026-11-01", "2026-12-01"), start="2026-11-01")
    result, _ = run(costs, now=at("2026-12-02T07:00"))
    forecast_check = result.scopes[0].thresholds[1]
    assert (forecast_check.threshold.key, forecast_check.status) == ("forecast-100", "held")
    assert notes(result) == []


@pytest.mark.parametrize("case, per_day, statuses, alerts", [
    # partial sum 416 > 400: the 80% crossing is proven; the forecast is not judged
    ("crossing proven by the partial sum", 16, ["crossed", "unknown"], ["actual-80"]),
    # partial sum 260 < 400: the true cost may be higher, so no "below"
    ("no conclusion below", 10, ["unknown", "unknown"], []),
])
def test_partial_data_sends_only_what_it_proves_and_says_partial(case, per_day, statuses, alerts):
    costs = data(steady("Virtual Machines", per_day, "2026-10-01", "2026-11-26"), partial=True,
                 reason="throttled by Cost Management past the 60 s wait cap")
    result, _ = run(costs)
    [scope] = result.scopes
    assert scope.partial and [c.status for c in scope.thresholds] == statuses, case
    assert [a.target.rsplit(":", 1)[1] for a in notes(result)] == alerts
    [flag] = [a for a in result.actions if a.kind == "partial-costs"]
    assert flag.verdict == "failed"  # the run does not claim to be complete
    assert "figures are lower bounds" in flag.reason
    for alert in notes(result):
        assert "at least $416.00" in alert.params["text"]
        assert "Partial data (throttled by Cost Management past the 60 s wait cap)" in alert.params["text"]
    assert scope.anomalies == ()
    assert "anomalies not judged on partial data" in scope.problems


def test_partial_data_with_credits_proves_nothing():
    costs = data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-26"), row("2026-11-10", "Credit", -50),
                 partial=True, reason="throttled")
    result, _ = run(costs)
    assert notes(result) == []
    assert [c.status for c in result.scopes[0].thresholds] == ["unknown", "unknown"]


def test_costs_in_another_currency_are_not_judged_against_the_budget():
    costs = data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-26", currency="EUR"))
    result, _ = run(costs)
    [mismatch] = [a for a in result.actions if a.kind == "currency-mismatch"]
    assert mismatch.verdict == "failed"
    assert mismatch.reason.startswith("costs are in EUR but the budget is in USD")
    assert notes(result) == [] and result.scopes[0].thresholds == ()


DRIFTED_EUR = {**IN_SHAPE, "properties": {**IN_SHAPE["properties"], "amount": 450,
                                          "currentSpend": {"amount": 400.0, "unit": "EUR"}}}


@pytest.mark.parametrize("case, costs, budget_arm, obs", [
    ("missing budget, costs in EUR",
     data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-26", currency="EUR")), None, {}),
    ("drifted budget, costs in EUR",
     data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-26", currency="EUR")), DRIFTED_EUR, {}),
    # the cost query failed: the budget's own spend unit is its billing account's currency
    ("drifted budget spending EUR, no costs", None, DRIFTED_EUR, {"cost_error": "timeout"}),
])
def test_a_scope_billed_in_another_currency_gets_no_budget_write(case, costs, budget_arm, obs):
    result, _ = run(costs, budget_arm=budget_arm, **obs)
    assert not [a for a in result.actions if a.kind in ("create-budget", "update-budget") and not a.verdict], case
    [refused] = [a for a in result.actions if a.kind == "budget-currency"]
    assert refused.verdict == "failed", case
    assert refused.target == f"{SUB}/providers/Microsoft.Consumption/budgets/ops-monthly"
    assert refused.reason == (f"budget not written: {SUB} is billed in EUR but its budget is configured "
                              "in USD (OPS_BUDGET_CHECK__SCOPES or OPS_BUDGET_CHECK__CURRENCY)"), case


def test_stale_data_is_a_warning_and_still_judged():
    result, _ = run(spend(16, last="2026-11-22"))
    [stale] = [a for a in result.actions if a.kind == "stale-data"]
    assert stale.verdict == "skipped"
    assert stale.reason == "cost data is stale: data to Nov 22 (5 days old); expected at most 2 days"
    assert [a.target.rsplit(":", 1)[1] for a in notes(result)] == []  # 352 < 400; forecast 352+8x16=480


def test_a_failed_cost_query_fails_its_scope_and_leaves_the_others_alone():
    cfg = settings()
    budgets = cfg.scope_budgets([SUB, SUB2])
    result = plan([ScopeObservation(SUB, cost_error="HttpResponseError: 403 Forbidden",
                                    budget=parse_budget(IN_SHAPE)),
                   ScopeObservation(SUB2, costs=spend(16), budget=parse_budget(IN_SHAPE))],
                  budgets, AlertState(), NOW, cfg)
    failed = [a for a in result.actions if a.verdict == "failed"]
    assert [(a.kind, a.target) for a in failed] == [("cost-query", SUB)]
    assert [a.target for a in notes(result)] == [f"budget:{SUB2}:2026-11:actual-80"]
    assert result.scopes[0].problems == ("no cost data: HttpResponseError: 403 Forbidden",)


def test_anomalies_are_named_in_the_alert():
    costs = data(steady("Virtual Machines", 16, "2026-10-01", "2026-11-26"),
                 steady("Azure OpenAI", 5, "2026-11-20", "2026-11-26"))
    result, _ = run(costs)
    [alert] = [a for a in notes(result) if a.target.endswith("actual-80")]
    assert "Anomalies: Azure OpenAI is new this month: $35.00 so far, nothing in October." in alert.params["text"]


def test_the_budget_forecast_is_cross_checked():
    result, _ = run(spend(10))
    assert result.scopes[0].cross_check.text == (
        "Azure's budget forecast is $300.00; ours is $300.00, +$0.00 (+0.0%)")


def test_the_state_is_stored_as_plain_json():
    _, state = run(spend(16))
    assert state.to_json() == {"version": 1, "scopes": {SUB: {"month": "2026-11", "sent": {
        "actual-80": {"at": "2026-11-27T07:00:00Z", "actual": 416.0, "forecast": 480.0,
                      "services": {"Virtual Machines": 416.0}}}}}}


def test_a_state_from_another_version_is_refused():
    with pytest.raises(ValueError, match="budget-check state version 2 is not supported"):
        AlertState.from_json({"version": 2})


def test_a_drifted_budget_and_an_alert_are_planned_together():
    result, _ = run(spend(16), budget_arm={**IN_SHAPE, "properties": {**IN_SHAPE["properties"], "amount": 450}})
    assert [a.kind for a in result.actions] == ["update-budget", "notify"]
    assert result.scopes[0].budget_status.drift == ("amount is 450, settings say 500",)


def test_a_budget_is_not_created_while_the_billing_currency_is_unknown():
    result, _ = run(None, budget_arm=None, cost_error="HttpResponseError: 403 Forbidden")
    assert not [a for a in result.actions if a.kind == "create-budget" and not a.verdict]
    [held] = [a for a in result.actions if a.kind == "budget-currency"]
    assert held.verdict == "skipped"
    assert held.reason == (f"budget not created yet: the billing currency of {SUB} is unknown "
                           "(no cost data); it is created once a run reads the scope's costs")
