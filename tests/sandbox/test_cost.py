"""Consumption budgets and Cost Management queries and forecasts in the sandbox, through the real
ConsumptionManagementClient and CostManagementClient."""
import copy
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest

from sandbox.server import Faults

SUB1 = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
SCOPE1 = f"/subscriptions/{SUB1}"
STAGING = f"/subscriptions/{SUB1}/resourceGroups/rg-shopfront-staging"
AG = f"{SCOPE1}/resourceGroups/rg-shopfront-dev/providers/microsoft.insights/actionGroups/ag-ops"

# A world on a pinned day with flat costs, so amounts are exact.
PINNED = {
    "costs": {
        "today": "2025-03-14", "data_through": "today-1", "last_day_fraction": 0.5, "seed": 1,
        "forecast_lookback_days": 7,
        "generators": [
            {"subscription": SUB1, "resource_group": "rg-a", "service": "Azure App Service", "daily": 10.0},
            {"subscription": SUB1, "resource_group": "rg-a", "service": "Storage", "daily": 2.0,
             "spikes": [{"date": "2025-03-10", "amount": 30.0}]},
            {"subscription": SUB1, "resource_group": "rg-b", "service": "Key Vault", "daily": 1.0,
             "from": "month_start+4", "tags": {"env": "dev"}},
            {"subscription": SUB2, "resource_group": "rg-c", "service": "Azure App Service", "daily": 100.0},
        ],
    },
    "budgets": [{"scope": SCOPE1, "name": "monthly", "properties": {
        "category": "Cost", "amount": 500, "timeGrain": "Monthly", "timePeriod": {"startDate": "2025-01-01"},
        "notifications": {"Actual_GreaterThan_80_Percent": {
            "enabled": True, "operator": "GreaterThan", "threshold": 80, "contactEmails": ["ops@contoso.com"]}}}}],
}


