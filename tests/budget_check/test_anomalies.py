"""Anomalies: a service new this month, a day far above its recent median."""
from datetime import date

import pytest

from jobs.budget_check.anomalies import find_anomalies

from tests.budget_check.helpers import data, row, steady

TODAY = date(2026, 11, 27)
LAST = date(2026, 11, 26)


def anomalies(d, factor=3.0, window=7, min_amount=10.0, today=TODAY, last=LAST):
    return find_anomalies(d, today, last, "USD", factor=factor, window=window, min_amount=min_amount)


BASE = steady("VM", 20, "2026-10-01", "2026-11-26")


@pytest.mark.parametrize("case, extra, expected", [
    ("steady costs are quiet", [], []),
    ("a service new this month", [steady("Azure OpenAI", 5, "2026-11-20", "2026-11-26")],
     [("new-service", "Azure OpenAI", None, "Azure OpenAI is new this month: $35.00 so far, nothing in October")]),
    ("new but below the minimum amount", [steady("Bandwidth", 1, "2026-11-20", "2026-11-26")], []),
    ("a service used last month is not new", [steady("Backup", 15, "2026-10-30", "2026-10-31"),
                                              steady("Backup", 15, "2026-11-25", "2026-11-26")],
     [("spike", "Backup", date(2026, 11, 26),
       "Backup cost $15.00 on Nov 26, against a 7-day median of $0.00 (also Nov 25)")]),
    ("a day 4x its median", [row("2026-11-24", "VM", 60)],
     [("spike", "VM", date(2026, 11, 24), "VM cost $80.00 on Nov 24, 4.0x its 7-day median of $20.00")]),
    ("2.5x is below the factor", [row("2026-11-24", "VM", 30)], []),
    ("3x but only $4 above a tiny median", [steady("DNS", 2, "2026-10-01", "2026-11-26"),
                                            row("2026-11-24", "DNS", 4)], []),
    ("last month's spikes are history, not news", [row("2026-10-20", "VM", 200)], []),
])
def test_anomalies(case, extra, expected):
    found = anomalies(data(BASE, *extra))
    assert [(a.kind, a.service, a.day, a.text) for a in found] == expected, case


def test_a_new_service_is_not_also_reported_as_spikes():
    found = anomalies(data(BASE, row("2026-11-25", "Fabric", 300)))
    assert [(a.kind, a.service) for a in found] == [("new-service", "Fabric")]


def test_new_services_are_not_claimed_when_last_month_was_not_fetched():
    found = anomalies(data(steady("AI", 50, "2026-11-20", "2026-11-26"), start="2026-11-01"))
    assert [a for a in found if a.kind == "new-service"] == []


def test_the_today_partial_day_is_never_judged():
    found = anomalies(data(BASE, row("2026-11-27", "VM", 500)))
    assert found == []
