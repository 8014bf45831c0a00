"""The budget-check run report's details: per scope, a cost table and a
findings table (the forecast with its confidence and method, Azure's own
forecast, anomalies, problems) for the CLI (``tables``, rendered by ``python -m jobs``)
and the same figures as JSON (``scopes``), with freshness, forecast method,
budget drift, anomalies and the partial flag.

Pure: no Azure imports, no clock, no I/O. Must never show partial figures
without saying so (the table title and every JSON scope carry it).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from jobs.budget_check.costs import money
from jobs.budget_check.plan import BudgetPlan, ScopeResult

COLUMNS = ["service", "month to date", "forecast", "share of budget"]
GROUP_COLUMNS = ["resource group", "month to date", "share of budget"]
FINDING_COLUMNS = ["finding"]  # one column: the renderer right-aligns every other one


def details(result: BudgetPlan) -> dict[str, Any]:
    tables: list[dict[str, Any]] = []
    for s in result.scopes:
        tables.append(cost_table(s))
        groups = group_table(s)
        if groups:
            tables.append(groups)
        found = findings_table(s)
        if found:
            tables.append(found)
    return {"tables": tables, "scopes": [scope_json(s) for s in result.scopes]}


def _title(s: ScopeResult) -> str:
    b = s.budget
    parts = [f"Cost of {b.label} in {_month_name(s.month)}, budget {money(b.amount, b.currency)}"]
    if s.freshness:
        parts.append(s.freshness.text)
    if s.data_currency and s.data_currency != b.currency:
        parts.append(f"costs in {s.data_currency}")
    if s.partial:
        parts.append(f"PARTIAL ({s.partial_reason or 'incomplete'}): figures are at least these")
    return "; ".join(parts)


def _share(value: float, amount: float) -> str:
    return f"{value / amount * 100:.1f}%"


def cost_table(s: ScopeResult) -> dict[str, Any]:
    """service | month to date | forecast | share of budget, largest first, then a total."""
    rows: list[list[str]] = []
    if s.mtd is None:
        return {"title": _title(s), "columns": COLUMNS, "rows": [["(no cost data)", "", "", ""]]}
    amount, fc = s.budget.amount, s.forecast
    services = list(s.mtd.by_service) + [x for x in (fc.by_service if fc else {}) if x not in s.mtd.by_service]
    for name in services:
        value = s.mtd.by_service.get(name, 0.0)
        rows.append([name, f"{value:,.2f}", f"{fc.by_service.get(name, 0.0):,.2f}" if fc else "",
                     _share(value, amount)])
    rows.append(["Total", f"{s.mtd.total:,.2f}", f"{fc.total:,.2f}" if fc else "",
                 _share(s.mtd.total, amount)])
    return {"title": _title(s), "columns": COLUMNS, "rows": rows}


def group_table(s: ScopeResult) -> dict[str, Any] | None:
    """Month to date per resource group, for a subscription with more than one."""
    if s.mtd is None or s.budget.resource_group or len(s.mtd.by_resource_group) < 2:
        return None
    rows = [[g, f"{v:,.2f}", _share(v, s.budget.amount)] for g, v in s.mtd.by_resource_group.items()]
    return {"title": f"Cost of {s.budget.label} by resource group in {_month_name(s.month)}"
            + ("; PARTIAL" if s.partial else ""),
            "columns": GROUP_COLUMNS, "rows": rows}


def findings_table(s: ScopeResult) -> dict[str, Any] | None:
    """The forecast's confidence and method, Azure's forecast beside it, the anomalies and
    what is missing or not judged."""
    rows: list[list[str]] = []
    if s.forecast is not None:
        rows.append([f"forecast {s.forecast.total:,.2f}, {s.forecast.confidence} confidence: "
                     f"{s.forecast.method}"])
    if s.cross_check is not None:
        rows.append([s.cross_check.text])
    rows += [[f"{a.kind}: {a.text}"] for a in s.anomalies]
    rows += [[f"problem: {p}"] for p in s.problems]
    if not rows:
        return None
    return {"title": f"Forecast and anomalies of {s.budget.label} in {_month_name(s.month)}"
            + ("; PARTIAL" if s.partial else ""), "columns": FINDING_COLUMNS, "rows": rows}


def scope_json(s: ScopeResult) -> dict[str, Any]:
    b, fc = s.budget, s.forecast
    out: dict[str, Any] = {
        "scope": b.scope, "month": s.month, "currency": b.currency, "amount": b.amount,
        "partial": s.partial, "partial_reason": s.partial_reason, "problems": list(s.problems),
        "budget": {
            "state": s.budget_status.state, "drift": list(s.budget_status.drift),
            "azure_current_spend": s.budget_status.observed.current_spend if s.budget_status.observed else None,
            "azure_forecast_spend": s.budget_status.observed.forecast_spend if s.budget_status.observed else None,
            "start_date": s.budget_status.observed.start_date if s.budget_status.observed else None,
        },
        "thresholds": [{"threshold": c.threshold.written, "percent": c.threshold.percent,
                        "kind": c.threshold.kind, "limit": _r(c.limit), "value": _r(c.value),
                        "status": c.status, "note": c.note} for c in s.thresholds],
        "anomalies": [{"kind": a.kind, "service": a.service, "day": _d(a.day), "amount": _r(a.amount),
                       "baseline": _r(a.baseline), "text": a.text} for a in s.anomalies],
    }
    if s.freshness:
        out["freshness"] = {"last_complete_day": _d(s.freshness.last_complete_day),
                            "age_days": s.freshness.age_days, "stale": s.freshness.stale,
                            "text": s.freshness.text}
    if s.mtd is not None:
        out["month_to_date"] = {
            "total": _r(s.mtd.total), "share_of_budget": _r(s.mtd.total / b.amount * 100),
            "by_service": [{"service": n, "month_to_date": _r(v),
                            "forecast": _r(fc.by_service.get(n, 0.0)) if fc else None,
                            "share_of_budget": _r(v / b.amount * 100)}
                           for n, v in s.mtd.by_service.items()],
            "by_resource_group": [{"resource_group": g, "month_to_date": _r(v)}
                                  for g, v in s.mtd.by_resource_group.items()]}
    if fc is not None:
        out["forecast"] = {
            "total": _r(fc.total), "share_of_budget": _r(fc.total / b.amount * 100),
            "method": fc.method, "confidence": fc.confidence, "daily_rate": _r(fc.daily_rate),
            "one_off": _r(fc.one_off),
            "window": [_d(fc.window[0]), _d(fc.window[1])] if fc.window else None,
            "remaining_days": fc.remaining_days,
            "by_service": {n: _r(v) for n, v in fc.by_service.items()},
            "azure": None if s.cross_check is None else {
                "forecast": _r(s.cross_check.azure), "difference": _r(s.cross_check.difference),
                "difference_percent": _r(s.cross_check.percent), "text": s.cross_check.text}}
    return out


def _month_name(month: str) -> str:
    """'2026-11' -> 'November 2026'."""
    return date.fromisoformat(month + "-01").strftime("%B %Y")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _d(value: date | None) -> str | None:
    return value.isoformat() if value else None
