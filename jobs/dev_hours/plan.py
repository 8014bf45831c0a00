"""Pure decisions of the dev-hours job: (observed apps and plans, state, now,
settings) -> (actions, the state to keep if they all succeed).

Must never: import an Azure SDK, read the clock, do I/O, or touch a denied app
or a plan that hosts one.

Semantics, per target app (see targets.py for what a target is):

- What is in force is an active override, else the latest transition of its
  schedule at or before ``now`` (looking back 14 days). It is applied once;
  its id is recorded, so a person's later start or stop is respected until
  the next transition, and a missed run catches up.
- off: stop the app if Running (``stopped_by_job``), and its Running slots.
  An app already Stopped is left alone and stays stopped at the next on.
- on: start the app and the slots this job stopped; nothing else.
- A plan whose apps are all opted-in targets, all in an off period and all
  stopped after this run, and whose own app list (``Plan.hosted``) names no
  other app, is scaled down once per off period (after the stops)
  to ``scale_down_capacity`` and/or ``scale_down_sku`` when that is a real
  downgrade the apps' features allow; its original SKU goes into the action's
  params, the planned state and the plan's restore tag. A scaled-down plan is
  restored (before any start) as soon as one of its apps is on or running,
  or the plan stops being eligible; never when someone changed it by hand.
  The state's record says what to restore; the restore tag stands in only
  without one, and only while the plan is at the size the tag says it was
  scaled to. A denied plan (production, denied subscription, hosting a denied
  app) is never written: a record or tag on one is a failed outcome.
  A scale-down whose record a run did not save (killed after the PATCH) is
  adopted from the plan's restore tag, written in the same PATCH.
- At most ``max_actions_per_run`` changes are applied (marker tags not counted); the rest are reported
  as skipped and not recorded, so the next run does them. Whole groups (an
  app with its slots) fit or wait together; plans with starts go first.

- Each app the job stops is first marked (tag MARKER_TAG: when, which slots) and
  unmarked after its start; without a record of it (state lost) the marker is its
  record. An app stopped by the job that lost its opt-in tag is started once at the
  default schedule's next on; a denied one is reported, never written.
- A downgrade Azure refused (remembered in the plan's record) is not asked again:
  fewer instances on the same SKU instead, until the SKU changes or a week passes.

Action kinds: stop-site, stop-slot, start-site, start-slot, mark-site, unmark-site,
scale-down-plan, restore-plan; verdict-only kinds: deny (skipped), invalid (failed).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.resources import RUNNING, STOPPED, Plan, Site, Slot, tag
from jobs.dev_hours.schedule import latest_transition, transitions
from jobs.dev_hours.skus import (MAX_INSTANCES, SCALABLE_RANKS, Sku, estimate_savings,
                                 is_cheaper_sku, refusals, sku_from_name, tier_rank)
from jobs.dev_hours.state import (ALL_SLOTS, MARKER_TAG, RESTORE_TAG, PlanRecord, SiteRecord, State,
                                  marker_value, parse_marker, parse_restore_tag, restore_tag_value)
from jobs.dev_hours.targets import (DEFAULT_VALUE, Classified, Event, classify, deny_reason,
                                    plan_deny_reason)
from jobs.model import Action

__all__ = ["plan", "Site", "Slot", "Plan", "Sku", "State", "SiteRecord", "PlanRecord",
           "plan_unit_off_hours", "target_sku"]

SAVINGS_HORIZON = timedelta(days=7)  # how far ahead a scale-down's hours off are estimated
CATCH_UP_AFTER = timedelta(minutes=30)  # later than two 15-minute timer runs: a run was missed


@dataclass
class _Work:
    """What one target app needs this run."""

    c: Classified
    key: str
    event: Event | None
    actions: list[Action] = field(default_factory=list)
    notes: list[Action] = field(default_factory=list)  # verdict-only explanations
    record: SiteRecord | None = None  # new record; None leaves the old one
    running_now: bool = False
    running_after: bool = False  # if its actions all happen
    admitted: bool = True

    @property
    def site(self) -> Site:
        return self.c.site

    @property
    def phase(self) -> str | None:
        return self.event.kind if self.event else None

    @property
    def starts(self) -> bool:
        return self.phase == "on"


@dataclass
class _Unit:
    """One App Service plan with every app observed on it."""

    key: str
    plan: Plan | None
    tenants: list[Classified] = field(default_factory=list)
    works: list[_Work] = field(default_factory=list)


def plan(sites: Sequence[Site], plans: Sequence[Plan], state: State, now: datetime,
         config: DevHoursSettings) -> tuple[list[Action], State]:
    """Decide this run. The returned state is what to keep if every action
    succeeds; pass it with the outcomes to ``state.settle``."""
    now = _utc(now)
    plans_by_key = {p.id.lower(): p for p in plans}
    units: dict[str, _Unit] = {}
    verdicts: list[Action] = []
    for site in sorted(sites, key=lambda s: s.id.lower()):
        pkey = (site.plan_id or "").lower()
        unit = units.setdefault(pkey, _Unit(pkey, plans_by_key.get(pkey)))
        c = classify(site, unit.plan, now, config)
        unit.tenants.append(c)
        if c.status == "denied":
            verdicts.append(Action.skip(site.id, f"denied: {c.reason}", kind="deny"))
            if _stranded(site, state, denied=True):
                verdicts.append(Action.fail(site.id, f"app '{site.name}' is marked as stopped by this job "
                                            f"(tag {MARKER_TAG} or its record) but is denied: never "
                                            "written; start it and remove the tag by hand",
                                            kind="start-site"))
        elif c.status == "invalid":
            verdicts.append(Action.fail(site.id, c.reason))
        elif c.status == "target":
            unit.works.append(_site_work(c, state, now))
        elif tag(site.tags, config.opt_in_tag) is None and _stranded(site, state):
            back = _comeback(site, unit.plan, state, now, config)
            if isinstance(back, _Work):
                unit.works.append(back)
            elif back is not None:
                verdicts.append(back)
    for pkey in state.plans:
        if pkey in plans_by_key and pkey not in units:
            units[pkey] = _Unit(pkey, plans_by_key[pkey])
    for p in plans:
        if tag(p.tags, RESTORE_TAG) is not None and p.id.lower() not in units:
            units[p.id.lower()] = _Unit(p.id.lower(), p)

    sites_state = dict(state.sites)
    plans_state = dict(state.plans)
    requires: dict[str, tuple[str, ...]] = {}
    out: list[Action] = []
    cap = _Cap(config.max_actions_per_run)
    ordered = sorted(units.values(), key=lambda u: (not any(w.starts and w.actions for w in u.works),
                                                     u.plan.name.lower() if u.plan else "", u.key))
    for unit in ordered:
        restore, restore_record, plan_verdict = _restore(unit, state, config)
        if plan_verdict:
            out.append(plan_verdict)
        if restore_record is not None and restore is None:
            plans_state[unit.key] = restore_record
        restore_ok = True
        if restore:
            restore_ok = cap.admit([restore], out)
            if restore_ok:
                plans_state[unit.key] = restore_record
                requires[f"plan:{unit.key}"] = (restore.key,)
        works = sorted(unit.works, key=lambda w: (not w.starts, w.site.name.lower(), w.key))
        for work in works:
            if work.actions and work.starts and restore:
                work.actions = [replace(a, after=(*a.after, restore.key)) for a in work.actions]
            if work.actions and work.starts and not restore_ok:
                cap.refuse(work.actions, out, "waits for the plan's restore, held back by the "
                           f"cap of {cap.limit} actions per run; the next run does it")
                work.admitted = False
            elif work.actions and not cap.admit(work.actions, out):
                work.admitted = False
            if not work.admitted:
                continue
            out.extend(work.notes)
            if work.record is not None:
                sites_state[work.key] = work.record
                requires[f"site:{work.key}"] = tuple(a.key for a in work.actions)
        scale, scale_record = _scale_down(unit, state, now, config)
        if scale is not None and scale.verdict is None:
            if cap.admit([scale], out):
                plans_state[unit.key] = scale_record
                requires[f"plan:{unit.key}"] = (scale.key,)
        elif scale is not None:
            out.append(scale)
            plans_state[unit.key] = scale_record
        elif scale_record is not None and restore is None:  # a lost record, adopted from its tag
            plans_state[unit.key] = scale_record
    plans_state = {k: _remember_refusal(r, state.plans.get(k), plans_by_key.get(k), now)
                   for k, r in plans_state.items()}
    new_state = State(sites=sites_state, plans=plans_state, last_run=now, requires=requires)
    return verdicts + out, new_state


MARKER_KINDS = ("mark-site", "unmark-site")  # bookkeeping tags: not counted by the cap


class _Cap:
    """Counts applied changes (markers aside); once a group does not fit, nothing more does."""

    def __init__(self, limit: int):
        self.limit = limit
        self.left = limit

    def admit(self, group: list[Action], out: list[Action]) -> bool:
        changes = sum(a.kind not in MARKER_KINDS for a in group)
        if changes <= self.left:
            self.left -= changes
            out.extend(group)
            return True
        self.left = 0
        self.refuse(group, out, f"cap of {self.limit} actions per run reached; the next run does it")
        return False

    @staticmethod
    def refuse(group: list[Action], out: list[Action], why: str) -> None:
        out.extend(Action.skip(a.target, f"{why} ({a.reason})", kind=a.kind) for a in group
                   if a.kind not in MARKER_KINDS)


# -- one app -------------------------------------------------------------------

def _site_work(c: Classified, state: State, now: datetime) -> _Work:
    site = c.site
    key = site.id.lower()
    marker = tag(site.tags, MARKER_TAG)
    event = c.event(now)
    old = state.sites.get(key) or _from_marker(site, marker, event)
    running = _running(site)
    work = _Work(c, key, event, running_now=running, running_after=running)
    if event is None or old.applied == event.id:
        return work
    if site.state not in (RUNNING, STOPPED):
        work.notes.append(Action.skip(site.id, f"{event.text}; app state is '{site.state}', "
                                      "neither Running nor Stopped: tried again next run",
                                      kind=f"{'start' if event.kind == 'on' else 'stop'}-site"))
        return work
    why = event.text
    if event.at is not None and now - event.at > CATCH_UP_AFTER:
        why += f"; catch-up from a missed run ({_late(now - event.at)} late)"
    base = {"site": site.name, "resource_group": site.resource_group,
            "subscription": site.subscription, "event": event.id}
    stopped_slots = {s.lower() for s in old.slots_stopped}
    if event.kind == "off":
        if site.state == RUNNING:
            work.actions.append(Action("stop-site", site.id, why, dict(base)))
        elif not old.stopped_by_job:
            work.notes.append(Action.skip(site.id, f"{why}; already stopped, not by this job: it "
                                          "stays stopped at the next on", kind="stop-site"))
        for slot in site.slots:
            if slot.state == RUNNING:
                work.actions.append(_slot_action("stop-slot", site, slot, why, base))
        kept = {s.name.lower() for s in site.slots
                if s.state == RUNNING or (s.state == STOPPED and s.name.lower() in stopped_slots)}
        work.record = SiteRecord(event.id, site.state == RUNNING or old.stopped_by_job,
                                 tuple(sorted(kept)))
        work.running_after = False
        if work.actions:
            work.actions = _marked(site, marker, work.record, now, work.actions, base, why)
    else:
        started = site.state == STOPPED and old.stopped_by_job
        if started:
            work.actions.append(Action("start-site", site.id, why, dict(base)))
        elif site.state == STOPPED:
            work.notes.append(Action.skip(site.id, f"{why}; stays stopped: it was stopped by hand, "
                                          "not by this job", kind="start-site"))
        for slot in site.slots:
            if slot.state == STOPPED and slot.name.lower() in stopped_slots:
                work.actions.append(_slot_action("start-slot", site, slot, why, base))
        work.record = SiteRecord(event.id, False, ())
        work.running_after = running or bool(work.actions)
        if marker is not None:  # after the starts: a failed start leaves the app marked
            work.actions.append(Action("unmark-site", site.id, f"{why}; removes tag {MARKER_TAG}",
                                       {**base, "remove_tags": [MARKER_TAG]},
                                       after=tuple(a.key for a in work.actions)))
    return work


def _from_marker(site: Site, marker: str | None, event: Event | None) -> SiteRecord:
    """What the job stopped, read from the app's marker when its record is gone (the state
    was lost): the app (if stopped) and the slots it names; an off transition before the
    marker's time was applied then (so a person's start since is respected)."""
    if marker is None:
        return SiteRecord()
    when, app, slots = parse_marker(marker)
    if ALL_SLOTS in slots:
        slots = tuple(s.name.lower() for s in site.slots if s.state == STOPPED)
    applied = (event.id if event is not None and event.kind == "off" and event.at is not None
               and when is not None and when >= event.at else None)
    return SiteRecord(applied, app and site.state == STOPPED, slots)


def _marked(site: Site, marker: str | None, record: SiteRecord, now: datetime, stops: list[Action],
            base: dict[str, Any], why: str) -> list[Action]:
    """The stops, after a write of the marker that survives the loss of the job's state
    (unless the app carries one naming the same already)."""
    value = marker_value(now, record.stopped_by_job, record.slots_stopped)
    if marker is not None and parse_marker(marker)[1:] == parse_marker(value)[1:]:
        return stops
    mark = Action("mark-site", site.id, f"{why}; tag {MARKER_TAG}={value} before the stop",
                  {**base, "tags": {MARKER_TAG: value}})
    return [mark] + [replace(a, after=(*a.after, mark.key)) for a in stops]


def _stranded(site: Site, state: State, denied: bool = False) -> bool:
    """Whether the app (or a slot) is stopped by this job: its marker, or its record (for a
    denied app, while it is still stopped)."""
    record = state.sites.get(site.id.lower())
    if tag(site.tags, MARKER_TAG) is not None:
        return True
    if record is None:
        return False
    if denied:
        return record.stopped_by_job and site.state == STOPPED
    return record.stopped_by_job or bool(record.slots_stopped)


def _comeback(site: Site, plan_: Plan | None, state: State, now: datetime, config: DevHoursSettings
              ) -> _Work | Action | None:
    """An app this job stopped whose opt-in tag was removed since: started once at the next
    on of the default schedule, its marker removed, then left alone."""
    as_target = classify(replace(site, tags={**site.tags, config.opt_in_tag: DEFAULT_VALUE}),
                         plan_, now, config)
    if as_target.status != "target":
        return None
    gone = f"no longer opted in (tag {config.opt_in_tag} removed) but stopped by this job"
    event = as_target.event(now)
    if event is None or event.kind == "off":
        return Action.skip(site.id, f"app '{site.name}' is {gone}: at the next on of the default "
                           "schedule it is started (if still stopped) and its marker removed, then "
                           "left alone", kind="start-site")
    work = _site_work(as_target, state, now)
    work.actions = [replace(a, reason=f"{gone}, once: {a.reason}") for a in work.actions]
    return work


def _slot_action(kind: str, site: Site, slot: Slot, why: str, base: dict[str, Any]) -> Action:
    return Action(kind, site.slot_id(slot.name), f"{why} (slot {slot.name})", {**base, "slot": slot.name})


def _running(site: Site) -> bool:
    """Running, or in a state we cannot vouch for, counting its slots."""
    return site.state != STOPPED or any(s.state != STOPPED for s in site.slots)


# -- one plan ------------------------------------------------------------------

def _ineligible(unit: _Unit, config: DevHoursSettings) -> list[str]:
    """Why this plan must not be (or stay) scaled down, for people."""
    why = _denials(unit, config)
    for c in unit.tenants:
        if c.status == "ignored":
            why.append(f"hosts app '{c.site.name}' which is not a dev-hours target ({c.reason})")
        elif c.status == "invalid":
            why.append(f"hosts app '{c.site.name}' whose tags are invalid")
    seen = len(unit.tenants)
    if unit.plan is not None and (unit.plan.number_of_sites or 0) > seen:
        # apps only: a slot is not an app of the plan, so it cannot stand in for an unseen one
        why.append(f"hosts {unit.plan.number_of_sites} apps but only {seen} were seen")
    return why


def _unseen(unit: _Unit, config: DevHoursSettings) -> list[str]:
    """Why the plan's own app list forbids a scale-down: an app on it that this run does
    not stop (another resource group or subscription scope, production), or no list."""
    if unit.plan is None or unit.plan.hosted is None:
        return ["its own app list was not read"]
    ours = {w.key for w in unit.works}
    why = []
    for site in unit.plan.hosted:
        if site.id.lower() in ours:
            continue
        where = f"'{site.name}' ({site.resource_group})"
        denied = deny_reason(site, unit.plan, config)
        if denied:
            why.append(f"hosts denied app {where}: {denied}")
        else:
            why.append(f"hosts app {where} which this run does not see")
    return why


def _denials(unit: _Unit, config: DevHoursSettings) -> list[str]:
    """Why this plan is production to this job (itself, or an app on it): never written."""
    denied = plan_deny_reason(unit.plan, config) if unit.plan is not None else None
    return ([f"denied: {denied}"] if denied else []) + [
        f"hosts denied app '{c.site.name}'" for c in unit.tenants if c.status == "denied"]


def _restore(unit: _Unit, state: State, config: DevHoursSettings
             ) -> tuple[Action | None, PlanRecord | None, Action | None]:
    """(restore action, record after it, verdict) for a plan this job scaled down."""
    plan_ = unit.plan
    if plan_ is None:
        return None, None, None
    record = state.plans.get(unit.key)
    if (record is None or record.original is None) and tag(plan_.tags, RESTORE_TAG) is not None:
        # The scale-down's record was lost (its run was killed before saving the state, or
        # the state blob was lost): the tag written in the same PATCH rebuilds it.
        raw = tag(plan_.tags, RESTORE_TAG)
        try:
            original, scaled_to = parse_restore_tag(raw)
        except ValueError as exc:
            return None, None, Action.fail(plan_.id, f"plan '{plan_.name}': tag {RESTORE_TAG}='{raw}' "
                                           f"is malformed ({exc}); restore its SKU by hand",
                                           kind="restore-plan")
        record = PlanRecord(record.period if record else None, original, scaled_to)
    if record is None or record.original is None:
        return None, None, None
    original = record.original
    cleared = PlanRecord(record.period, None, None)
    if (record.scaled_to is not None and plan_.sku.same_as(original)
            and tag(plan_.tags, RESTORE_TAG) is None):
        # The restore PATCH (SKU and tag in one call) happened, its state was not saved: a
        # run killed in between. Nothing to do, and nobody to blame.
        return None, cleared, Action.skip(
            plan_.id, f"plan '{plan_.name}' is back to {original.label()} already (restored by a "
            "run that ended before it saved its state, or by hand)", kind="restore-plan")
    if record.scaled_to is not None and not plan_.sku.same_as(record.scaled_to):
        return None, cleared, Action.skip(
            plan_.id, f"plan '{plan_.name}' was changed by hand since the scale-down (now "
            f"{plan_.sku.label()}, scaled to {record.scaled_to.label()}); not restoring "
            f"{original.label()}", kind="restore-plan")
    denied = _denials(unit, config)
    if denied:
        return None, None, Action.fail(
            plan_.id, f"plan '{plan_.name}': {'; '.join(denied)}; not restoring {original.label()} "
            f"(now {plan_.sku.label()}): this job never writes a denied plan; restore it by hand "
            f"and remove tag {RESTORE_TAG}", kind="restore-plan")
    why = [f"plan no longer eligible: {w}" for w in _ineligible(unit, config)]
    if not unit.works and not why:
        why.append("it hosts no dev-hours target any more")
    for w in unit.works:
        if w.phase == "on":
            why.append(f"'{w.site.name}' is on: {w.event.text}")
        elif w.phase is None:
            why.append(f"'{w.site.name}' has no transition in the last 14 days")
        elif w.running_after:
            why.append(f"'{w.site.name}' is running (started by hand)")
    for c in unit.tenants:
        if c.status != "target" and _running(c.site):
            why.append(f"'{c.site.name}' is running")
    if not why:
        return None, None, None
    more = f" (and {len(why) - 1} more reasons)" if len(why) > 1 else ""
    params = {"plan": plan_.name, "resource_group": plan_.resource_group,
              "subscription": plan_.subscription, "sku": original.to_json(),
              "scaled_to": plan_.sku.to_json(), "remove_tags": [RESTORE_TAG]}
    action = Action("restore-plan", plan_.id, f"restore {original.label()} recorded before the "
                    f"scale-down: {why[0]}{more}", params)
    return action, cleared, None


def _scale_down(unit: _Unit, state: State, now: datetime, config: DevHoursSettings
                ) -> tuple[Action | None, PlanRecord | None]:
    """(scale-down action or a verdict explaining why not, record) for a plan
    whose apps are all off after this run; (None, None) otherwise."""
    plan_ = unit.plan
    record = state.plans.get(unit.key) or PlanRecord()
    if plan_ is None or record.original is not None:
        return None, None
    if tag(plan_.tags, RESTORE_TAG) is not None:
        return None, _adopt(unit, plan_)  # scaled down by a run whose state was lost
    if tier_rank(plan_.sku) not in SCALABLE_RANKS or not unit.works:
        return None, None  # nothing to save on Free/Shared/consumption plans
    if any(not w.admitted or w.site.state not in (RUNNING, STOPPED) for w in unit.works):
        return None, None  # the cap held an app back, or its state is unclear: decide next run
    if not all(w.phase == "off" for w in unit.works):
        return None, None
    period = "|".join(sorted({w.event.id for w in unit.works}))  # type: ignore[union-attr]
    if record.period == period:
        return None, None  # handled in this off period already
    handled = PlanRecord(period, None, None)
    target, note = target_sku(plan_, [c.site for c in unit.tenants], config)
    refused = record.refused
    if (target is not None and refused is not None and refused.remembered(plan_.sku.name, now)
            and target.name.lower() == refused.sku.lower() and target.name.lower() != plan_.sku.name.lower()):
        # Asking again would be refused again, every run: shed instances on the same SKU instead.
        fewer = replace(plan_.sku, capacity=min(config.scale_down_capacity, plan_.sku.capacity))
        target = None if fewer.same_as(plan_.sku) else fewer
        note = f"{refused.describe()}; {'no instance to shed' if target is None else 'instances only'}"
    if target is None and not note:
        return None, None  # already as small as configured: nothing to save, nothing to say
    running = [w.site.name for w in unit.works if w.running_after]
    blockers = _ineligible(unit, config)
    if running:
        blockers.append(f"app {', '.join(repr(n) for n in running)} is running")
    if target is not None and (plan_.hosted is not None or not blockers):  # read only for a scale-down
        blockers += _unseen(unit, config)
    if blockers:
        return Action.skip(plan_.id, f"plan '{plan_.name}' not scaled down: {'; '.join(blockers)}",
                           kind="scale-down-plan"), handled
    if target is None:
        return Action.skip(plan_.id, f"plan '{plan_.name}' not scaled down: {note}; its apps stay "
                           "stopped", kind="scale-down-plan"), handled
    savings = estimate_savings(plan_.sku, target, config.prices,
                               _hours_until_on(unit.works, now))
    reason = (f"all {len(unit.works)} app(s) of plan '{plan_.name}' are off: scale "
              f"{plan_.sku.label()} -> {target.label()}; {savings.describe()}"
              + (f"; {note}" if note else ""))
    params = {"plan": plan_.name, "resource_group": plan_.resource_group,
              "subscription": plan_.subscription, "sku": target.to_json(),
              "original": plan_.sku.to_json(),
              "tags": {RESTORE_TAG: restore_tag_value(plan_.sku, target)},
              "estimate": savings.to_json(), "period": period}
    after = tuple(a.key for w in unit.works for a in w.actions)
    action = Action("scale-down-plan", plan_.id, reason, params, after=after)
    return action, PlanRecord(period, plan_.sku, target)


def _remember_refusal(record: PlanRecord, old: PlanRecord | None, plan_: Plan | None,
                      now: datetime) -> PlanRecord:
    """The record with the plan's remembered refusal carried over, or dropped once it has
    expired, the plan's SKU changed or the plan is gone."""
    refused = old.refused if old is not None else None
    if refused is not None and (plan_ is None or not refused.remembered(plan_.sku.name, now)):
        refused = None
    return replace(record, refused=refused) if record.refused != refused else record


