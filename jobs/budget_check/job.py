"""The budget-check job: month-to-date cost by service, a forecast to month end,
budget thresholds alerted once per month, anomalies, and the Azure budget kept
in shape.

Thin: azure_io observes and applies, plan.py decides, alerts.py settles what
to remember, report.py words the details. This module wires them into the runner.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobs.budget_check import azure_io
from jobs.budget_check.alerts import STATE_KEY, settle
from jobs.budget_check.plan import plan as plan_run
from jobs.budget_check.report import details as report_details
from jobs.model import Action, RunReport
from jobs.runner import Job, RunContext

NOTIFICATIONS_OFF = "not sent: notifications are off (set OPS_NOTIFY_KIND and OPS_NOTIFY_URL)"


class BudgetCheckJob(Job):
    name = "budget-check"
    # Actions are a budget write and a notification or two per scope; Consumption's
    # write limits and the webhook need no more than two at once.
    concurrency = 2

    def observe(self, ctx: RunContext) -> azure_io.Observed:
        return azure_io.observe(ctx)

    def plan(self, observed: azure_io.Observed, ctx: RunContext) -> list[Action]:
        result = plan_run(observed.scopes, observed.budgets, observed.state, ctx.now,
                          ctx.settings.budget_check)
        observed.result = result
        if notifier_enabled(ctx):
            return result.actions
        # Skipped, not "sent": an alert is remembered only when its notify action
        # succeeded, so it goes out once notifications are switched on this month.
        return [replace(a, verdict="skipped", error=NOTIFICATIONS_OFF)
                if a.kind == "notify" and not a.verdict else a for a in result.actions]

    def apply(self, action: Action, ctx: RunContext) -> str | None:
        return azure_io.apply(action, ctx)

    def finish(self, observed: azure_io.Observed, report: RunReport, ctx: RunContext) -> dict[str, Any]:
        result = observed.result or plan_run(observed.scopes, observed.budgets, observed.state,
                                             ctx.now, ctx.settings.budget_check)
        state = settle(observed.state, result.state, report.outcomes)
        if not ctx.dry_run and state.to_json() != observed.state.to_json():
            from jobs.store import StateConflict
            try:
                ctx.save_state(STATE_KEY, state.to_json(), observed.etag)
            except StateConflict as exc:  # another run saved first: at worst an alert is sent twice
                report.errors.append(f"alert state not saved: {exc}")
        out = report_details(result)
        out["queries"] = {b.scope: observed.stats[b.key].to_json()
                          for b in observed.budgets if b.key in observed.stats}
        return out


def notifier_enabled(ctx: RunContext) -> bool:
    return ctx.notifier is not None and ctx.notifier.enabled


JOB = BudgetCheckJob()
