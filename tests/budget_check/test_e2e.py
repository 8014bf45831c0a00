"""budget-check end to end against the sandbox: three scopes seeded with cost rows
and budgets (one budget missing, one drifted, one in shape), through the real
azure-mgmt-costmanagement and azure-mgmt-consumption clients, the runner, the
run store on Azurite, a local webhook receiver and the CLI.

The world (sandbox/worlds/budget_check.json) is pinned on 2026-11-20 with flat
daily costs, so every figure is exact. Scope A (budget 600) has spent 505.50
this month (84%) and is forecast at 775.00 (complete days to Nov 18: the run
is at 07:00 and Nov 19 has not settled; Storage's $40 day is trimmed out of its
run rate): both default thresholds (80% actual, 100% forecast) are crossed. Scope B (400) and its resource group rg-data (150)
are below every threshold.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs import service
from jobs.__main__ import render
from sandbox.apis import costmanagement as cm
from sandbox.server import Faults
from sandbox.world import load_world_file
from sandbox.webhook import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "sandbox" / "worlds" / "budget_check.json"
A, B = "0b000000-0000-0000-0000-00000000000a", "0b000000-0000-0000-0000-00000000000b"
SCOPE_A, SCOPE_B = f"/subscriptions/{A}", f"/subscriptions/{B}"
SCOPE_RG = f"{SCOPE_B}/resourceGroups/rg-data"
NOW = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)
EMAIL = "finops@example.org"
QUERY, BUDGET_READ, BUDGET_WRITE = ("Microsoft.CostManagement/query/action",
                                    "Microsoft.Consumption/budgets/read",
                                    "Microsoft.Consumption/budgets/write")
ALERT_A = (f"budget:{SCOPE_A}:2026-11:actual-80", f"budget:{SCOPE_A}:2026-11:forecast-100")


@pytest.fixture
def estate(world, app_env, monkeypatch):
    """The budget world, the three scopes in settings, notifications off."""
    for key in list(os.environ):
        if key.startswith("OPS_BUDGET_CHECK__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPS_BUDGET_CHECK__SCOPES", f"{SCOPE_A}=600, {SCOPE_B}=400, {SCOPE_RG}=150")
    monkeypatch.setenv("OPS_BUDGET_CHECK__CONTACT_EMAILS", EMAIL)
    monkeypatch.setenv("OPS_NOTIFY_KIND", "none")
    service.reset()
    world(WORLD)
    return app_env


@pytest.fixture
def receiver(monkeypatch):
    r = WebhookReceiver()
    monkeypatch.setenv("OPS_NOTIFY_KIND", "webhook")
    monkeypatch.setenv("OPS_NOTIFY_URL", r.url)
    service.reset()
    yield r
    r.stop()


def run(env, dry_run=False, now=NOW):
    before = len(env.sandbox.request_log())
    report = service.run("budget-check", trigger="cli", dry_run=dry_run, now=now)
    return report, env.sandbox.request_log()[before:]


def actions(report, status=None):
    return {(a["kind"], a["target"]): a for a in report["actions"] if status in (None, a["status"])}


def scope(report, key):
    return next(s for s in report["details"]["scopes"] if s["scope"] == key)


def budget_in_world(env, scope_id, name="ops-monthly"):
    return next((b for b in env.world.section("budgets", []) if b["scope"].lower() == scope_id.lower()
                 and b["name"] == name), None)


def only(monkeypatch, scopes):
    monkeypatch.setenv("OPS_BUDGET_CHECK__SCOPES", scopes)
    service.reset()


def seed_for(pattern, **rates):
    """A fault seed whose first draws for the cost query give ``pattern`` (True or
    "429": throttled; "500", "drop"; None or False: answered), with ``rates``
    (default: rate_429=0.5)."""
    rates = rates or {"rate_429": 0.5}
    wanted = ["429" if p is True else (p or None) for p in pattern]
    for seed in range(20000):
        faults = Faults()
        faults.configure({"seed": seed, "rules": [{"operation": "Microsoft.CostManagement/*", **rates}]})
        if [faults.draw(QUERY)[1] for _ in pattern] == wanted:
            return seed
    raise AssertionError(f"no seed gives {pattern}")


def expected_pages(env, scope_id, page_size=40):
    """Pages of a scope's query: its (day, service, charge type) rows from Oct 1 to today, and
    for a subscription the one page of its per resource group query."""
    sub, rg = cm.parse_scope(scope_id)
    keys = {(r["date"], r["service"], r["charge_type"]) for r in cm.cost_rows(env.world)
            if cm.in_scope(r, sub, rg) and r["date"] >= date(2026, 10, 1)}
    return math.ceil(len(keys) / page_size) + (0 if rg else 1)


# -- a first run, a second run ------------------------------------------------------------

def test_a_run_reads_each_scope_once_keeps_budgets_in_shape_and_reports_costs(estate):
    report, log = run(estate)

    # Costs: one query per scope (and a subscription's one-page query per resource group), one POST
    # per page, nothing per service; one budget read per scope.
    queries = [e for e in log if e["operation"] == QUERY]
    for scope_id in (SCOPE_A, SCOPE_B, SCOPE_RG):
        posted = [e for e in queries if e["path"].lower() == f"{scope_id}/providers/microsoft.costmanagement/query".lower()]
        assert len(posted) == expected_pages(estate, scope_id) > 1
        assert report["details"]["queries"][scope_id]["pages"] == len(posted)
    assert len(queries) == sum(expected_pages(estate, s) for s in (SCOPE_A, SCOPE_B, SCOPE_RG))
    assert {e["operation"] for e in log if "Microsoft.CostManagement" in e["operation"]} == {QUERY}
    assert [e["operation"] for e in log].count(BUDGET_READ) == 3

    # The missing budget is created (start date the first of this month), the drifted one updated
    # in place (same start date), the one in shape left alone: exactly two writes.
    done = actions(report, "succeeded")
    assert set(done) >= {("create-budget", f"{SCOPE_A}/providers/Microsoft.Consumption/budgets/ops-monthly"),
                         ("update-budget", f"{SCOPE_B}/providers/Microsoft.Consumption/budgets/ops-monthly")}
    assert sorted(e["status"] for e in log if e["operation"] == BUDGET_WRITE) == [200, 201]
    created = budget_in_world(estate, SCOPE_A)
    assert created["properties"]["amount"] == 600
    assert created["properties"]["timePeriod"]["startDate"] == "2026-11-01T00:00:00Z"
    assert {(n["thresholdType"], n["threshold"], tuple(n["contactEmails"]))
            for n in created["properties"]["notifications"].values()} == {
        ("Actual", 80, (EMAIL,)), ("Forecasted", 100, (EMAIL,))}
    updated = budget_in_world(estate, SCOPE_B)
    update = done[("update-budget", f"{SCOPE_B}/providers/Microsoft.Consumption/budgets/ops-monthly")]
    assert update["detail"].endswith(f"-> {updated['eTag']}), start date 2026-08-01 kept")
    assert updated["properties"]["amount"] == 400
    assert updated["properties"]["timePeriod"]["startDate"] == "2026-08-01T00:00:00Z"  # unchanged
    assert {n["threshold"] for n in updated["properties"]["notifications"].values()} == {80, 100}
    assert all(n["contactEmails"] == [EMAIL] for n in updated["properties"]["notifications"].values())
    assert scope(report, SCOPE_B)["budget"]["state"] == "drifted"
    assert any("amount is 300, settings say 400" in d for d in scope(report, SCOPE_B)["budget"]["drift"])
    assert scope(report, SCOPE_RG)["budget"]["state"] == "in shape"

    # Figures: exact month to date and forecast; anomalies named.
    a = scope(report, SCOPE_A)
    assert a["partial"] is False and a["freshness"]["last_complete_day"] == "2026-11-19"
    assert a["month_to_date"]["total"] == pytest.approx(505.5)
    assert {r["service"]: r["month_to_date"] for r in a["month_to_date"]["by_service"]} == pytest.approx(
        {"Azure App Service": 228.0, "Azure Database for PostgreSQL": 152.0, "Storage": 78.0,
         "Azure Cache for Redis": 47.5})
    # usage of Nov 1-18 (18 x 24.5 + Storage's 40) + the run rate x 12 days (Nov 19-30)
    assert a["forecast"]["total"] == pytest.approx(18 * 24.5 + 40 + 12 * 24.5, abs=0.01)
    assert a["forecast"]["window"] == ["2026-11-12", "2026-11-18"]
    assert {(x["kind"], x["service"]) for x in a["anomalies"]} == {
        ("new-service", "Azure Cache for Redis"), ("spike", "Storage")}
    assert {t["threshold"]: t["status"] for t in a["thresholds"]} == {
        "80% actual": "crossed", "100% forecast": "crossed"}
    assert {t["status"] for t in scope(report, SCOPE_B)["thresholds"]} == {"below"}
    # Azure's own forecast of the budget is set against ours (a scope whose budget existed).
    assert scope(report, SCOPE_RG)["forecast"]["azure"]["forecast"] == pytest.approx(
        76 + 4 * 11, abs=0.01)

    # Notifications are off: the alerts are skipped, not remembered.
    skipped = actions(report, "skipped")
    assert {t for k, t in skipped if k == "notify"} == set(ALERT_A)
    assert report["status"] == "succeeded"

    # A second run finds the budgets in shape and writes nothing.
    again, log = run(estate)
    assert not [e for e in log if e["operation"] == BUDGET_WRITE]
    assert not [a for a in again["actions"] if a["kind"] in ("create-budget", "update-budget")]
    assert {s["budget"]["state"] for s in again["details"]["scopes"]} == {"in shape"}


def test_an_update_carries_the_etag_and_a_stale_one_fails_then_the_next_run_updates(estate, monkeypatch):
    estate.world.section("costs", {})["require_etag_on_update"] = True  # an update without eTag is refused
    from jobs.budget_check import azure_io
    real_apply = azure_io.apply

    def someone_else_edits_first(action, ctx):
        if action.kind == "update-budget":
            budget_in_world(estate, SCOPE_B)["eTag"] = '"changed-by-someone"'
        return real_apply(action, ctx)

    monkeypatch.setattr(azure_io, "apply", someone_else_edits_first)
    report, _ = run(estate)
    failed = actions(report, "failed")[("update-budget", f"{SCOPE_B}/providers/Microsoft.Consumption/budgets/ops-monthly")]
    assert "There are changes made to Budget ops-monthly" in failed["error"]
    assert budget_in_world(estate, SCOPE_B)["properties"]["amount"] == 300  # untouched
    assert report["status"] == "failed"

    monkeypatch.setattr(azure_io, "apply", real_apply)
    report, _ = run(estate)  # reads the new eTag and updates in place
    assert actions(report, "succeeded")[("update-budget",
                                        f"{SCOPE_B}/providers/Microsoft.Consumption/budgets/ops-monthly")]
    assert budget_in_world(estate, SCOPE_B)["properties"]["amount"] == 400
    assert budget_in_world(estate, SCOPE_B)["properties"]["timePeriod"]["startDate"] == "2026-08-01T00:00:00Z"


# -- alerts -----------------------------------------------------------------------------------

def test_threshold_alerts_arrive_once_across_runs_and_again_next_month(estate, receiver):
    report, _ = run(estate)
    assert report["status"] == "succeeded"
    assert sorted(m["title"] for m in receiver.received) == [
        f"Budget 80% reached: subscription {A}", f"Forecast over 100% of budget: subscription {A}"]
    actual = next(m for m in receiver.received if m["title"].startswith("Budget 80%"))
    assert "$505.50, 84% of the $600.00 budget" in actual["text"]
    assert "Top services: Azure App Service $228.00" in actual["text"]
    assert "Azure Cache for Redis is new this month" in actual["text"]
    assert actual["facts"]["Data to"] == "Nov 19"

    report, _ = run(estate)  # the same day: nothing new
    assert len(receiver.received) == 2
    assert {t["status"] for t in scope(report, SCOPE_A)["thresholds"]} == {"alerted"}

    # December: a new month starts with nothing sent; its forecast crosses 100% again.
    estate.world.section("costs", {})["today"] = "2026-12-05"
    report, _ = run(estate, now=datetime(2026, 12, 5, 7, 0, tzinfo=timezone.utc))
    assert [m["title"] for m in receiver.received[2:]] == [f"Forecast over 100% of budget: subscription {A}"]
    assert scope(report, SCOPE_A)["month"] == "2026-12"


def test_a_failed_notification_is_a_failed_outcome_and_is_sent_again_next_run(estate, receiver):
    receiver.answers = [500]
    report, _ = run(estate)
    assert report["status"] == "failed"
    failed = [a for a in report["actions"] if a["kind"] == "notify" and a["status"] == "failed"]
    assert len(failed) == 1 and "HTTP 500" in failed[0]["error"]
    assert receiver.url not in str(report)  # the webhook URL is a secret
    assert len(receiver.received) == 2

    report, _ = run(estate)
    assert report["status"] == "succeeded"
    assert len(receiver.received) == 3 and receiver.received[2]["title"] == failed[0]["reason"]
    assert [a["target"] for a in report["actions"] if a["kind"] == "notify"] == [failed[0]["target"]]

    run(estate)
    assert len(receiver.received) == 3


def world_with(**costs):
    """The budget world with more in its costs section."""
    data = load_world_file(WORLD)
    data["costs"].update(costs)
    return data


def test_a_purchase_and_a_partial_day_do_not_make_a_false_forecast_alert(estate, world):
    # Scope B ($400, $7 a day of usage) buys a $100 reservation on Nov 18; Nov 19 is still partial
    # (40 % of its cost in). Counted once, the month ends near $310: no forecast alert.
    world(world_with(last_day_fraction=0.4, rows=[
        {"date": "today-2", "subscription": B, "resource_group": "", "service": "Virtual Machines",
         "cost": 100.0, "charge_type": "Purchase"}]))
    report, _ = run(estate)
    b = scope(report, SCOPE_B)
    assert b["month_to_date"]["total"] == pytest.approx(18 * 7 + 0.4 * 7 + 100)
    # usage Nov 1-18 + 7/day x 12 days (Nov 19 included: partial) + the purchase once
    assert b["forecast"]["total"] == pytest.approx(18 * 7 + 7 * 12 + 100)
    assert b["forecast"]["one_off"] == 100.0 and b["forecast"]["daily_rate"] == pytest.approx(7.0)
    assert {t["threshold"]: t["status"] for t in b["thresholds"]} == {"80% actual": "below",
                                                                     "100% forecast": "below"}
    assert not [a for a in report["actions"] if a["kind"] == "notify" and SCOPE_B + ":" in a["target"]]
    # Azure's own budget forecast (the sandbox's: complete days, usage average, one-offs once) agrees.
    assert b["forecast"]["azure"]["difference"] == pytest.approx(0.0, abs=0.01)
    # The purchase has no resource group: the per resource group query shows it apart.
    assert b["month_to_date"]["by_resource_group"][0] == {"resource_group": "(none)", "month_to_date": 100.0}


def test_a_scope_billed_in_eur_but_configured_in_usd_gets_no_budget_write(estate, world):
    world(world_with(billing_currencies={B: "EUR"}))
    report, log = run(estate)
    target = f"{SCOPE_B}/providers/Microsoft.Consumption/budgets/ops-monthly"
    refused = actions(report, "failed")[("budget-currency", target)]
    assert refused["error"] == (f"budget not written: {SCOPE_B} is billed in EUR but its budget is configured "
                                "in USD (OPS_BUDGET_CHECK__SCOPES or OPS_BUDGET_CHECK__CURRENCY)")
    writes = [e for e in log if e["operation"] == BUDGET_WRITE]
    assert [e["path"].lower() for e in writes] == [target.replace(SCOPE_B, SCOPE_A).lower()]  # A only
    assert budget_in_world(estate, SCOPE_B)["properties"]["amount"] == 300  # untouched
    assert ("currency-mismatch", SCOPE_B) in actions(report, "failed")
    assert report["status"] == "failed"


def test_a_dry_run_writes_nothing_and_sends_nothing(estate, receiver):
    report, log = run(estate, dry_run=True)
    assert not [e for e in log if e["method"] != "GET" and e["operation"] != QUERY]
    assert not [e for e in log if e["operation"] == BUDGET_WRITE]
    assert receiver.received == []
    assert {a["status"] for a in report["actions"]} == {"planned"}
    assert service.environment().store.load_state("budget-check", "alerts") == ({}, None)
    assert budget_in_world(estate, SCOPE_A) is None

    report, _ = run(estate)  # the real run still does all of it
    assert len(receiver.received) == 2 and budget_in_world(estate, SCOPE_A) is not None


# -- throttling -------------------------------------------------------------------------------

def test_429s_within_the_wait_cap_are_retried_and_the_costs_are_complete(estate, monkeypatch):
    only(monkeypatch, f"{SCOPE_A}=600")
    pages = expected_pages(estate, SCOPE_A)
    pattern = [False, True] + [False] * pages  # page 2 throttled once, then every page answers
    estate.sandbox.faults.configure({"seed": seed_for(pattern), "rules": [
        {"operation": "Microsoft.CostManagement/*", "rate_429": 0.5, "retry_after": 1}]})
    report, log = run(estate)
    assert [e["status"] for e in log if e["operation"] == QUERY] == [200, 429] + [200] * (pages - 1)
    assert report["details"]["queries"][SCOPE_A] == {"pages": pages, "throttled": 1, "transient_errors": 0,
                                                    "waited_seconds": 1.0}
    a = scope(report, SCOPE_A)
    assert a["partial"] is False and a["month_to_date"]["total"] == pytest.approx(505.5)
    assert not [x for x in report["actions"] if x["kind"] in ("partial-costs", "cost-query")]


def test_429s_past_the_wait_cap_leave_partial_costs_reported_as_partial(estate, monkeypatch):
    only(monkeypatch, f"{SCOPE_A}=600")
    monkeypatch.setenv("OPS_BUDGET_CHECK__MAX_THROTTLE_WAIT_SECONDS", "1")
    service.reset()
    estate.sandbox.faults.configure({"seed": seed_for([False, False, True, True]), "rules": [
        {"operation": "Microsoft.CostManagement/*", "rate_429": 0.5, "retry_after": 1}]})
    report, log = run(estate)
    # Two pages, then page 3 throttled: one wait of 1 s fits the cap, the second would not.
    assert [e["status"] for e in log if e["operation"] == QUERY] == [200, 200, 429, 429]
    a = scope(report, SCOPE_A)
    assert a["partial"] is True and "page 3 not read: throttled by Cost Management" in a["partial_reason"]
    assert "OPS_BUDGET_CHECK__MAX_THROTTLE_WAIT_SECONDS=1" in a["partial_reason"]
    partial = actions(report)[("partial-costs", SCOPE_A)]
    assert partial["status"] == "failed" and "figures are lower bounds" in partial["error"]
    assert report["status"] == "failed"
    assert "PARTIAL" in report["details"]["tables"][0]["title"]
    # Nothing is judged "below" on partial data, and no alert claims a forecast.
    assert {t["status"] for t in a["thresholds"]} == {"unknown"}
    assert not [x for x in report["actions"] if x["kind"] == "notify"]


def test_a_5xx_and_a_dropped_connection_are_retried_within_the_cap(estate, monkeypatch):
    only(monkeypatch, f"{SCOPE_A}=600")
    pages = expected_pages(estate, SCOPE_A)
    rates = {"rate_500": 0.3, "rate_drop": 0.3}
    estate.sandbox.faults.configure({"seed": seed_for(["drop", None, "500"] + [None] * pages, **rates),
                                     "rules": [{"operation": "Microsoft.CostManagement/*", **rates}]})
    report, log = run(estate)
    # The dropped first page is sent again after 1 s, the page answered 500 after 1 s too.
    assert [e["status"] for e in log if e["operation"] == QUERY] == [0, 200, 500] + [200] * (pages - 1)
    assert report["details"]["queries"][SCOPE_A] == {"pages": pages, "throttled": 0, "transient_errors": 2,
                                                    "waited_seconds": 2.0}
    assert scope(report, SCOPE_A)["partial"] is False


def test_a_failed_resource_group_query_leaves_the_costs_whole_and_says_so(estate, monkeypatch):
    only(monkeypatch, f"{SCOPE_A}=600")
    main = expected_pages(estate, SCOPE_A) - 1  # the last page is the per resource group query
    rates = {"rate_500": 0.5}
    estate.sandbox.faults.configure({"seed": seed_for([None] * main + ["500"] * 3, **rates),
                                     "rules": [{"operation": "Microsoft.CostManagement/*", **rates}]})
    report, log = run(estate, dry_run=True)
    assert [e["status"] for e in log if e["operation"] == QUERY] == [200] * main + [500] * 3
    a = scope(report, SCOPE_A)
    assert a["partial"] is False and a["month_to_date"]["total"] == pytest.approx(505.5)
    [problem] = a["problems"]
    assert problem.startswith("cost per resource group not read: HttpResponseError")
    out = render(report)
    assert "by resource group" not in out and "problem: cost per resource group not read" in out


def test_a_first_page_throttled_past_the_cap_is_a_failed_cost_query(estate, monkeypatch):
    only(monkeypatch, f"{SCOPE_A}=600")
    monkeypatch.setenv("OPS_BUDGET_CHECK__MAX_THROTTLE_WAIT_SECONDS", "0")
    service.reset()
    estate.sandbox.faults.configure({"seed": 1, "rules": [
        {"operation": "Microsoft.CostManagement/*", "rate_429": 1.0, "retry_after": 7}]})
    report, log = run(estate)
    assert [e["status"] for e in log if e["operation"] == QUERY] == [429]  # no hidden SDK retries
    failed = actions(report)[("cost-query", SCOPE_A)]
    assert failed["status"] == "failed" and "retry after 7 s" in failed["error"]
    assert report["details"]["tables"][0]["rows"] == [["(no cost data)", "", "", ""]]
    # No budget is created while the scope's billing currency is unknown (issue #11 item 12).
    held = actions(report, "skipped")[("budget-currency",
                                      f"{SCOPE_A}/providers/Microsoft.Consumption/budgets/ops-monthly")]
    assert "billing currency" in held["reason"]
    assert not [e for e in log if e["method"] == "PUT"]


# -- the CLI ----------------------------------------------------------------------------------

def test_the_cli_shows_the_cost_table_of_a_dry_run(estate):
    result = subprocess.run([sys.executable, "-m", "jobs", "run", "budget-check", "--dry-run",
                             "--now", "2026-11-20T07:00:00Z"],
                            cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Cost of subscription {A} in November 2026, budget $600.00; data to Nov 19 (1 day old)" in out
    header = next(line for line in out.splitlines() if "month to date" in line)
    assert header.split() == ["service", "month", "to", "date", "forecast", "share", "of", "budget"]
    app = next(line for line in out.splitlines() if line.strip().startswith("Azure App Service"))
    assert app.split()[-3:] == ["228.00", "360.00", "38.0%"]  # 228 + 12 x 11 days; 228 / 600
    assert any(line.split()[:1] == ["Total"] for line in out.splitlines())
    assert any(line.split()[:2] == ["planned", "create-budget"] for line in out.splitlines())
    assert not [e for e in estate.sandbox.request_log() if e["operation"] == BUDGET_WRITE]
    # The README's sample is this output.
    readme = (ROOT / "README.md").read_text()
    sample = readme[readme.index(f"Cost of subscription {A}"):]
    sample = sample[:sample.index("```")].rstrip("\n")
    assert sample in out


def test_the_demo_worlds_small_service_with_one_big_day_is_forecast_sanely(app_env, monkeypatch):
    # The demo world (real clock): Log Analytics costs about $0.90 a day in subscription 1 and had a
    # $38 day two days ago; yesterday is partial. Its forecast is a month of $0.90 days plus that day
    # once (noise up to 30 %), not the $38 day spread over the month (it was $188).
    monkeypatch.setenv("OPS_NOTIFY_KIND", "none")
    service.reset()
    report = service.run("budget-check", trigger="cli", dry_run=True)
    demo = scope(report, "/subscriptions/00000000-0000-0000-0000-000000000001")
    logs = demo["forecast"]["by_service"]["Log Analytics"]
    today = datetime.now(timezone.utc).date()
    spike_this_month = (today - timedelta(days=2)).month == today.month
    assert logs <= 0.9 * 1.3 * 31 + (38 if spike_this_month else 0)