def _adopt(unit: _Unit, plan_: Plan) -> PlanRecord | None:
    """The record of a scale-down made in this off period by a run that ended before it
    saved its state (killed), rebuilt from the plan's restore tag; None when the plan is
    not as the tag says or its apps are not all off (then _restore decides)."""
    if not unit.works or not all(w.phase == "off" and not w.running_after for w in unit.works):
        return None
    try:
        original, scaled_to = parse_restore_tag(tag(plan_.tags, RESTORE_TAG) or "")
    except ValueError:
        return None
    if not plan_.sku.same_as(scaled_to):
        return None
    return PlanRecord("|".join(sorted({w.event.id for w in unit.works})),  # type: ignore[union-attr]
                      original, scaled_to)


def target_sku(plan_: Plan, sites: Iterable[Site], config: DevHoursSettings) -> tuple[Sku | None, str]:
    """(the SKU to scale down to, or None when nothing would change; a note
    when the configured SKU is not used and why)."""
    current = plan_.sku
    capacity = min(config.scale_down_capacity, current.capacity)
    target = replace(current, capacity=capacity)
    note = ""
    if config.scale_down_sku and config.scale_down_sku.lower() != current.name.lower():
        wanted = sku_from_name(config.scale_down_sku)
        wanted = replace(wanted, capacity=min(capacity, MAX_INSTANCES.get(tier_rank(wanted), 1)))
        refused = refusals(wanted, [s.features() for s in sites])
        if not is_cheaper_sku(wanted, current, config.prices):
            note = f"keeps {current.name}: {wanted.name} is not cheaper"
        elif refused:
            note = f"{wanted.name} ({wanted.tier}) refused: {'; '.join(refused)}"
        else:
            target = wanted
    if target.same_as(current):
        return None, note
    return target, (f"{note}; instances only" if note else "")


