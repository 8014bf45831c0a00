"""Pure decisions of the budget-check job: (observed costs and budgets per
scope, alert state, now, settings) -> (actions, the alert state to keep if
they succeed, a summary per scope for the report).

Must never: import an Azure SDK, read the clock, do I/O, present partial cost
data as complete, or send an all-clear.

Per scope, in order:

1. the budget: ``create-budget`` / ``update-budget`` / nothing (budget.py);
2. costs: a failed query is a failed ``cost-query`` verdict; a partial one a
   failed ``partial-costs`` verdict (the run ends failed, the report says
   partial) while what the partial sum proves is still used (alerts.py);
   costs in another currency than the budget's: a failed
   ``currency-mismatch`` verdict and no threshold is judged (and a budget
   create or update becomes a failed ``budget-currency``: never written in
   the wrong currency, also when the budget's own spend unit shows it); data older than
   ``max_data_age_days``: a skipped ``stale-data`` verdict (a warning);
3. thresholds: one ``notify`` action per crossed threshold not yet alerted
   this month (target ``budget:<scope>:<yyyy-mm>:<kind>-<percent>``);
4. anomalies (complete data only), named in the report and in the alerts.

The job's ``finish`` calls ``plan`` again with the same input (it is pure),
saves ``alerts.settle(previous, result.state, report.outcomes)`` unless dry
run, and returns ``report.details(result)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Sequence

from jobs.budget_check.alerts import (AlertState, Context, ScopeAlerts, ThresholdCheck,
                                      check_thresholds, record_for)
from jobs.budget_check.anomalies import Anomaly, find_anomalies
from jobs.budget_check.budget import BudgetStatus, ObservedBudget, budget_actions
from jobs.budget_check.config import BudgetCheckSettings, ScopeBudget
from jobs.budget_check.costs import (CostData, CrossCheck, Forecast, Freshness, MonthToDate,
                                     cross_check, complete_through, forecast, freshness,
                                     month_to_date, utc_date)
from jobs.model import Action

__all__ = ["ScopeObservation", "ScopeResult", "BudgetPlan", "plan"]


@dataclass(frozen=True)
class ScopeObservation:
    """What observe found for one scope. ``costs`` None with ``cost_error`` when the
    query failed outright; ``budget`` None and no ``budget_error``: no such budget."""

    scope: str
    costs: CostData | None = None
    cost_error: str | None = None
    budget: ObservedBudget | None = None
    budget_error: str | None = None


@dataclass(frozen=True)
class ScopeResult:
    """One scope's figures and findings, for the report."""

    budget: ScopeBudget
    month: str
    budget_status: BudgetStatus
    mtd: MonthToDate | None = None
    forecast: Forecast | None = None
    freshness: Freshness | None = None
    cross_check: CrossCheck | None = None
    thresholds: tuple[ThresholdCheck, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()
    partial: bool = False
    partial_reason: str | None = None
    problems: tuple[str, ...] = ()  # why figures are missing or not judged
    data_currency: str | None = None
    negative_rows: bool = False  # credits or refunds: a partial sum is then no lower bound


@dataclass(frozen=True)
class BudgetPlan:
    actions: list[Action]
    state: AlertState  # to keep if every action succeeds; see alerts.settle
    scopes: list[ScopeResult] = field(default_factory=list)


def plan(observations: Sequence[ScopeObservation], budgets: Sequence[ScopeBudget],
         state: AlertState, now: datetime, config: BudgetCheckSettings) -> BudgetPlan:
    """Decide this run for every scope in ``budgets``."""
    by_scope = {o.scope.lower(): o for o in observations}
    actions: list[Action] = []
    results: list[ScopeResult] = []
    scopes: dict[str, ScopeAlerts] = {}
    requires: dict[str, str] = {}
    for budget in budgets:
        obs = by_scope.get(budget.key) or ScopeObservation(budget.scope, cost_error="not observed")
        scope_actions, result = _plan_scope(obs, budget, state, now, config)
        actions += scope_actions
        results.append(result)
        sent = dict(state.sent(budget.key, result.month))
        for check in result.thresholds:
            if check.action is not None:
                sent[check.threshold.key] = record_for(_context(result, now, config))
                requires[f"{budget.key}|{check.threshold.key}"] = check.action.key
        scopes[budget.key] = ScopeAlerts(result.month, sent)
    return BudgetPlan(actions=actions, state=AlertState(scopes=scopes, requires=requires),
                      scopes=results)


def _plan_scope(obs: ScopeObservation, budget: ScopeBudget, state: AlertState, now: datetime,
                config: BudgetCheckSettings) -> tuple[list[Action], ScopeResult]:
    today = utc_date(now)
    month = today.strftime("%Y-%m")
    actions, status = budget_actions(budget, obs.budget, obs.budget_error, config, today)
    actions = _refuse_foreign_budget_write(actions, obs, budget)
    if obs.costs is None:
        error = obs.cost_error or "no cost data"
        actions.append(Action.fail(budget.scope, f"could not query costs: {error}", kind="cost-query"))
        return actions, ScopeResult(budget, month, status, problems=(f"no cost data: {error}",))

    data = obs.costs
    problems: list[str] = []
    fresh = freshness(data, today, config.max_data_age_days)
    mtd = month_to_date(data.rows, today, data.by_resource_group)
    complete = complete_through(now, fresh.last_complete_day, config.data_settle_hours)
    fc = forecast(data, today, complete, config.forecast_window_days)
    azure_forecast = obs.budget.forecast_spend if obs.budget else None
    check = cross_check(fc.total, azure_forecast, budget.currency) if obs.budget else None
    currencies = data.currencies
    data_currency = currencies[0] if len(currencies) == 1 else None
    reason = (data.partial_reason or "some result pages are missing") if data.partial else None
    if reason:
        actions.append(Action.fail(budget.scope, f"cost data is partial: {reason}; figures are lower "
                                                 "bounds", kind="partial-costs"))
        problems.append(f"partial cost data: {reason}")
    if data.groups_error:
        problems.append(f"cost per resource group not read: {data.groups_error}")
    if fresh.stale and not data.partial:
        actions.append(Action.skip(budget.scope, f"cost data is stale: {fresh.text}", kind="stale-data"))
        problems.append(f"stale cost data: {fresh.text}")
    anomalies: tuple[Anomaly, ...] = ()
    if data.partial:
        problems.append("anomalies not judged on partial data")
    else:
        anomalies = tuple(find_anomalies(data, today, complete, budget.currency,
                                         factor=config.spike_factor, window=config.spike_window_days,
                                         min_amount=config.anomaly_min_amount))
    result = ScopeResult(budget, month, status, mtd=mtd, forecast=fc, freshness=fresh,
                         cross_check=check, anomalies=anomalies, partial=data.partial,
                         partial_reason=reason,
                         data_currency=data_currency,
                         negative_rows=any(r.cost < 0 for r in data.rows))
    mismatch = [c for c in currencies if c != budget.currency]
    if mismatch:
        text = (f"costs are in {', '.join(currencies)} but the budget is in {budget.currency}; "
                f"set the scope's currency in OPS_BUDGET_CHECK__SCOPES")
        actions.append(Action.fail(budget.scope, text, kind="currency-mismatch"))
        problems.append(f"thresholds not judged: {text}")
        return actions, replace(result, problems=tuple(problems))
    ctx = _context(result, now, config)
    checks = check_thresholds(ctx, state.sent(budget.key, month), config.operator)
    actions += [c.action for c in checks if c.action is not None]
    return actions, replace(result, thresholds=tuple(checks), problems=tuple(problems))


def billing_currencies(obs: ScopeObservation) -> set[str]:
    """The scope's billing currency as Azure shows it: the cost rows' Currency and the
    budget's spend unit (a budget's amount is in its billing account's currency)."""
    found = set(obs.costs.currencies) if obs.costs else set()
    if obs.budget and obs.budget.unit:
        found.add(obs.budget.unit.upper())
    return found


def _refuse_foreign_budget_write(actions: list[Action], obs: ScopeObservation,
                                 budget: ScopeBudget) -> list[Action]:
    """A budget write in another currency than the scope is billed in would set a wrong amount."""
    known = billing_currencies(obs)
    if not known and obs.costs is None:  # a create now could be in the wrong currency
        text = (f"budget not created yet: the billing currency of {budget.scope} is unknown "
                "(no cost data); it is created once a run reads the scope's costs")
        return [Action.skip(a.target, text, kind="budget-currency") if a.kind == "create-budget" else a
                for a in actions]
    foreign = sorted(c for c in known if c != budget.currency)
    if not foreign:
        return actions
    text = (f"budget not written: {budget.scope} is billed in {', '.join(foreign)} but its budget is "
            f"configured in {budget.currency} (OPS_BUDGET_CHECK__SCOPES or OPS_BUDGET_CHECK__CURRENCY)")
    return [Action.fail(a.target, text, kind="budget-currency")
            if a.kind in ("create-budget", "update-budget") else a for a in actions]


def _context(result: ScopeResult, now: datetime, config: BudgetCheckSettings) -> Context:
    assert result.mtd is not None and result.freshness is not None
    return Context(budget=result.budget, now=now, mtd=result.mtd, forecast=result.forecast,
                   freshness=result.freshness, anomalies=result.anomalies,
                   partial=result.partial, partial_reason=result.partial_reason,
                   negative_rows=result.negative_rows, top_services=config.top_services)
