"""The sla-snapshot job: per app and period (hourly by default) a write-once
JSON snapshot of availability, latency, error budget, burn rates and cache hit
ratio; a month-to-date rollup; the final monthly report (JSON and HTML) on the
first run of a month; lifecycle rules on the snapshot account; burn-rate and
missed-objective alerts through the shared notifier.

Thin: azure_io observes and applies; the pure modules (snapshot, rollup,
lifecycle, alerts, report_html) decide and ``plan_run`` below chains them the
way tests/sla_snapshot/test_flow.py shows. Nothing here imports an Azure SDK or
reads the clock: the period comes from ``ctx.now``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from jobs.model import Action, RunReport
from jobs.runner import Job, RunContext
from jobs.sla_snapshot import azure_io
from jobs.sla_snapshot.alerts import STATE_KEY, plan_alerts, settle_alerts, write_ahead
from jobs.sla_snapshot.azure_io import AppView, Lifecycle, Observed
from jobs.sla_snapshot.config import SlaSnapshotSettings
from jobs.sla_snapshot.lifecycle import LifecycleError, desired_rules, merge_policy
from jobs.sla_snapshot.report_html import render_report
from jobs.sla_snapshot.rollup import RollupError, add_snapshot, counts_before, final_report
from jobs.sla_snapshot.snapshot import (BlobWrite, Period, build_snapshot, canonical_json, iso,
                                        monthly_paths, plan_rewrite, plan_write_once,
                                        rollup_path, snapshot_path)

log = logging.getLogger(__name__)
_TIER_LABEL = {"cool": "Cool", "cold": "Cold", "archive": "Archive"}


class SlaSnapshotJob(Job):
    name = "sla-snapshot"
    concurrency = 8  # blob uploads in flight; two or three per app and run

    def observe(self, ctx: RunContext) -> Observed:
        return azure_io.observe(ctx)

    def plan(self, observed: Observed, ctx: RunContext) -> list[Action]:
        return plan_run(observed, ctx.settings.sla_snapshot)

    def before_apply(self, observed: Observed, actions: list[Action], ctx: RunContext) -> None:
        """Missed-objective notices are saved as pending before the final report they come
        from is written (alerts.write_ahead): no later run would build them again."""
        if observed.planned_alerts is None:
            return
        ahead = write_ahead(observed.alert_state, observed.planned_alerts, actions)
        if ahead is not None:
            observed.alert_etag = ctx.save_state(STATE_KEY, ahead, observed.alert_etag)
            observed.alert_state = ahead

    def apply(self, action: Action, ctx: RunContext) -> str | None:
        return azure_io.apply(action, ctx)

    def finish(self, observed: Observed, report: RunReport, ctx: RunContext) -> dict[str, Any]:
        if observed.planned_alerts is not None and not ctx.dry_run:
            settled = settle_alerts(observed.alert_state, observed.planned_alerts, report.outcomes)
            known = (observed.alert_etag is not None or settled["firing"] or settled["missed"]
                     or settled.get("pending"))
            if known and settled != observed.alert_state:
                from jobs.store import StateConflict
                try:
                    ctx.save_state(STATE_KEY, settled, observed.alert_etag)
                except StateConflict as exc:  # another run saved first: its alerts stand
                    report.errors.append(f"alert state not saved: {exc}")
        return details(observed, report, ctx)


# -- plan (pure) ---------------------------------------------------------------------------

def plan_run(observed: Observed, s: SlaSnapshotSettings) -> list[Action]:
    """Every write of one run, from what observe read. Also records on ``observed``
    this run's snapshots, the alert state once the notifications are sent, and what
    became of each app's snapshot (for finish)."""
    period = observed.period
    actions: list[Action] = []
    ready: tuple[str, ...] = ()
    if not observed.container_exists and s.targets:
        create = Action("create-container", observed.container,
                        f"the snapshot container {observed.container} does not exist yet")
        actions.append(create)
        ready = (create.key,)
    finals: list[dict[str, Any]] = []
    final_keys: dict[tuple[str, str], str] = {}
    for view in observed.apps:
        try:
            app_actions, snapshot, final, note = plan_app(view, period, s, ready)
        except Exception as exc:  # noqa: BLE001 - one app's bad data never stops the others
            log.warning("could not plan the snapshot of %s", view.target.app_id, exc_info=True)
            app_actions, snapshot, final, note = [Action.fail(
                view.target.app_id, f"no snapshot of {view.target.name} this run: "
                f"{type(exc).__name__}: {exc}", kind="snapshot")], None, None, "failed"
        actions += app_actions
        observed.notes[view.target.name] = note
        if snapshot is not None:
            observed.snapshots[view.target.name] = snapshot
        if final is not None:
            finals.append(final)
            key = next(a.key for a in app_actions if a.kind == "write-monthly"
                       and a.target.endswith(".json"))
            final_keys[(view.target.name, final["month"])] = key
    actions += plan_lifecycle(observed.lifecycle, s)
    notices, observed.planned_alerts = plan_alerts(
        [observed.snapshots[name] for name in sorted(observed.snapshots)], finals,
        observed.alert_state)
    for notice in notices:
        _, app, *rest = notice.target.split(":")
        after = final_keys.get((app, rest[0])) if notice.target.startswith("missed:") else None
        actions.append(replace(notice, after=(after,)) if after else notice)
    return actions


