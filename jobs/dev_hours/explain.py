"""What the dev-hours job would do, for people: per target app its schedule,
the transitions coming in local time and UTC, and what a run at ``now``
would do; per plan the hours it would spend scaled down and what that saves.

Backs ``python -m jobs plan dev-hours --days 7 --now ISO``. Returns data
only: printing is done by the CLI. Pure: no clock, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Sequence

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.plan import plan as plan_run
from jobs.dev_hours.plan import plan_unit_off_hours, target_sku
from jobs.dev_hours.resources import Plan, Site
from jobs.dev_hours.schedule import next_transitions
from jobs.dev_hours.skus import SCALABLE_RANKS, estimate_savings, tier_rank
from jobs.dev_hours.state import State
from jobs.dev_hours.targets import classify
from jobs.model import Action


@dataclass(frozen=True)
class TargetView:
    id: str
    name: str
    status: str  # target / denied / invalid
    reason: str  # why denied, what is invalid
    schedule: str | None
    zone: str | None
    in_force: str | None  # the transition or override in force now
    applied: bool  # already applied by an earlier run
    notes: tuple[str, ...]
    next: tuple[dict[str, str], ...]  # {"kind", "local", "utc", "scheduled"}
    actions: tuple[dict[str, Any], ...]  # what a run now would do for it (and its slots)


@dataclass(frozen=True)
class PlanView:
    id: str
    name: str
    sku: str
    scaled_down_from: str | None  # the recorded original SKU while scaled down
    off_hours: float  # hours in the window with every app in an off period
    savings: dict[str, Any] | None  # estimate for those hours; None when it would not scale
    note: str
    actions: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Explanation:
    now: datetime
    days: float
    targets: tuple[TargetView, ...]
    plans: tuple[PlanView, ...]
    actions: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"now": _iso(self.now), "days": self.days,
                "targets": [t.__dict__ | {"next": list(t.next), "actions": list(t.actions),
                                          "notes": list(t.notes)} for t in self.targets],
                "plans": [p.__dict__ | {"actions": list(p.actions)} for p in self.plans],
                "actions": list(self.actions)}


def explain(sites: Sequence[Site], plans: Sequence[Plan], state: State, now: datetime,
            config: DevHoursSettings, days: float = 7) -> Explanation:
    now = now.astimezone(timezone.utc)
    actions, _ = plan_run(sites, plans, state, now, config)
    plans_by_key = {p.id.lower(): p for p in plans}
    targets, by_plan = [], {}
    for site in sorted(sites, key=lambda s: s.name.lower()):
        plan_ = plans_by_key.get((site.plan_id or "").lower())
        c = classify(site, plan_, now, config)
        if plan_ is not None:
            by_plan.setdefault(plan_.id.lower(), []).append(c)
        if c.status == "ignored":
            continue
        event = c.event(now) if c.status == "target" else None
        record = state.sites.get(site.id.lower())
        upcoming = next_transitions(c.schedule, now, days) if c.schedule and c.status == "target" else []
        mine = [a for a in actions if _belongs(a.target, site.id)]
        targets.append(TargetView(
            id=site.id, name=site.name, status=c.status, reason=c.reason,
            schedule=c.schedule.text if c.schedule else None,
            zone=c.schedule.zone if c.schedule else None,
            in_force=event.text if event else None,
            applied=bool(event and record and record.applied == event.id),
            notes=c.notes,
            next=tuple({"kind": t.kind, "local": t.local.isoformat(), "utc": _iso(t.at),
                        "scheduled": t.wall.strftime("%a %Y-%m-%d %H:%M")} for t in upcoming),
            actions=tuple(_row(a) for a in mine)))
    views = []
    for key, tenants in sorted(by_plan.items()):
        plan_ = plans_by_key[key]
        record = state.plans.get(key)
        mine = tuple(_row(a) for a in actions if a.target.lower() == key)
        eligible = all(c.status == "target" for c in tenants)
        off = plan_unit_off_hours(tenants, now, days) if eligible else 0.0
        savings, note = None, ""
        if not eligible:
            note = "not scaled down: it hosts apps that are not dev-hours targets"
        elif tier_rank(plan_.sku) not in SCALABLE_RANKS:
            note = f"not scaled down: tier {plan_.sku.tier} has nothing to save"
        else:
            base = record.original if record and record.original else plan_.sku
            target, note = target_sku(replace(plan_, sku=base), [c.site for c in tenants], config)
            if target is not None:
                savings = estimate_savings(base, target, config.prices, off).to_json()
            elif not note:
                note = "already as small as configured"
        original = record.original if record else None
        views.append(PlanView(id=plan_.id, name=plan_.name, sku=plan_.sku.label(),
                              scaled_down_from=original.label() if original else None,
                              off_hours=off, savings=savings, note=note, actions=mine))
    return Explanation(now=now, days=days, targets=tuple(targets), plans=tuple(views),
                       actions=tuple(_row(a) for a in actions))


def _belongs(target: str, site_id: str) -> bool:
    t, s = target.lower(), site_id.lower()
    return t == s or t.startswith(s + "/slots/")


def _row(action: Action) -> dict[str, Any]:
    return {"kind": action.kind, "target": action.target, "reason": action.reason,
            "verdict": action.verdict, "after": list(action.after), "params": action.params}


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
