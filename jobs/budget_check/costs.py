"""Cost Management query rows -> month-to-date totals, data freshness and a
forecast to month end, for one scope.

Pure: no Azure imports, no clock (``today`` is the run's UTC date, passed in),
no I/O. Must never treat a partial query result as complete: ``CostData``
carries the partial flag and every consumer passes it on.

What observe fetches per scope (``cost_query``): one Cost Management query,
``ActualCost`` (what Azure budgets are evaluated on), custom period from the
first day of the *previous* month to the end of today (UTC), daily
granularity, summed cost grouped by ServiceName and ChargeType (a query takes
at most 2 groupings), following ``nextLink`` until done. The previous month
is there for the trailing windows at month start and for "new this month".
A subscription scope's month to date per resource group comes from a second,
one-page query (``group_query``).

Complete days (``complete_through``): Azure keeps adding a day's cost for
hours after it ends, so a day counts as complete only ``settle_hours`` after
its end (UTC); newer days (today always) are partial: in the month to date,
never in the run rate.

Forecast method (``forecast``), per service, summed for the total:

    usage cost of the complete days of this month
    + run rate x days left after the last complete day (partial days included)
    + one-off charges of this month (ChargeType other than Usage: purchases,
      refunds), counted once, never multiplied

never below what the service has already cost this month. The run rate is a
trimmed mean of the daily usage cost of the trailing window (up to 7 complete
days ending on the last complete day; days without rows count as 0 once the
service has a cost; may reach back into the previous month): the highest and
the lowest day of each 7 are left out, so one odd day does not move it. It is
marked low-confidence with fewer than 2 complete days of this month, or a
window shorter than asked.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

COST_COLUMNS = ("PreTaxCost", "Cost", "CostUSD", "PreTaxCostUSD")  # the first present is used
DATE_COLUMNS = ("UsageDate", "Date")
SERVICE_COLUMNS = ("ServiceName",)
GROUP_COLUMNS = ("ResourceGroupName", "ResourceGroup")
CHARGE_TYPE_COLUMNS = ("ChargeType",)
USAGE = "Usage"  # the ChargeType of metered use; Purchase, Refund, ... are one-off charges
CURRENCY_COLUMNS = ("Currency", "BillingCurrency")
MIN_CONFIDENT_DAYS = 2  # complete days of this month before a forecast is trusted
NO_GROUP = "(none)"  # costs without a resource group (marketplace, support, ...)


class CostDataError(ValueError):
    """The query result has not the columns or values this job needs."""


@dataclass(frozen=True)
class CostRow:
    day: date
    service: str
    resource_group: str
    cost: float
    currency: str
    charge_type: str = USAGE

    @property
    def one_off(self) -> bool:
        return self.charge_type.lower() != USAGE.lower()


@dataclass(frozen=True)
class CostData:
    """One scope's query result, as observe hands it to plan."""

    rows: tuple[CostRow, ...]
    start: date  # first day the query covered
    partial: bool = False  # some pages are missing (throttled past the wait cap, ...)
    partial_reason: str | None = None
    by_resource_group: Mapping[str, float] | None = None  # this month, from group_query
    groups_error: str | None = None  # why by_resource_group could not be read

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({r.currency for r in self.rows if r.currency}))


def query_period(today: date) -> tuple[date, date]:
    """(first day of the previous month, today): the days observe must fetch."""
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1), today


def cost_query(today: date) -> dict[str, Any]:
    """The body of the one Cost Management query per scope (POST .../query)."""
    start, end = query_period(today)
    return _query(start, end, "Daily", "ServiceName", "ChargeType")


def group_query(today: date) -> dict[str, Any]:
    """This month's cost per resource group (a subscription scope's second query)."""
    return _query(month_start(today), today, "None", "ResourceGroupName")