def _hours_until_on(works: list[_Work], now: datetime) -> float | None:
    """Hours until the first app of the plan is due on again (looking 7 days ahead)."""
    times = [t for t in (_next_on(w.c, now) for w in works) if t is not None]
    return round((min(times) - now).total_seconds() / 3600, 2) if times else None


def _next_on(c: Classified, now: datetime) -> datetime | None:
    if c.schedule is None:
        return None
    start = now
    if c.override and c.override.kind == "off":
        start = c.override.until  # when it expires the schedule is in force again
        latest = latest_transition(c.schedule, start)
        if latest is not None and latest.kind == "on":
            return start
    end = now + SAVINGS_HORIZON
    ons = [t for t in transitions(c.schedule, start, end) if t.kind == "on"] if start < end else []
    return ons[0].at if ons else None


def plan_unit_off_hours(targets: Sequence[Classified], now: datetime, days: float) -> float:
    """Hours in the next ``days`` during which every one of ``targets`` is in an
    off period, if each follows its schedule and overrides (manual starts aside)."""
    end = now + timedelta(days=days)
    changes: set[datetime] = {now, end}
    timelines = []
    for c in targets:
        points = _phase_points(c, now, end)
        timelines.append(points)
        changes.update(at for at, _ in points)
    cuts = sorted(changes)
    total = timedelta()
    for start, stop in zip(cuts, cuts[1:]):
        if targets and all(_phase_at(points, start) == "off" for points in timelines):
            total += stop - start
    return round(total.total_seconds() / 3600, 2)


def _phase_points(c: Classified, now: datetime, end: datetime) -> list[tuple[datetime, str | None]]:
    event = c.event(now)
    points: list[tuple[datetime, str | None]] = [(now, event.kind if event else None)]
    begin = now
    if c.override:
        begin = min(c.override.until, end)
        latest = latest_transition(c.schedule, begin) if c.schedule else None
        points.append((begin, latest.kind if latest else None))
    if c.schedule is not None and begin < end:
        points += [(t.at, t.kind) for t in transitions(c.schedule, begin, end)]
    return points


def _phase_at(points: list[tuple[datetime, str | None]], moment: datetime) -> str | None:
    phase = None
    for at, kind in points:
        if at <= moment:
            phase = kind
    return phase


def _late(delay: timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (with a UTC offset)")
    return now.astimezone(timezone.utc)