def plan_app(view: AppView, period: Period, s: SlaSnapshotSettings, ready: tuple[str, ...]
             ) -> tuple[list[Action], dict[str, Any] | None, dict[str, Any] | None, str]:
    """(actions, this run's snapshot, the final report written, what became of the
    snapshot) of one app."""
    t = view.target
    if view.problems:
        fail = Action.fail(t.app_id, f"no snapshot of {t.name} for {iso(period.start)} this run: "
                           + "; ".join(view.problems), kind="snapshot")
        actions, final = [fail], None
        if view.due and view.due != period.month:  # a finished month does not need this period
            actions_final, final = _plan_final(view, _json(view.final_rollup.data), ready)
            actions += actions_final
        return actions, None, final, "failed"
    try:
        rollup, kept = _json(view.rollup.data), _json(view.snapshot.data)
    except ValueError as exc:
        return [Action.fail(t.app_id, f"{t.name}: a stored blob is not JSON ({exc}); "
                            "left as it is, no snapshot this run", kind="snapshot")], None, None, "failed"
    snapshot = build_snapshot(t, period, view.series, view.latency, view.cache, s,
                              counts_before(rollup, period))
    write = plan_write_once(snapshot_path(t.name, period), canonical_json(snapshot),
                            view.snapshot.data)
    actions: list[Action] = []
    rollup_after = ready
    note = {"create": "written", "unchanged": "unchanged", "conflict": "conflict"}[write.mode]
    if write.mode == "conflict" and write.path in view.conflicts:
        note = "conflict kept"  # this very version is kept beside the first already
    elif write.mode != "unchanged":
        action = _write(write, "write-snapshot", ready)
        actions.append(action)
        if write.mode == "create":
            rollup_after = ready + (action.key,)
    # The rollup counts the version kept in storage: the first one written for a period.
    try:
        new_rollup, _ = add_snapshot(rollup, kept or snapshot)
    except RollupError as exc:
        actions.append(Action.fail(rollup_path(t.name, period.month), str(exc), kind="write-rollup"))
        return actions, snapshot, None, note
    rewrite = plan_rewrite(rollup_path(t.name, period.month), canonical_json(new_rollup),
                           view.rollup.data)
    final_after = rollup_after
    if rewrite.mode != "unchanged":
        action = _write(rewrite, "write-rollup", rollup_after, etag=view.rollup.etag)
        actions.append(action)
        final_after = rollup_after + (action.key,)
    final = None
    if view.due:
        if view.due == period.month:  # this run covers the month's last period
            actions_final, final = _plan_final(view, new_rollup, final_after)
        else:
            actions_final, final = _plan_final(view, _json(view.final_rollup.data), ready)
        actions += actions_final
    return actions, snapshot, final, note


def _plan_final(view: AppView, month_rollup: dict[str, Any] | None, after: tuple[str, ...]
                ) -> tuple[list[Action], dict[str, Any] | None]:
    """The final report of ``view.due`` (JSON, then HTML), from that month's rollup."""
    if not month_rollup:  # the app had no snapshot that month: nothing to report
        return [], None
    report = final_report(month_rollup)
    json_path, html_path = monthly_paths(view.target.name, view.due)
    actions = []
    json_write = plan_write_once(json_path, canonical_json(report), view.final_blobs.get(json_path))
    if json_write.mode != "unchanged":
        actions.append(_write(json_write, "write-monthly", after))
        after = after + (actions[-1].key,)
    html_write = plan_write_once(html_path, render_report(report).encode("utf-8"),
                                 view.final_blobs.get(html_path))
    if html_write.mode != "unchanged":
        actions.append(_write(html_write, "write-monthly", after))
    return actions, (report if json_write.mode == "create" else None)


def _write(write: BlobWrite, kind: str, after: tuple[str, ...], etag: str | None = None) -> Action:
    if write.mode == "conflict":
        kind = "write-conflict"
    params = {"data": write.data, "mode": write.mode, "etag": etag if write.mode == "replace" else None}
    if write.kept:
        params["kept"] = write.kept
    return Action(kind=kind, target=write.path, reason=write.reason, params=params, after=after)


def _json(data: bytes | None) -> dict[str, Any] | None:
    return json.loads(data) if data else None


