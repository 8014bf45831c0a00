"""The dev-hours job: stops opted-in App Service apps (and scales their plans
down) outside their working hours, and brings them back.

Thin: azure_io observes and applies, plan.py decides, state.py settles what
to remember, explain.py explains. This module wires them into the runner and
words the run's details and the CLI's explanation.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from jobs.dev_hours import azure_io
from jobs.dev_hours.explain import Explanation
from jobs.dev_hours.explain import explain as explain_plan
from jobs.dev_hours.plan import plan as plan_run
from jobs.dev_hours.state import STATE_KEY, State, settle, write_ahead
from jobs.dev_hours.targets import classify
from jobs.model import Action, RunReport
from jobs.runner import Job, RunContext

PLAN_WRITES = ("scale-down-plan", "restore-plan")
TAG_WRITES = (*PLAN_WRITES, "mark-site", "unmark-site")  # PATCHes carrying tags
_KEPT_OBSERVATIONS = 4  # for explain() right after a dry run in the same process


class DevHoursJob(Job):
    name = "dev-hours"
    # Resource Manager's write bucket (per subscription, principal and region) is 200
    # then 10/s. App Service start/stop calls take about a second or more and a plan
    # scale many seconds, so 8 in flight stay under 8 writes/s: below the 10/s refill
    # whatever the number of writes. Where writes answer faster (the 100 ms sandbox:
    # up to 80/s), a run's writes are capped by OPS_DEV_HOURS__MAX_ACTIONS_PER_RUN
    # (default 50), a quarter of the 200 burst, and a 15-minute timer refills it.
    concurrency = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observations: dict[str, tuple[azure_io.Observed, Any]] = {}
        self._refused: dict[str, dict[str, tuple[str, str]]] = {}  # run id -> action key -> code, message

    def observe(self, ctx: RunContext) -> azure_io.Observed:
        observed = azure_io.observe(ctx)
        with self._lock:
            self._observations[ctx.run_id] = (observed, ctx.settings.dev_hours)
            while len(self._observations) > _KEPT_OBSERVATIONS:
                self._observations.pop(next(iter(self._observations)))
        return observed

    def plan(self, observed: azure_io.Observed, ctx: RunContext) -> list[Action]:
        actions, planned = plan_run(observed.sites, observed.plans, observed.state, ctx.now,
                                    ctx.settings.dev_hours)
        observed.planned = planned
        # A PATCH replaces all tags of a plan or app: apply merges with the tags seen now.
        tags = {r.id.lower(): dict(r.tags) for r in [*observed.plans, *observed.sites]}
        return [replace(a, params={**a.params, "current_tags": tags.get(a.target.lower(), {})})
                if a.kind in TAG_WRITES and not a.verdict else a for a in actions]

    def before_apply(self, observed: azure_io.Observed, actions: list[Action], ctx: RunContext) -> None:
        """Which apps this run stops is saved before it stops them (state.write_ahead): a
        kill before the state is saved after apply must not make them someone else's."""
        ahead = write_ahead(observed.state, actions)
        if ahead is not None:
            observed.etag = ctx.save_state(STATE_KEY, ahead.to_json(), observed.etag)

    def apply(self, action: Action, ctx: RunContext) -> str | None:
        try:
            return azure_io.apply(action, ctx)
        except azure_io.AzureRefusal as exc:  # remembered by finish(): not asked again every run
            with self._lock:
                self._refused.setdefault(ctx.run_id, {})[action.key] = (exc.code, exc.azure_message)
            raise

    def finish(self, observed: azure_io.Observed, report: RunReport, ctx: RunContext) -> dict[str, Any]:
        report.errors.extend(observed.errors)
        with self._lock:
            refused = self._refused.pop(ctx.run_id, {})
        state = observed.state
        if observed.planned is not None:
            state = settle(observed.state, observed.planned, report.outcomes, refused)
            if not ctx.dry_run:
                # The full record (applied transitions, slots, refusals) in the run store;
                # the apps' markers and the plans' restore tags rebuild it if it is lost.
                from jobs.store import StateConflict
                try:
                    ctx.save_state(STATE_KEY, state.to_json(), observed.etag)
                except StateConflict as exc:  # another run saved first: it plans again next run
                    report.errors.append(f"state not saved: {exc}")
        return details(observed, report, state, ctx)

    def explain(self, report: dict[str, Any], days: float = 7) -> str:
        """What `python -m jobs plan dev-hours` prints after the dry run's report."""
        with self._lock:
            kept = self._observations.get(report.get("run_id", ""))
        now = datetime.fromisoformat(report["now"].replace("Z", "+00:00"))
        if kept is None:  # the report came from elsewhere: look again
            kept = self._observe_again(now)
        observed, config = kept
        from jobs import service
        # the days ahead concern every target, not only those due now: read their slots too
        azure_io.add_all_details(service.environment().clients, observed, now, config)
        return render_explanation(explain_plan(observed.sites, observed.plans, observed.state, now,
                                               config, days))

    def _observe_again(self, now: datetime) -> tuple[azure_io.Observed, Any]:
        from jobs import service
        env = service.environment()
        ctx = RunContext(job=self.name, run_id="explain", now=now, dry_run=True,
                         settings=env.settings, clients=env.clients, store=env.store)
        return azure_io.observe(ctx), env.settings.dev_hours


# -- run details -------------------------------------------------------------------------

