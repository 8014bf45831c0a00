"""The report: a readable cost table per scope in the CLI, the same figures
as JSON, and partial data never shown as complete."""
import json

from jobs.__main__ import render
from jobs.budget_check.alerts import AlertState
from jobs.budget_check.plan import ScopeObservation, plan
from jobs.budget_check.report import details

from tests.budget_check.helpers import SUB, at, budget, data, row, settings, steady

NOW = at("2026-11-27T07:00")


def report_of(costs, cfg=None, now=NOW):
    cfg = cfg or settings()
    result = plan([ScopeObservation(SUB, costs=costs)], [budget(cfg)], AlertState(), now, cfg)
    return details(result)


def cli(det):
    return render({"job": "budget-check", "run_id": "r1", "trigger": "cli", "dry_run": True,
                   "now": "2026-11-27T07:00:00Z", "status": "succeeded", "actions": [], "errors": [],
                   "summary": {}, "details": det})


COSTS = data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-26", group="rg-web"),
             steady("Storage", 2, "2026-10-01", "2026-11-26", group="rg-data"),
             row("2026-11-27", "Storage", 1, group="rg-data"))


def test_the_cli_shows_a_cost_table_per_scope_with_a_total():
    out = cli(report_of(COSTS))
    guid = SUB.rsplit("/", 1)[1]
    assert (f"Cost of subscription {guid} in November 2026, budget $500.00; data to Nov 26 (1 day old)"
            in out)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("service"))
    assert " ".join(lines[header].split()) == "service month to date forecast share of budget"
    assert [" ".join(line.split()) for line in lines[header + 2:header + 5]] == [
        "Virtual Machines 260.00 300.00 52.0%",
        "Storage 53.00 60.00 10.6%",
        "Total 313.00 360.00 62.6%"]
    assert "by resource group" in out


def test_the_json_carries_the_same_figures_and_how_they_were_made():
    [scope] = report_of(COSTS)["scopes"]
    assert scope["month_to_date"]["total"] == 313.0
    assert scope["month_to_date"]["by_service"][0] == {
        "service": "Virtual Machines", "month_to_date": 260.0, "forecast": 300.0, "share_of_budget": 52.0}
    assert scope["month_to_date"]["by_resource_group"] == [
        {"resource_group": "rg-web", "month_to_date": 260.0}, {"resource_group": "rg-data", "month_to_date": 53.0}]
    assert scope["forecast"]["total"] == 360.0
    # Nov 26 ended 7 h before the run: partial, not a complete day (24 settle hours)
    assert scope["forecast"]["method"].startswith("300.00 usage for the complete days to Nov 25 + "
                                                  "trimmed mean of 7 days")
    assert scope["forecast"]["confidence"] == "normal"
    assert scope["freshness"] == {"last_complete_day": "2026-11-26", "age_days": 1, "stale": False,
                                  "text": "data to Nov 26 (1 day old)"}
    assert scope["budget"]["state"] == "missing"
    assert [t["status"] for t in scope["thresholds"]] == ["below", "below"]
    assert scope["partial"] is False
    json.dumps(report_of(COSTS))  # stored as-is in the run report


def test_partial_data_is_flagged_in_the_table_title_and_the_json():
    det = report_of(data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-26"), partial=True,
                         reason="throttled past the 60 s wait cap"))
    assert "PARTIAL (throttled past the 60 s wait cap): figures are at least these" in det["tables"][0]["title"]
    [scope] = det["scopes"]
    assert scope["partial"] is True
    assert scope["partial_reason"] == "throttled past the 60 s wait cap"
    assert all(t["status"] != "below" for t in scope["thresholds"])


def test_a_scope_without_cost_data_says_so():
    cfg = settings()
    result = plan([ScopeObservation(SUB, cost_error="timeout")], [budget(cfg)], AlertState(), NOW, cfg)
    det = details(result)
    assert det["tables"][0]["rows"] == [["(no cost data)", "", "", ""]]
    assert det["scopes"][0]["problems"] == ["no cost data: timeout"]


def test_anomalies_and_drift_are_in_the_json():
    costs = data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-26"),
                 steady("Azure OpenAI", 5, "2026-11-20", "2026-11-26"))
    [scope] = report_of(costs)["scopes"]
    assert [(a["kind"], a["service"]) for a in scope["anomalies"]] == [("new-service", "Azure OpenAI")]


def test_the_cli_shows_the_forecast_confidence_and_the_anomalies():
    costs = data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-26"),
                 steady("Azure OpenAI", 5, "2026-11-20", "2026-11-26"),
                 row("2026-11-23", "Virtual Machines", 300, charge_type="Purchase"))
    out = cli(report_of(costs))
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert any(line.startswith("forecast 655.00, normal confidence: 280.00 usage for the complete days to "
                               "Nov 25") and "+ 300.00 one-off charges" in line for line in lines), out
    assert ("new-service: Azure OpenAI is new this month: $35.00 so far, nothing in October" in lines), out
    early = cli(report_of(data(steady("Virtual Machines", 10, "2026-10-01", "2026-11-01")), now=at("2026-11-03T07:00")))
    assert "low confidence" in early.split("Forecast")[1], early
