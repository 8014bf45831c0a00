"""Cost rows -> month to date, freshness and forecast: the arithmetic a
reader of the report must be able to redo by hand."""
from datetime import date

import pytest

from jobs.budget_check.costs import (CostDataError, cost_query, cross_check, forecast, freshness,
                                     money, month_to_date, parse_rows)

from tests.budget_check.helpers import data, row, steady

TODAY = date(2026, 11, 27)


def run(d, today=TODAY, window=7, max_age=2):
    fresh = freshness(d, today, max_age)
    return fresh, forecast(d, today, fresh.last_complete_day, window)


@pytest.mark.parametrize("case, series, today, total, rate, remaining, confidence", [
    # $10 a day; Nov 1-26 complete (260) + 10/day x Nov 27-30 (4 days)
    ("steady month", [steady("VM", 10, "2026-10-01", "2026-11-26")], TODAY, 300.0, 10.0, 4, "normal"),
    # today's partial rows do not move the forecast, whatever they are
    ("partial today left out", [steady("VM", 10, "2026-10-01", "2026-11-26"), row("2026-11-27", "VM", 3)],
     TODAY, 300.0, 10.0, 4, "normal"),
    # data lags: Nov 26 has no rows yet; Nov 1-25 (250) + 10/day x 5 days
    ("yesterday not in yet", [steady("VM", 10, "2026-10-01", "2026-11-25")], TODAY, 300.0, 10.0, 5, "normal"),
    # a step up: 10/day to Nov 19, then 20/day; base 190 + 140, rate is the last 7 days (20)
    ("recent level counts", [steady("VM", 10, "2026-10-01", "2026-11-19"),
                             steady("VM", 20, "2026-11-20", "2026-11-26")], TODAY, 410.0, 20.0, 4, "normal"),
    # month start: nothing of November is complete; October's last week gives the rate
    ("first of the month", [steady("VM", 10, "2026-10-01", "2026-10-31")], date(2026, 11, 1),
     300.0, 10.0, 30, "low"),
    ("one complete day", [steady("VM", 10, "2026-10-01", "2026-11-01")], date(2026, 11, 2),
     300.0, 10.0, 29, "low"),
    ("two complete days", [steady("VM", 10, "2026-10-01", "2026-11-02")], date(2026, 11, 3),
     300.0, 10.0, 28, "normal"),
    # days without rows count as zero: 7/day since Nov 20 is 49 + 7 x 4
    ("new service", [steady("AI", 7, "2026-11-20", "2026-11-26")], TODAY, 77.0, 7.0, 4, "normal"),
    ("nothing at all", [], TODAY, 0.0, 0.0, 30, "low"),
])
def test_forecast_arithmetic_on_known_series(case, series, today, total, rate, remaining, confidence):
    _, fc = run(data(*series), today)
    assert fc.total == pytest.approx(total), case
    assert fc.daily_rate == pytest.approx(rate), case
    assert fc.remaining_days == remaining, case
    assert fc.confidence == confidence, case


def test_the_forecast_never_falls_below_what_was_already_spent():
    # a large partial day (a purchase this morning) is already spent
    _, fc = run(data(steady("VM", 10, "2026-10-01", "2026-11-26"), row("2026-11-27", "VM", 500)))
    assert fc.total == pytest.approx(760.0)


def test_per_service_forecasts_add_up_to_the_total_and_a_stopped_service_is_not_forecast():
    d = data(steady("VM", 10, "2026-10-01", "2026-11-26"), steady("Storage", 2, "2026-10-01", "2026-11-26"),
             steady("Old DB", 50, "2026-10-01", "2026-10-31"))
    _, fc = run(d)
    assert dict(fc.by_service) == pytest.approx({"VM": 300.0, "Storage": 60.0})
    assert fc.total == pytest.approx(sum(fc.by_service.values()))
    assert list(fc.by_service) == ["VM", "Storage"]  # largest first


def test_the_method_is_told_with_its_numbers():
    _, fc = run(data(steady("VM", 10, "2026-10-01", "2026-11-26")))
    assert fc.method == ("260.00 for the complete days to Nov 26 + mean of 7 days Nov 20-Nov 26 "
                         "(10.00/day) x 4 days left")
    _, early = run(data(steady("VM", 10, "2026-10-01", "2026-11-01")), date(2026, 11, 2))
    assert "low confidence: only 1 complete day of this month" in early.method


def test_month_to_date_is_per_service_and_per_resource_group_and_includes_today():
    d = data(steady("VM", 10, "2026-10-01", "2026-11-26", group="rg-web"),
             steady("Storage", 1, "2026-11-01", "2026-11-26", group="rg-data"),
             row("2026-11-27", "VM", 4, group="rg-web"))
    mtd = month_to_date(d.rows, TODAY)
    assert mtd.month == "2026-11"
    assert mtd.total == pytest.approx(260 + 26 + 4)
    assert dict(mtd.by_service) == pytest.approx({"VM": 264.0, "Storage": 26.0})
    assert dict(mtd.by_resource_group) == pytest.approx({"rg-web": 264.0, "rg-data": 26.0})


