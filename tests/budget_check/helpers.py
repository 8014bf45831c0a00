"""Builders for budget-check tests: cost series, settings, observations."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from jobs.budget_check.config import BudgetCheckSettings, ScopeBudget
from jobs.budget_check.costs import CostData, CostRow

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
SUB2 = "/subscriptions/00000000-0000-0000-0000-000000000002"
EMAIL = "finops@example.org"


def at(text: str) -> datetime:
    """'2026-11-27T07:00' -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def days(first: str, last: str) -> list[date]:
    d, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while d <= end:
        out.append(d)
        d += timedelta(days=1)
    return out


def steady(service: str, per_day: float, first: str, last: str, group: str = "rg-app",
           currency: str = "USD") -> list[CostRow]:
    """The same cost every day from first to last (inclusive)."""
    return [CostRow(d, service, group, per_day, currency) for d in days(first, last)]


def row(day: str, service: str, cost: float, group: str = "rg-app", currency: str = "USD",
        charge_type: str = "Usage") -> CostRow:
    return CostRow(date.fromisoformat(day), service, group, cost, currency, charge_type)


def data(*parts, start: str = "2026-10-01", partial: bool = False, reason: str | None = None) -> CostData:
    rows = [r for part in parts for r in (part if isinstance(part, list) else [part])]
    return CostData(tuple(rows), date.fromisoformat(start), partial=partial, partial_reason=reason)


def settings(**kw) -> BudgetCheckSettings:
    kw.setdefault("contact_emails", [EMAIL])
    return BudgetCheckSettings(**kw)


def budget(config: BudgetCheckSettings | None = None, scope: str = SUB) -> ScopeBudget:
    return (config or settings()).scope_budgets([scope])[0]