def _query(start: date, end: date, granularity: str, *dimensions: str) -> dict[str, Any]:
    return {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": f"{start.isoformat()}T00:00:00+00:00",
                       "to": f"{end.isoformat()}T23:59:59+00:00"},
        "dataset": {
            "granularity": granularity,
            "aggregation": {"totalCost": {"name": "PreTaxCost", "function": "Sum"}},
            "grouping": [{"type": "Dimension", "name": d} for d in dimensions],
        },
    }


def parse_groups(columns: Sequence[Any], rows: Iterable[Sequence[Any]]) -> dict[str, float]:
    """One page of ``group_query``'s result -> resource group -> cost."""
    find = _column_finder(columns)
    i_cost, i_group = find(COST_COLUMNS), find(GROUP_COLUMNS)
    out: dict[str, float] = {}
    for row in rows:
        group = str(row[i_group] or "").strip().lower() or NO_GROUP
        out[group] = out.get(group, 0.0) + _cost(row[i_cost])
    return out


def _column_finder(columns: Sequence[Any]):
    """find(candidate names, required) -> the index of the first present column."""
    names = [str(c["name"] if isinstance(c, Mapping) else c) for c in columns]
    index = {n.lower(): i for i, n in enumerate(names)}

    def find(candidates: tuple[str, ...], required: bool = True) -> int | None:
        for name in candidates:
            if name.lower() in index:
                return index[name.lower()]
        if required:
            raise CostDataError(f"query result has no {' or '.join(candidates)} column "
                                f"(columns: {', '.join(names) or 'none'})")
        return None
    return find


def _cost(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CostDataError(f"cost {value!r} is not a number") from None


def parse_rows(columns: Sequence[Any], rows: Iterable[Sequence[Any]],
               default_currency: str = "") -> list[CostRow]:
    """One page of a query result -> typed rows. ``columns`` are the result's
    column objects ({"name", "type"}) or names; rows follow their order."""
    find = _column_finder(columns)
    i_cost, i_day = find(COST_COLUMNS), find(DATE_COLUMNS)
    i_service, i_group = find(SERVICE_COLUMNS), find(GROUP_COLUMNS, required=False)
    i_currency = find(CURRENCY_COLUMNS, required=False)
    i_charge = find(CHARGE_TYPE_COLUMNS, required=False)
    out = []
    for row in rows:
        cost = _cost(row[i_cost])
        out.append(CostRow(
            day=parse_usage_date(row[i_day]),
            service=str(row[i_service] or "").strip() or "(unknown service)",
            resource_group=(str(row[i_group] or "").strip().lower() or NO_GROUP)
            if i_group is not None else NO_GROUP,
            cost=cost,
            currency=str(row[i_currency] or "").upper() if i_currency is not None else default_currency,
            charge_type=(str(row[i_charge] or "").strip() or USAGE) if i_charge is not None else USAGE))
    return out


def parse_usage_date(value: Any) -> date:
    """20261127 (a number, as the query gives it), '20261127' or '2026-11-27T00:00:00'."""
    text = str(int(value)) if isinstance(value, (int, float)) else str(value).strip()
    try:
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise CostDataError(f"usage date {value!r} is not a date") from None


# -- month to date ------------------------------------------------------------

def month_start(today: date) -> date:
    return today.replace(day=1)


def month_end(today: date) -> date:
    return today.replace(day=calendar.monthrange(today.year, today.month)[1])


@dataclass(frozen=True)
class MonthToDate:
    month: str  # "2026-11"
    total: float
    by_service: Mapping[str, float]  # largest first
    by_resource_group: Mapping[str, float]  # largest first


def month_to_date(rows: Iterable[CostRow], today: date,
                  by_resource_group: Mapping[str, float] | None = None) -> MonthToDate:
    """Cost of this month so far (today's partial rows included: they are spent);
    per resource group from ``by_resource_group`` when the rows carry none."""
    first = month_start(today)
    services: dict[str, float] = {}
    groups: dict[str, float] = {}
    for r in rows:
        if first <= r.day <= today:
            services[r.service] = services.get(r.service, 0.0) + r.cost
            groups[r.resource_group] = groups.get(r.resource_group, 0.0) + r.cost
    if by_resource_group is not None:
        groups = dict(by_resource_group)
    return MonthToDate(month=first.strftime("%Y-%m"), total=sum(services.values()),
                       by_service=_largest_first(services), by_resource_group=_largest_first(groups))


def _largest_first(values: dict[str, float]) -> dict[str, float]:
    return dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))