@pytest.mark.parametrize("last_day, max_age, text, stale", [
    ("2026-11-26", 2, "data to Nov 26 (1 day old)", False),
    ("2026-11-25", 2, "data to Nov 25 (2 days old)", False),
    ("2026-11-23", 2, "data to Nov 23 (4 days old); expected at most 2 days", True),
])
def test_freshness_is_the_last_day_before_today_with_data(last_day, max_age, text, stale):
    d = data(steady("VM", 1, "2026-11-01", last_day), row("2026-11-27", "VM", 1))
    fresh = freshness(d, TODAY, max_age)
    assert (fresh.text, fresh.stale) == (text, stale)
    assert fresh.last_complete_day == date.fromisoformat(last_day)


def test_partial_data_says_so_in_its_freshness():
    d = data(steady("VM", 1, "2026-11-01", "2026-11-26"), partial=True, reason="throttled")
    assert freshness(d, TODAY, 2).text == "partial data, seen to Nov 26"


@pytest.mark.parametrize("ours, azure, text", [
    (300.0, 280.0, "Azure's budget forecast is $280.00; ours is $300.00, +$20.00 (+7.1%)"),
    (250.0, 280.0, "Azure's budget forecast is $280.00; ours is $250.00, -$30.00 (-10.7%)"),
    (300.0, None, "Azure gives no forecast for this budget"),
])
def test_our_forecast_is_cross_checked_against_the_budgets(ours, azure, text):
    assert cross_check(ours, azure, "USD").text == text


@pytest.mark.parametrize("columns, raw, expected", [
    # the documented column order of a grouped daily query
    ([{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
      {"name": "ServiceName", "type": "String"}, {"name": "ResourceGroupName", "type": "String"},
      {"name": "Currency", "type": "String"}],
     [19.545, 20261103, "Storage", "RG-Data", "usd"],
     (date(2026, 11, 3), "Storage", "rg-data", 19.545, "USD")),
    # another order, "Cost" and "ResourceGroup", a string date, no group
    (["ResourceGroup", "ServiceName", "Cost", "UsageDate", "Currency"],
     ["", "Support", "12", "2026-11-03T00:00:00", "EUR"],
     (date(2026, 11, 3), "Support", "(none)", 12.0, "EUR")),
])
def test_query_rows_are_read_by_column_name(columns, raw, expected):
    [r] = parse_rows(columns, [raw])
    assert (r.day, r.service, r.resource_group, r.cost, r.currency) == expected


@pytest.mark.parametrize("columns, raw, fault", [
    (["UsageDate", "ServiceName"], [20261103, "VM"], "no PreTaxCost or Cost or CostUSD"),
    (["PreTaxCost", "UsageDate", "ServiceName"], ["n/a", 20261103, "VM"], "cost 'n/a' is not a number"),
    (["PreTaxCost", "UsageDate", "ServiceName"], [1, 20261399, "VM"], "usage date 20261399 is not a date"),
])
def test_a_malformed_query_result_is_refused_with_what_is_wrong(columns, raw, fault):
    with pytest.raises(CostDataError) as err:
        parse_rows(columns, [raw])
    assert fault in str(err.value)


@pytest.mark.parametrize("today, start, end", [
    (date(2026, 11, 27), "2026-10-01T00:00:00+00:00", "2026-11-27T23:59:59+00:00"),
    (date(2026, 1, 1), "2025-12-01T00:00:00+00:00", "2026-01-01T23:59:59+00:00"),
    (date(2026, 3, 31), "2026-02-01T00:00:00+00:00", "2026-03-31T23:59:59+00:00"),
])
def test_the_query_covers_the_previous_month_to_today_daily_by_service_and_group(today, start, end):
    q = cost_query(today)
    assert (q["type"], q["timeframe"]) == ("ActualCost", "Custom")
    assert q["timePeriod"] == {"from": start, "to": end}
    assert q["dataset"]["granularity"] == "Daily"
    assert [g["name"] for g in q["dataset"]["grouping"]] == ["ServiceName", "ResourceGroupName"]


@pytest.mark.parametrize("amount, currency, signed, text", [
    (412.3, "USD", False, "$412.30"), (1234.5, "EUR", False, "€1,234.50"),
    (42.1, "USD", True, "+$42.10"), (-3, "GBP", True, "-£3.00"), (10, "CHF", False, "10.00 CHF"),
])
def test_money_is_written_for_people(amount, currency, signed, text):
    assert money(amount, currency, signed=signed) == text