def details(observed: azure_io.Observed, report: RunReport, state: State, ctx: RunContext
            ) -> dict[str, Any]:
    """Counts, per-plan savings estimates of this run's scale-downs, and a table for people."""
    config = ctx.settings.dev_hours
    plans_by_id = {p.id.lower(): p for p in observed.plans}
    statuses: dict[str, int] = {}
    for site in observed.sites:
        c = classify(site, plans_by_id.get((site.plan_id or "").lower()), ctx.now, config)
        statuses[c.status] = statuses.get(c.status, 0) + 1
    done = ("planned",) if ctx.dry_run else ("succeeded",)
    by_kind: dict[str, int] = {}
    savings = []
    for outcome in report.outcomes:
        a = outcome.action
        if outcome.status in done:
            by_kind[a.kind] = by_kind.get(a.kind, 0) + 1
        if a.kind == "scale-down-plan" and not a.verdict and outcome.status in ("succeeded", "planned",
                                                                                 "failed"):
            est = a.params.get("estimate") or {}
            savings.append({"plan": a.target, "name": a.params.get("plan"),
                            "from": _label(a.params.get("original")), "to": _label(a.params.get("sku")),
                            "hours_off": est.get("hours_off"), "hourly_saving": est.get("hourly_saving"),
                            "saving": est.get("saving") if outcome.status != "failed" else None,
                            "status": outcome.status, "error": outcome.error})
    scaled_down = sorted(plans_by_id[k].name for k, r in state.plans.items()
                         if r.original is not None and k in plans_by_id)
    known = [s["saving"] for s in savings if s["saving"] is not None]
    result: dict[str, Any] = {
        "sites": len(observed.sites), "plans": len(observed.plans),
        "apps": {k: statuses.get(k, 0) for k in ("target", "denied", "invalid", "ignored")},
        "apps_with_slots_read": len(observed.detailed),
        "done": by_kind,
        "savings": savings,
        "estimated_saving": round(sum(known), 2) if known else None,
        "estimated_hours_off": round(sum(s["hours_off"] or 0 for s in savings if s["status"] != "failed"), 2),
        "scaled_down_plans": scaled_down,
    }
    if savings:
        rows = [[s["name"], s["from"], s["to"], _num(s["hours_off"]), _num(s["hourly_saving"], 3),
                 _num(s["saving"]), s["status"] if not s["error"] else f"{s['status']}: {s['error']}"]
                for s in savings]
        if known:
            rows.append(["total", "", "", _num(result["estimated_hours_off"]), "",
                         _num(result["estimated_saving"]), ""])
        result["tables"] = [{
            "title": "Plans scaled down by this run (estimate until the first app is on again; "
                     "prices from OPS_DEV_HOURS__PRICES)",
            "columns": ["plan", "from", "to", "hours off", "saving/h", "saving", "outcome"],
            "rows": rows}]
    return result


def _label(sku: dict[str, Any] | None) -> str:
    return f"{sku['name']} x{sku['capacity']}" if sku else "?"


def _num(value: float | None, digits: int = 2) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


# -- the CLI's explanation ---------------------------------------------------------------

def render_explanation(exp: Explanation) -> str:
    """Per target: schedule, what is in force, the next transitions in local time
    and UTC, what a run now would do; per plan: hours off ahead and the saving."""
    lines = [f"dev-hours at {_utc(exp.now)}: the next {exp.days:g} day(s)"]
    for t in exp.targets:
        where = t.id.split("/")[4] if t.id.count("/") >= 4 else ""
        lines.append("")
        if t.status != "target":
            lines.append(f"{t.name} ({where}): {t.status.upper()}: {t.reason}")
            lines.append("  never touched" if t.status == "denied"
                         else "  not touched until its tags are fixed")
            continue
        lines.append(f"{t.name} ({where}): {t.schedule} [{t.zone}]")
        if t.in_force:
            lines.append(f"  in force:  {t.in_force}" + ("  (applied)" if t.applied else "  (not applied yet)"))
        lines += [f"  note:      {n}" for n in t.notes]
        if t.next:
            lines.append("  next:")
            for n in t.next:
                local = datetime.fromisoformat(n["local"])
                lines.append(f"    {n['kind']:<3}  {local.strftime('%a %Y-%m-%d %H:%M')} {t.zone} "
                             f"(UTC{local.strftime('%z')[:3]}:{local.strftime('%z')[3:]})"
                             f"  =  {_utc(datetime.fromisoformat(n['utc'].replace('Z', '+00:00')))}")
        else:
            lines.append("  next:      no transition in this window")
        lines += _run_now(t.actions)
    if exp.plans:
        lines += ["", "Plans"]
        for p in exp.plans:
            lines.append(f"  {p.name}: {p.sku}" + (f", scaled down from {p.scaled_down_from}"
                                                  if p.scaled_down_from else ""))
            if p.savings:
                s = p.savings
                saving = "saving unknown (no price)" if s.get("saving") is None else f"saves about {s['saving']:.2f}"
                lines.append(f"    {p.off_hours:g} h with every app off; scaled to "
                             f"{_label(s['after'])}: {saving}")
            if p.note:
                lines.append(f"    {p.note}")
            lines += ["  " + line for line in _run_now(p.actions)]
    return "\n".join(lines)


def _run_now(actions) -> list[str]:
    if not actions:
        return ["  a run now: nothing to do"]
    out = []
    for a in actions:
        what = {"skipped": "would skip", "failed": "would report failed"}.get(a["verdict"], "would")
        out.append(f"  a run now {what} {a['kind']}: {a['reason']}")
    return out


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%a %Y-%m-%d %H:%M UTC")


JOB = DevHoursJob()
