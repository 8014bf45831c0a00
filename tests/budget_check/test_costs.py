"""Cost rows -> month to date, freshness and forecast: the arithmetic a
reader of the report must be able to redo by hand."""
from datetime import date

import pytest

from jobs.budget_check.costs import (CostDataError, cost_query, cross_check, forecast, freshness,
                                     complete_through, money, month_to_date, parse_groups, parse_rows,
                                     run_rate)

from tests.budget_check.helpers import at, data, row, steady

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


@pytest.mark.parametrize("now, newest, settle, expected", [
    # Azure adds a day's cost for hours after it ends: the day is final settle_hours after midnight
    ("2026-11-27T07:00", "2026-11-26", 24, "2026-11-25"),  # yesterday ended 7 h ago: partial
    ("2026-11-27T23:59", "2026-11-26", 24, "2026-11-25"),
    ("2026-11-28T00:00", "2026-11-26", 24, "2026-11-26"),  # 24 h after Nov 26 ended
    ("2026-11-27T07:00", "2026-11-26", 6, "2026-11-26"),
    ("2026-11-27T07:00", "2026-11-24", 24, "2026-11-24"),  # lagging data: the newest day seen
    ("2026-11-27T07:00", None, 24, None),
])
def test_a_day_is_complete_only_once_it_has_settled(now, newest, settle, expected):
    got = complete_through(at(now), date.fromisoformat(newest) if newest else None, settle)
    assert got == (date.fromisoformat(expected) if expected else None)


@pytest.mark.parametrize("values, rate", [
    ([10] * 7, 10.0),
    ([0.9] * 6 + [38.9], 0.9),  # one spike: left out
    ([0.9] * 5 + [0.0, 38.9], 0.9),  # a spike and a quiet day: both left out
    ([10, 10, 10, 10, 10, 4, 4], 8.8),  # weekends at 4: one of them is trimmed
    ([5, 7], 6.0),  # too few days to trim
    ([], 0.0),
])
def test_the_run_rate_is_a_trimmed_mean(values, rate):
    assert run_rate(values) == pytest.approx(rate)


# Run on Nov 27 at 07:00 UTC with the default 24 settle hours: Nov 26 is partial, Nov 25 the last
# complete day, 5 days (Nov 26-30) are estimated.
NOW = at("2026-11-27T07:00")


@pytest.mark.parametrize("case, series, total, rate", [
    ("steady", [steady("VM", 10, "2026-10-01", "2026-11-26")], 300.0, 10.0),
    # the demo's case: a $0.90/day service with a $38 day two days ago and a partial yesterday
    ("one spike, partial yesterday", [steady("Logs", 0.9, "2026-10-01", "2026-11-25"),
                                      row("2026-11-24", "Logs", 38), row("2026-11-26", "Logs", 0.5)],
     0.9 * 25 + 38 + 0.9 * 5, 0.9),
    # a purchase (reservation, marketplace) is counted once, never multiplied
    ("one-off purchase", [steady("VM", 10, "2026-10-01", "2026-11-26"),
                          row("2026-11-23", "VM", 300, charge_type="Purchase")], 600.0, 10.0),
    # a refund lowers the month once
    ("refund", [steady("VM", 10, "2026-10-01", "2026-11-26"),
                row("2026-11-20", "VM", -40, charge_type="Refund")], 260.0, 10.0),
    # a partial day below the rate does not pull the forecast down
    ("partial day is not complete", [steady("VM", 10, "2026-10-01", "2026-11-25"),
                                     row("2026-11-26", "VM", 2)], 300.0, 10.0),
    # a service that started Nov 22 runs at its own rate, not diluted by days it did not exist
    ("new service", [steady("AI", 7, "2026-11-22", "2026-11-26")], 7 * 4 + 7 * 5, 7.0),
])
def test_the_forecast_uses_settled_days_a_robust_rate_and_counts_one_offs_once(case, series, total, rate):
    d = data(*series)
    complete = complete_through(NOW, freshness(d, NOW.date(), 2).last_complete_day, 24)
    fc = forecast(d, NOW.date(), complete, 7)
    assert fc.total == pytest.approx(total), case
    assert fc.daily_rate == pytest.approx(rate), case
    assert fc.remaining_days == 5, case


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
    assert fc.method == ("260.00 usage for the complete days to Nov 26 + trimmed mean of 7 days "
                         "Nov 20-Nov 26 (10.00/day) x 4 days left")
    _, bought = run(data(steady("VM", 10, "2026-10-01", "2026-11-26"),
                         row("2026-11-24", "VM", 300, charge_type="Purchase")))
    assert bought.method.endswith("x 4 days left + 300.00 one-off charges (purchases, refunds), counted once")
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
    assert (r.charge_type, r.one_off) == ("Usage", False)  # no ChargeType column: usage


def test_the_charge_type_column_tells_one_off_charges():
    columns = [{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
               {"name": "ServiceName", "type": "String"}, {"name": "ChargeType", "type": "String"},
               {"name": "Currency", "type": "String"}]
    rows = parse_rows(columns, [[5, 20261103, "VM", "Usage", "USD"], [300, 20261103, "VM", "Purchase", "USD"],
                                [-4, 20261104, "VM", "Refund", "USD"]])
    assert [(r.charge_type, r.one_off) for r in rows] == [("Usage", False), ("Purchase", True), ("Refund", True)]


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
def test_the_query_covers_the_previous_month_to_today_daily_by_service_and_charge_type(today, start, end):
    q = cost_query(today)
    assert (q["type"], q["timeframe"]) == ("ActualCost", "Custom")
    assert q["timePeriod"] == {"from": start, "to": end}
    assert q["dataset"]["granularity"] == "Daily"
    # a query takes at most 2 groupings; resource groups come from group_query
    assert [g["name"] for g in q["dataset"]["grouping"]] == ["ServiceName", "ChargeType"]


@pytest.mark.parametrize("amount, currency, signed, text", [
    (412.3, "USD", False, "$412.30"), (1234.5, "EUR", False, "€1,234.50"),
    (42.1, "USD", True, "+$42.10"), (-3, "GBP", True, "-£3.00"), (10, "CHF", False, "10.00 CHF"),
])
def test_money_is_written_for_people(amount, currency, signed, text):
    assert money(amount, currency, signed=signed) == text


def test_the_resource_group_query_is_read_by_column_name():
    columns = [{"name": "PreTaxCost", "type": "Number"}, {"name": "ResourceGroupName", "type": "String"},
               {"name": "Currency", "type": "String"}]
    assert parse_groups(columns, [[12.5, "RG-Web", "USD"], [3, "", "USD"]]) == {"rg-web": 12.5, "(none)": 3.0}
    with pytest.raises(CostDataError, match="no ResourceGroupName or ResourceGroup column"):
        parse_groups(["PreTaxCost", "Currency"], [[1, "USD"]])