def _month_start() -> datetime:
    return datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _budget(start: datetime, notifications: int = 1, **props) -> dict:
    body = {"properties": {
        "category": "Cost", "amount": 250, "timeGrain": "Monthly",
        "timePeriod": {"startDate": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "notifications": {f"Actual_GreaterThan_{50 + 10 * i}_Percent": {
            "enabled": True, "operator": "GreaterThan", "threshold": 50 + 10 * i, "thresholdType": "Actual",
            "contactEmails": ["ops@contoso.com"], "contactGroups": [AG], "contactRoles": ["Owner"]}
            for i in range(notifications)}}}
    body["properties"].update(props)
    return body


def _query(**dataset) -> dict:
    return {"type": "ActualCost", "timeframe": "MonthToDate",
            "dataset": {"aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}, **dataset}}


def _follow(client, body, first):
    """All rows of a query answer, POSTing each nextLink with the same body, as Azure pages."""
    rows, result, links = list(first.properties.rows), first, []
    while result.properties.next_link:
        links.append(result.properties.next_link)
        response = client.send_request(HttpRequest("POST", result.properties.next_link, json=body))
        response.raise_for_status()
        result = type(first)(response.json())
        rows += result.properties.rows
    return rows, links


# -- budgets --------------------------------------------------------------------------------------
def test_budget_get_reports_spend_computed_from_cost_rows(app_env, clients):
    budget = clients.consumption(SUB1).budgets.get(SCOPE1, "shopfront-nonprod-monthly")
    assert budget.type == "Microsoft.Consumption/budgets"
    assert budget.e_tag.startswith('"') and budget.e_tag.endswith('"')
    assert budget.properties.time_period.start_date.day == 1
    assert budget.properties.current_spend.unit == "USD"
    # currentSpend is this month's cost of the scope, the same the query API reports.
    result = clients.cost.query.usage(SCOPE1, _query(granularity="None"))
    month_to_date = sum(row[0] for row in result.properties.rows)
    assert float(budget.properties.current_spend.amount) == pytest.approx(month_to_date, abs=0.01)
    assert float(budget.properties.forecast_spend.amount) >= float(budget.properties.current_spend.amount) * 0.9


def test_budget_spend_on_a_pinned_day(world, clients):
    world(PINNED)
    budget = clients.consumption(SUB1).budgets.get(SCOPE1, "monthly")
    # Mar 1-12 complete: rg-a 12/day (+30 spike on the 10th), rg-b 1/day from the 5th; Mar 13 half in.
    complete = 12 * 12 + 30 + 8 * 1
    assert float(budget.properties.current_spend.amount) == pytest.approx(complete + 13 * 0.5)
    average = (7 * 12 + 30 + 7 * 1) / 7  # the last 7 complete days (Mar 6-12)
    assert float(budget.properties.forecast_spend.amount) == pytest.approx(complete + average * 19, abs=0.01)


def test_the_documented_scope_form_with_a_trailing_slash_works(app_env, clients):
    assert clients.consumption(SUB1).budgets.get(SCOPE1 + "/", "shopfront-nonprod-monthly").name == \
        "shopfront-nonprod-monthly"
    assert clients.cost.query.usage(SCOPE1 + "/", _query()).properties.columns[0].name == "Cost"


def test_budgets_list_per_scope_and_a_scope_without_budgets(app_env, clients):
    listed = clients.consumption(SUB2).budgets.list(f"/subscriptions/{SUB2}")
    assert [b.name for b in listed] == ["shopfront-prod-monthly"]
    assert list(clients.consumption(SUB1).budgets.list(STAGING)) == []


def test_budget_lifecycle_at_resource_group_scope(app_env, clients):
    budgets = clients.consumption(SUB1).budgets
    created = budgets.create_or_update(STAGING, "staging-monthly", _budget(_month_start()))
    budget_id = f"{STAGING.lstrip('/')}/providers/Microsoft.Consumption/budgets/staging-monthly"
    assert created.id.lower() == budget_id.lower()
    assert [r["status"] for r in app_env.sandbox.request_log() if r["method"] == "PUT"] == [201]
    got = budgets.get(STAGING, "staging-monthly")
    assert got.e_tag == created.e_tag and float(got.properties.amount) == 250
    assert got.properties.notifications["Actual_GreaterThan_50_Percent"].contact_groups == [AG]

    # An update in place carries the current eTag and gets a new one.
    update = _budget(_month_start(), amount=300)
    update["eTag"] = got.e_tag
    updated = budgets.create_or_update(STAGING, "staging-monthly", update)
    assert float(updated.properties.amount) == 300 and updated.e_tag != got.e_tag
    assert [b.name for b in budgets.list(STAGING)] == ["staging-monthly"]

    budgets.delete(STAGING, "staging-monthly")
    with pytest.raises(ResourceNotFoundError):
        budgets.get(STAGING, "staging-monthly")


def test_a_stale_etag_is_refused(app_env, clients):
    budgets = clients.consumption(SUB1).budgets
    current = budgets.get(SCOPE1, "shopfront-nonprod-monthly")
    body = current.as_dict()
    body["eTag"] = current.e_tag
    budgets.create_or_update(SCOPE1, "shopfront-nonprod-monthly", body)  # someone else's update
    with pytest.raises(HttpResponseError) as err:
        budgets.create_or_update(SCOPE1, "shopfront-nonprod-monthly", body)  # ours, with the old eTag
    assert err.value.status_code == 400
    assert "There are changes made to Budget shopfront-nonprod-monthly" in str(err.value)


def test_an_update_without_etag_passes_unless_the_world_requires_it(world, clients):
    data = copy.deepcopy(PINNED)
    world(data)
    budgets = clients.consumption(SUB1).budgets
    body = budgets.get(SCOPE1, "monthly").as_dict()
    body.pop("eTag")
    assert float(budgets.create_or_update(SCOPE1, "monthly", body).properties.amount) == 500
    data["costs"]["require_etag_on_update"] = True
    world(data)
    with pytest.raises(HttpResponseError) as err:
        budgets.create_or_update(SCOPE1, "monthly", body)
    assert err.value.status_code == 400


def test_the_start_date_of_an_existing_budget_cannot_change(app_env, clients):
    budgets = clients.consumption(SUB1).budgets
    current = budgets.get(SCOPE1, "shopfront-nonprod-monthly")
    body = current.as_dict()
    body["properties"]["timePeriod"]["startDate"] = _month_start().strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(HttpResponseError) as err:
        budgets.create_or_update(SCOPE1, "shopfront-nonprod-monthly", body)
    assert err.value.status_code == 400
    assert "Start date of budgets cannot be updated. Please delete and create a new budget." in str(err.value)


@pytest.mark.parametrize("start, fragment", [
    (lambda: _month_start() + timedelta(days=14), "first day of the month"),
    (lambda: _month_start().replace(year=_month_start().year - 1), "current time grain period"),
])
def test_a_new_budget_needs_a_valid_start_date(app_env, clients, start, fragment):
    with pytest.raises(HttpResponseError) as err:
        clients.consumption(SUB1).budgets.create_or_update(STAGING, "bad-start", _budget(start()))
    assert err.value.status_code == 400 and fragment in str(err.value)


def test_at_most_five_notifications(app_env, clients):
    budgets = clients.consumption(SUB1).budgets
    with pytest.raises(HttpResponseError) as err:
        budgets.create_or_update(STAGING, "too-many", _budget(_month_start(), notifications=6))
    assert err.value.status_code == 400 and "up to 5 notifications" in str(err.value)
    assert len(budgets.create_or_update(STAGING, "five", _budget(_month_start(), notifications=5))
               .properties.notifications) == 5


@pytest.mark.parametrize("change, fragment", [
    ({"threshold": 0}, "between 0.01 and 1000"),
    ({"threshold": 1000.5}, "between 0.01 and 1000"),
    ({"thresholdType": "Predicted"}, "thresholdType"),
    ({"operator": "LessThan"}, "operator"),
    ({"contactEmails": [], "contactGroups": []}, "contact email or contact group"),
    ({"contactGroups": ["not-an-action-group"]}, "action group"),
])
def test_notification_rules(app_env, clients, change, fragment):
    body = _budget(_month_start())
    next(iter(body["properties"]["notifications"].values())).update(change)
    with pytest.raises(HttpResponseError) as err:
        clients.consumption(SUB1).budgets.create_or_update(STAGING, "rules", body)
    assert err.value.status_code == 400 and fragment in str(err.value)


def test_forecasted_threshold_type_is_accepted(app_env, clients):
    body = _budget(_month_start())
    next(iter(body["properties"]["notifications"].values())).update({"thresholdType": "Forecasted", "threshold": 0.01})
    created = clients.consumption(SUB1).budgets.create_or_update(STAGING, "forecasted", body)
    assert next(iter(created.properties.notifications.values())).threshold_type == "Forecasted"


# -- cost queries -----------------------------------------------------------------------------------
def test_query_answers_the_real_shape(world, clients):
    world(PINNED)
    result = clients.cost.query.usage(SCOPE1, _query(granularity="Daily", grouping=[
        {"type": "Dimension", "name": "ServiceName"}]), params={"$top": "100"})
    assert [(c.name, c.type) for c in result.properties.columns] == [
        ("Cost", "Number"), ("UsageDate", "Number"), ("ServiceName", "String"), ("Currency", "String")]
    rows = result.properties.rows
    assert rows[0] == [10.0, 20250301, "Azure App Service", "USD"]
    assert [32.0, 20250310, "Storage", "USD"] in rows  # the spike
    # Data lags: nothing after data_through (Mar 13, half in); the job reads freshness from here.
    assert max(r[1] for r in rows) == 20250313
    assert [10.0 * 0.5, 20250313, "Azure App Service", "USD"] in rows
    # Key Vault is new this month: its first day is Mar 5.
    assert min(r[1] for r in rows if r[2] == "Key Vault") == 20250305
    assert result.properties.next_link is None
    assert result.type == "Microsoft.CostManagement/query"


def test_query_pages_with_next_link_and_the_job_follows_it(app_env, clients):
    body = {"type": "ActualCost", "timeframe": "TheLastMonth", "dataset": {
        "granularity": "Daily", "aggregation": {"totalCost": {"name": "PreTaxCost", "function": "Sum"}},
        "grouping": [{"type": "Dimension", "name": "ServiceName"}, {"type": "Dimension", "name": "ResourceGroupName"}]}}
    first = clients.cost.query.usage(SCOPE1, body, params={"$top": "5"})
    assert len(first.properties.rows) == 5
    assert "$skiptoken=" in first.properties.next_link.replace("%24", "$")
    rows, links = _follow(clients.cost, body, first)
    posts = [r for r in app_env.sandbox.request_log() if r["operation"] == "Microsoft.CostManagement/query/action"]
    assert len(posts) == len(links) + 1 and all(p["method"] == "POST" and p["status"] == 200 for p in posts)
    # The same rows as one big page; every day of last month for 7 services x 2 resource groups.
    whole = clients.cost.query.usage(SCOPE1, body, params={"$top": "5000"})
    assert rows == whole.properties.rows and whole.properties.next_link is None
    days = {r[1] for r in rows}
    today = datetime.now(timezone.utc).date()
    first_of_last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    assert min(days) == int(first_of_last.strftime("%Y%m%d")) and len(rows) == len(days) * 14


def test_query_groups_filters_and_aggregates_without_granularity(world, clients):
    world(PINNED)
    body = {"type": "Usage", "timeframe": "Custom",
            "timePeriod": {"from": "2025-03-01T00:00:00+00:00", "to": "2025-03-10T23:59:59+00:00"},
            "dataset": {"granularity": "None",
                        "grouping": [{"type": "Dimension", "name": "ResourceGroupName"}],
                        "filter": {"dimensions": {"name": "ServiceName", "operator": "In",
                                                  "values": ["Storage", "Key Vault"]}}}}
    result = clients.cost.query.usage(SCOPE1, body)
    assert [c.name for c in result.properties.columns] == ["PreTaxCost", "ResourceGroupName", "Currency"]
    # Storage in rg-a: 10 days x 2 + the 30 spike; Key Vault in rg-b: Mar 5-10.
    assert result.properties.rows == [[50.0, "rg-a", "USD"], [6.0, "rg-b", "USD"]]
    by_tag = clients.cost.query.usage(SCOPE1, {**body, "dataset": {"grouping": [{"type": "TagKey", "name": "env"}]}})
    assert [c.name for c in by_tag.properties.columns] == ["PreTaxCost", "TagKey", "TagValue", "Currency"]
    assert [r for r in by_tag.properties.rows if r[1] == "env"] == [[6.0, "env", "dev", "USD"]]
    rg_scope = clients.cost.query.usage(f"{SCOPE1}/resourceGroups/rg-b", body)
    assert rg_scope.properties.rows == [[6.0, "rg-b", "USD"]]


def test_query_refuses_what_azure_refuses(world, clients):
    world(PINNED)
    for dataset in ({"grouping": [{"type": "Dimension", "name": "Colour"}]},
                    {"grouping": [{"type": "Dimension", "name": n}
                                  for n in ("ServiceName", "ResourceGroup", "SubscriptionId")]},
                    {"granularity": "Hourly"}):
        with pytest.raises(HttpResponseError) as err:
            clients.cost.query.usage(SCOPE1, {"type": "ActualCost", "timeframe": "MonthToDate", "dataset": dataset})
        assert err.value.status_code == 400
    with pytest.raises(HttpResponseError):
        clients.cost.query.usage(SCOPE1, {"type": "ActualCost", "timeframe": "Custom", "dataset": {}})


def test_forecast_averages_complete_days(world, clients):
    world(PINNED)
    body = {"type": "ActualCost", "timeframe": "Custom",
            "timePeriod": {"from": "2025-03-01T00:00:00+00:00", "to": "2025-03-31T23:59:59+00:00"},
            "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}},
            "includeActualCost": True, "includeFreshPartialCost": False}
    result = clients.cost.forecast.usage(SCOPE1, body)
    assert [c.name for c in result.properties.columns] == ["Cost", "UsageDate", "CostStatus", "Currency"]
    rows = result.properties.rows
    actual = [r for r in rows if r[2] == "Actual"]
    forecast = [r for r in rows if r[2] == "Forecast"]
    assert [r[1] for r in actual] == [20250300 + d for d in range(1, 13)]  # complete days only
    assert actual[9][0] == 43.0  # Mar 10: rg-a 12 + the 30 spike + rg-b 1
    average = (7 * 12 + 30 + 7 * 1) / 7
    assert [r[1] for r in forecast] == [20250300 + d for d in range(13, 32)]
    assert all(r[0] == pytest.approx(average) for r in forecast)

    partial = clients.cost.forecast.usage(SCOPE1, {**body, "includeFreshPartialCost": True})
    assert [r for r in partial.properties.rows if r[1] == 20250313] == [[6.5, 20250313, "Actual", "USD"]]
    only_forecast = clients.cost.forecast.usage(SCOPE1, {**body, "includeActualCost": False,
                                                         "dataset": {**body["dataset"], "granularity": "None"}})
    assert only_forecast.properties.rows == [[pytest.approx(average * 19), "Forecast", "USD"]]


def test_forecast_cannot_be_grouped(world, clients):
    world(PINNED)
    with pytest.raises(HttpResponseError) as err:
        clients.cost.forecast.usage(SCOPE1, {
            "type": "ActualCost", "timeframe": "Custom",
            "timePeriod": {"from": "2025-03-01T00:00:00Z", "to": "2025-03-31T00:00:00Z"},
            "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
                        "grouping": [{"type": "Dimension", "name": "ServiceName"}]}})
    assert err.value.status_code == 400


# -- throttling -------------------------------------------------------------------------------------
def _seed_429_then_ok() -> int:
    """A fault seed whose first draw is a 429 and second is not (deterministic)."""
    for seed in range(1000):
        faults = Faults()
        faults.configure({"seed": seed, "rules": [{"operation": "Microsoft.CostManagement/*", "rate_429": 0.5}]})
        if [faults.draw("Microsoft.CostManagement/query/action")[1] for _ in range(2)] == ["429", None]:
            return seed
    raise AssertionError("no seed")


def test_the_client_retries_a_429_after_retry_after(app_env, clients):
    seed = _seed_429_then_ok()
    app_env.sandbox.faults.configure({"seed": seed, "rules": [
        {"operation": "Microsoft.CostManagement/*", "rate_429": 0.5, "retry_after": 1}]})
    result = clients.cost.query.usage(SCOPE1, _query(granularity="None"))
    assert result.properties.columns[0].name == "Cost"
    statuses = [r["status"] for r in app_env.sandbox.request_log()
                if r["operation"] == "Microsoft.CostManagement/query/action"]
    assert statuses == [429, 200]


def test_a_persistent_429_surfaces_with_the_cost_management_headers(app_env):
    from azure.mgmt.costmanagement import CostManagementClient
    from jobs.clients import SandboxCredential
    app_env.sandbox.faults.configure({"seed": 1, "rules": [
        {"operation": "Microsoft.CostManagement/*", "rate_429": 1.0, "retry_after": 7}]})
    client = CostManagementClient(SandboxCredential(app_env.sandbox.token), base_url=app_env.sandbox.url,
                                  connection_verify=str(app_env.ca_file), retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        client.query.usage(SCOPE1, _query())
    assert err.value.status_code == 429
    headers = err.value.response.headers
    assert headers["Retry-After"] == "7"
    assert headers["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"] == "7"


# One-off charges and billing currencies: SUB1 buys a $300 reservation on Mar 11 and is refunded $20
# on Mar 12; SUB2 is billed in EUR.
ONE_OFF = copy.deepcopy(PINNED)
ONE_OFF["costs"]["rows"] = [
    {"date": "2025-03-11", "subscription": SUB1, "resource_group": "", "service": "Virtual Machines",
     "cost": 300.0, "charge_type": "Purchase"},
    {"date": "2025-03-12", "subscription": SUB1, "resource_group": "rg-a", "service": "Storage",
     "cost": -20.0, "charge_type": "Refund"}]
ONE_OFF["costs"]["billing_currencies"] = {SUB2: "EUR"}


def test_query_groups_by_charge_type_and_answers_in_the_billing_currency(world, clients):
    world(ONE_OFF)
    body = {"type": "ActualCost", "timeframe": "Custom",
            "timePeriod": {"from": "2025-03-11T00:00:00+00:00", "to": "2025-03-12T23:59:59+00:00"},
            "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "PreTaxCost", "function": "Sum"}},
                        "grouping": [{"type": "Dimension", "name": "ServiceName"},
                                     {"type": "Dimension", "name": "ChargeType"}]}}
    result = clients.cost.query.usage(SCOPE1, body, params={"$top": "1000"})
    assert [c.name for c in result.properties.columns] == ["PreTaxCost", "UsageDate", "ServiceName", "ChargeType",
                                                          "Currency"]
    rows = result.properties.rows
    assert [300.0, 20250311, "Virtual Machines", "Purchase", "USD"] in rows
    assert [-20.0, 20250312, "Storage", "Refund", "USD"] in rows
    assert [2.0, 20250312, "Storage", "Usage", "USD"] in rows
    eur = clients.cost.query.usage(f"/subscriptions/{SUB2}", body)
    assert {r[-1] for r in eur.properties.rows} == {"EUR"}


def test_a_budget_spends_in_its_subscriptions_billing_currency(world, clients):
    world(ONE_OFF)
    scope2 = f"/subscriptions/{SUB2}"
    clients.consumption(SUB2).budgets.create_or_update(scope2, "eur", _budget(datetime(2025, 3, 1)))
    budget = clients.consumption(SUB2).budgets.get(scope2, "eur")
    assert budget.current_spend.unit == "EUR"
    assert clients.consumption(SUB1).budgets.get(SCOPE1, "monthly").current_spend.unit == "USD"


def test_forecasts_count_one_off_charges_once(world, clients):
    world(ONE_OFF)
    body = {"type": "ActualCost", "timeframe": "Custom",
            "timePeriod": {"from": "2025-03-01T00:00:00+00:00", "to": "2025-03-31T23:59:59+00:00"},
            "dataset": {"granularity": "None", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}},
            "includeActualCost": True}
    rows = clients.cost.forecast.usage(SCOPE1, body).properties.rows
    # Complete days Mar 1-12: usage 12 x 12 + the spike + Key Vault Mar 5-12, then the one-offs once;
    # the 19 days left run at the usage average of Mar 6-12, never at the purchase's.
    usage_average = (7 * 12 + 30 + 7 * 1) / 7
    assert rows == [[pytest.approx(12 * 12 + 30 + 8 + 300 - 20), "Actual", "USD"],
                    [pytest.approx(usage_average * 19), "Forecast", "USD"]]
    budget = clients.consumption(SUB1).budgets.get(SCOPE1, "monthly")
    assert float(budget.forecast_spend.amount) == pytest.approx(12 * 12 + 30 + 8 + 300 - 20 + usage_average * 19, abs=0.01)