def daily(rows: Iterable[CostRow]) -> dict[date, float]:
    """Cost per day, all services."""
    out: dict[date, float] = {}
    for r in rows:
        out[r.day] = out.get(r.day, 0.0) + r.cost
    return out


def daily_by_service(rows: Iterable[CostRow]) -> dict[str, dict[date, float]]:
    """service -> day -> cost."""
    out: dict[str, dict[date, float]] = {}
    for r in rows:
        series = out.setdefault(r.service, {})
        series[r.day] = series.get(r.day, 0.0) + r.cost
    return out


# -- freshness ----------------------------------------------------------------

@dataclass(frozen=True)
class Freshness:
    last_complete_day: date | None  # latest day with data before today
    age_days: int | None  # today - last complete day
    stale: bool  # older than the settings expect
    text: str


def freshness(data: CostData, today: date, max_age_days: int) -> Freshness:
    days = [r.day for r in data.rows if r.day < today]
    if not days:
        return Freshness(None, None, False, "no cost data before today in the queried period")
    last = max(days)
    age = (today - last).days
    stale = age > max_age_days
    text = f"data to {day_text(last)} ({age} day{'s' if age != 1 else ''} old)"
    if data.partial:
        text = f"partial data, seen to {day_text(last)}"
    elif stale:
        text += f"; expected at most {max_age_days} days"
    return Freshness(last, age, stale, text)


# -- forecast -----------------------------------------------------------------

def complete_through(now: datetime, newest: date | None, settle_hours: float) -> date | None:
    """The newest day whose cost is final: seen in the data (``newest``) and ended
    at least ``settle_hours`` before ``now`` (Azure adds a day's cost for hours after it)."""
    if newest is None:
        return None
    settled = (now.astimezone(timezone.utc) - timedelta(hours=settle_hours)).date() - timedelta(days=1)
    return min(newest, settled)