def plan_lifecycle(lifecycle: Lifecycle | None, s: SlaSnapshotSettings) -> list[Action]:
    """At most one policy write: only when this job's rules differ from what it wants."""
    if lifecycle is None:
        return []
    target = lifecycle.account_id
    if lifecycle.error:
        return [Action.fail(target, f"could not read the management policy: {lifecycle.error}",
                            kind="ensure-lifecycle")]
    desired = desired_rules(s)
    try:
        merged, changed = merge_policy(lifecycle.policy, desired, s.lifecycle_rule_prefix)
    except LifecycleError as exc:
        return [Action.fail(target, str(exc), kind="ensure-lifecycle")]
    if not changed:
        return []
    rules = merged["policy"]["rules"]
    ours = [r["name"] for r in rules if r["name"].startswith(s.lifecycle_rule_prefix)]
    others = len(rules) - len(ours)
    params = {"subscription": lifecycle.subscription, "resource_group": lifecycle.resource_group,
              "account": lifecycle.account}
    if not rules:
        return [Action("remove-lifecycle", target,
                       f"no lifecycle rule wanted (OPS_SLA_SNAPSHOT__LIFECYCLE_TIER=none, no delete) "
                       f"and no other rule in the policy of {lifecycle.account}: delete the policy",
                       params=params)]
    reason = (f"set rule(s) {', '.join(ours) or '(none)'} ({_describe_rules(s)}) in the policy of "
              f"{lifecycle.account}, keeping {others} rule(s) of others unchanged")
    return [Action("ensure-lifecycle", target, reason,
                   params={**params, "policy": policy_body(lifecycle.policy, rules)})]


def policy_body(existing: dict[str, Any] | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The PUT body: the policy as read (every field others set kept), with the merged rules."""
    properties = dict((existing or {}).get("properties") or {})
    properties.pop("lastModifiedTime", None)  # read-only
    policy = dict(properties.get("policy") or {})
    policy["rules"] = rules
    properties["policy"] = policy
    return {"properties": properties}


def _describe_rules(s: SlaSnapshotSettings) -> str:
    parts = []
    if s.lifecycle_tier != "none":
        parts.append(f"{_TIER_LABEL[s.lifecycle_tier]} after {s.lifecycle_tier_after_days} days")
    if s.lifecycle_delete_after_days:
        parts.append(f"delete after {s.lifecycle_delete_after_days} days")
    return ", ".join(parts) or "no rule"


# -- run details ---------------------------------------------------------------------------

COLUMNS = ["app", "environment", "valid", "availability (requests)", "availability (minutes)",
           "p95 ms", "p99 ms", "cache hit", "budget left (min)", "burn alerts", "snapshot"]


def details(observed: Observed, report: RunReport, ctx: RunContext) -> dict[str, Any]:
    period = observed.period
    outcomes = {(o.action.kind, o.action.target): o for o in report.outcomes}
    apps = []
    for view in observed.apps:
        name = view.target.name
        snapshot = observed.snapshots.get(name)
        note = observed.notes.get(name, "failed")
        path = snapshot_path(name, period)
        written = outcomes.get(("write-snapshot", path))
        if written is not None and written.status == "failed":
            note = f"failed: {written.error}"
        elif note == "failed":
            note = "failed: " + "; ".join(view.problems or ["see the actions"])
        elif note == "conflict":
            note = "conflict: kept the first version, wrote this one beside it"
        elif note == "conflict kept":
            note = "conflict: this version is kept beside the first already"
        apps.append(_app_summary(name, view, snapshot, note))
    rows = [[a["app"], a["environment"], _yes(a["valid"]), _pct(a["availability_requests"]),
             _pct(a["availability_minutes"]), _num(a["p95_ms"]), _num(a["p99_ms"]),
             _pct(a["cache_hit_ratio"], 1), _num(a["budget_remaining_minutes"], 2),
             ", ".join(a["burn_alerts"]) or "-", a["snapshot"]] for a in apps]
    conflicts = [o.action.target for o in report.outcomes if o.action.kind == "write-conflict"]
    return {
        "period": {"kind": period.kind, "start": iso(period.start), "end": iso(period.end)},
        "container": observed.container,
        "apps": apps,
        "conflicts": conflicts,
        "calls": dict(sorted(observed.calls.items())),
        "tables": [{"title": f"SLA snapshots {iso(period.start)} - {iso(period.end)}",
                    "columns": COLUMNS, "rows": rows}] if rows else [],
    }


def _app_summary(name: str, view: AppView, snapshot: dict[str, Any] | None,
                 note: str) -> dict[str, Any]:
    row: dict[str, Any] = {"app": name, "environment": view.target.environment, "valid": None,
                           "invalid_reason": None, "availability_requests": None,
                           "availability_minutes": None, "p95_ms": None, "p99_ms": None,
                           "cache_hit_ratio": None, "budget_remaining_minutes": None,
                           "burn_alerts": [], "snapshot": note}
    if snapshot is None:
        return row
    latency, cache = snapshot["latency_ms"] or {}, snapshot["cache"] or {}
    row.update({
        "valid": snapshot["valid"], "invalid_reason": snapshot["invalid_reason"],
        "availability_requests": snapshot["availability"]["request_based"],
        "availability_minutes": snapshot["availability"]["time_based"],
        "p95_ms": latency.get("p95"), "p99_ms": latency.get("p99"),
        "cache_hit_ratio": cache.get("hit_ratio"),
        "budget_remaining_minutes": snapshot["error_budget"]["remaining_minutes"],
        "burn_alerts": sorted(rule for rule, alert in snapshot["alerts"].items()
                              if alert["state"] == "firing")})
    return row


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _pct(ratio: float | None, digits: int = 3) -> str:
    return "-" if ratio is None else f"{ratio * 100:.{digits}f} %"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


JOB = SlaSnapshotJob()
