"""Cost anomalies worth a person's look: a service new this month, and a day
far above the service's recent median.

Pure: no Azure imports, no clock, no I/O. Must never judge partial data (a
missing page looks like a missing service or a quiet day): the caller passes
complete data only. Amounts below ``min_amount`` are never flagged.

- new service: cost this month of at least ``min_amount`` and none at all in
  the previous month (the query covers the whole previous month for this).
- spike: a complete day of this month whose usage cost is at least ``factor`` times
  the median of the service's ``window`` days before it (days without rows
  count as 0) and at least ``min_amount`` above that median. Needs 3 days of
  history; a service new this month is reported as new, not as spikes. One
  anomaly per service: its latest spike, naming the earlier spike days.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import median
from typing import Literal

from jobs.budget_check.costs import (CostData, daily_by_service, day_text, money, month_start,
                                     month_to_date)

MIN_HISTORY_DAYS = 3


@dataclass(frozen=True)
class Anomaly:
    kind: Literal["new-service", "spike"]
    service: str
    amount: float  # this month's cost (new) or the day's cost (spike)
    text: str
    day: date | None = None  # the spike's day
    baseline: float | None = None  # the median the day is compared with


def find_anomalies(data: CostData, today: date, last_complete_day: date | None, currency: str, *,
                   factor: float, window: int, min_amount: float) -> list[Anomaly]:
    """New services first (largest first), then spikes (latest first)."""
    new = new_services(data, today, currency, min_amount)
    fresh = {a.service for a in new}
    return new + [a for a in spikes(data, today, last_complete_day, currency, factor=factor,
                                    window=window, min_amount=min_amount)
                  if a.service not in fresh]


def new_services(data: CostData, today: date, currency: str, min_amount: float) -> list[Anomaly]:
    first = month_start(today)
    previous_first = (first - timedelta(days=1)).replace(day=1)
    if data.start > previous_first:
        return []  # the previous month is not fully known: cannot say what is new
    last_month = {r.service for r in data.rows if previous_first <= r.day < first and r.cost}
    out = []
    for service, amount in month_to_date(data.rows, today).by_service.items():
        if service not in last_month and amount >= min_amount and amount > 0:
            out.append(Anomaly("new-service", service, amount,
                               f"{service} is new this month: {money(amount, currency)} so far, "
                               f"nothing in {previous_first:%B}"))
    return out


def spikes(data: CostData, today: date, last_complete_day: date | None, currency: str, *,
           factor: float, window: int, min_amount: float) -> list[Anomaly]:
    if last_complete_day is None:
        return []
    first = month_start(today)
    out = []
    usage = (r for r in data.rows if not r.one_off)  # a purchase is a one-off, not a usage spike
    for service, series in sorted(daily_by_service(usage).items()):
        found: list[Anomaly] = []
        day = last_complete_day
        while day >= first:
            history_start = max(day - timedelta(days=window), data.start)
            history = [series.get(history_start + timedelta(days=i), 0.0)
                       for i in range((day - history_start).days)]
            cost = series.get(day, 0.0)
            if len(history) >= MIN_HISTORY_DAYS:
                base = median(history)
                if cost >= factor * base and cost - base >= min_amount and cost > 0:
                    ratio = f"{cost / base:.1f}x its" if base > 0 else "against a"
                    found.append(Anomaly(
                        "spike", service, cost,
                        f"{service} cost {money(cost, currency)} on {day_text(day)}, {ratio} "
                        f"{len(history)}-day median of {money(base, currency)}",
                        day=day, baseline=base))
            day -= timedelta(days=1)
        if found:  # the latest spike speaks for the service; earlier days are named
            latest, earlier = found[0], [day_text(a.day) for a in found[1:] if a.day]
            also = f" (also {', '.join(earlier[:3])}{' and more' if len(earlier) > 3 else ''})" if earlier else ""
            out.append(replace(latest, text=latest.text + also))
    return sorted(out, key=lambda a: (a.day, a.amount), reverse=True)