def run_rate(values: Sequence[float]) -> float:
    """Trimmed mean: without the highest and the lowest day of each 7 (at least one
    of each from 3 days on), so one odd day moves it little."""
    ordered = sorted(values)
    trim = max(1, len(ordered) // 7) if len(ordered) >= 3 else 0
    kept = ordered[trim:len(ordered) - trim]
    return sum(kept) / len(kept) if kept else 0.0


@dataclass(frozen=True)
class Forecast:
    total: float
    by_service: Mapping[str, float]
    daily_rate: float  # run rate of the window, all services
    window: tuple[date, date] | None  # first and last day of the trailing window
    remaining_days: int  # days estimated: after the last complete day to month end
    complete_days: int  # complete days of this month in the data
    confidence: str  # "normal" or "low"
    method: str  # how this figure was made, for people
    one_off: float = 0.0  # this month's charges other than usage, counted once


def forecast(data: CostData, today: date, last_complete_day: date | None,
             window_days: int = 7) -> Forecast:
    """Cost of this month at its end; see the module docstring for the method."""
    first, last_of_month = month_start(today), month_end(today)
    mtd = month_to_date(data.rows, today)
    if last_complete_day is None:
        return Forecast(mtd.total, dict(mtd.by_service), 0.0, None,
                        (last_of_month - first).days + 1, 0, "low",
                        "no complete day of cost data yet: the forecast is the cost so far")
    known_until = max(last_complete_day, first - timedelta(days=1))
    remaining = (last_of_month - known_until).days
    complete_days = max(0, (last_complete_day - first).days + 1)
    window_start = max(last_complete_day - timedelta(days=window_days - 1), data.start)
    window_len = (last_complete_day - window_start).days + 1
    usage = daily_by_service(r for r in data.rows if not r.one_off)
    one_off = daily_by_service(r for r in data.rows if r.one_off)
    by_service: dict[str, float] = {}
    rates: dict[str, float] = {}
    for service in sorted(set(usage) | set(one_off)):
        series = usage.get(service, {})
        base = sum(c for d, c in series.items() if first <= d <= last_complete_day)
        since = max(window_start, min(series)) if series else window_start  # no zeros before its first cost
        days = [series.get(since + timedelta(days=i), 0.0) for i in range((last_complete_day - since).days + 1)]
        rate = run_rate(days)
        once = sum(c for d, c in one_off.get(service, {}).items() if first <= d <= today)
        estimate = max(base + rate * remaining + once, mtd.by_service.get(service, 0.0))
        rates[service] = rate
        if estimate or service in mtd.by_service:
            by_service[service] = estimate
    rate = sum(rates.values())
    once_total = sum(r.cost for r in data.rows if r.one_off and first <= r.day <= today)
    base_total = sum(r.cost for r in data.rows if not r.one_off and first <= r.day <= last_complete_day)
    low = complete_days < MIN_CONFIDENT_DAYS or window_len < window_days
    method = (f"{_money_plain(base_total)} usage for the complete days to {day_text(last_complete_day)} + "
              f"trimmed mean of {window_len} day{'s' if window_len != 1 else ''} "
              f"{day_text(window_start)}-{day_text(last_complete_day)} ({_money_plain(rate)}/day) x "
              f"{remaining} day{'s' if remaining != 1 else ''} left")
    if once_total:
        method += f" + {_money_plain(once_total)} one-off charges (purchases, refunds), counted once"
    if low:
        method += (f"; low confidence: only {complete_days} complete day"
                   f"{'s' if complete_days != 1 else ''} of this month" if complete_days < MIN_CONFIDENT_DAYS
                   else f"; low confidence: only {window_len} days of history")
    return Forecast(total=sum(by_service.values()), by_service=_largest_first(by_service),
                    daily_rate=rate, window=(window_start, last_complete_day),
                    remaining_days=remaining, complete_days=complete_days,
                    confidence="low" if low else "normal", method=method, one_off=once_total)


@dataclass(frozen=True)
class CrossCheck:
    ours: float
    azure: float | None  # the budget's forecastSpend
    difference: float | None  # ours - azure
    percent: float | None  # difference as % of azure's
    text: str


def cross_check(ours: float, azure: float | None, currency: str) -> CrossCheck:
    """Our forecast against the Azure budget's own (which cannot be split by service)."""
    if azure is None:
        return CrossCheck(ours, None, None, None, "Azure gives no forecast for this budget")
    diff = ours - azure
    pct = diff / azure * 100 if azure else None
    rel = f" ({pct:+.1f}%)" if pct is not None else ""
    return CrossCheck(ours, azure, diff, pct,
                      f"Azure's budget forecast is {money(azure, currency)}; ours is "
                      f"{money(ours, currency)}, {money(diff, currency, signed=True)}{rel}")


# -- words --------------------------------------------------------------------

_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: float, currency: str, signed: bool = False) -> str:
    """412.3, 'USD' -> '$412.30'; other currencies: '412.30 CHF'."""
    sign = ("+" if amount >= 0 else "-") if signed else ("-" if amount < 0 else "")
    symbol = _SYMBOL.get(currency)
    value = f"{abs(amount):,.2f}"
    return f"{sign}{symbol}{value}" if symbol else f"{sign}{value} {currency}".strip()


def _money_plain(amount: float) -> str:
    return f"{amount:,.2f}"


def day_text(d: date) -> str:
    """date(2026, 11, 12) -> 'Nov 12'."""
    return f"{d:%b} {d.day}"


def utc_date(now: datetime) -> date:
    """The run's UTC day (``now`` comes from the runner, never from a clock here)."""
    return now.astimezone(timezone.utc).date()
