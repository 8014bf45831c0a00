"""What the dev-hours job remembers between runs, and how a run's outcomes
update it.

Where it lives: one JSON blob per job, ``state/dev-hours/<key>.json`` in the
runs container, read with ``ctx.load_state`` and written once per run with
``ctx.save_state`` (etag-guarded) after apply, never in a dry run. Each
scaled-down plan also carries its original SKU in the tag ``RESTORE_TAG``
(written by azure_io in the scale-down call), and each app it stopped the tag
``MARKER_TAG`` (written before the stop), so a lost blob can be rebuilt.

Format (version 1; resource ids lower-cased)::

    {"version": 1,
     "last_run": "2026-11-27T18:15:00Z",
     "sites": {"<site id>": {"applied": "off@2026-11-27T18:00Z",
                             "stopped_by_job": true,
                             "slots_stopped": ["staging"]}},
     "plans": {"<plan id>": {"period": "off@2026-11-27T18:00Z",
                             "original": {"name": "P1v3", "tier": "PremiumV3", "size": "P1v3",
                                          "family": "Pv3", "capacity": 2},
                             "scaled_to": {"name": "B1", ...},
                             "refused": {"sku": "B1", "code": "Conflict", "at": "...",
                                         "plan_sku": "P1v3", "message": "..."}}}}

``refused`` (only while remembered): a downgrade Azure refused; later runs scale that plan
by instances only (same SKU) instead of asking again, until the plan's SKU name changes or
``REFUSAL_MEMORY`` has passed.

Before apply, a run that stops anything first saves the state with those apps already
marked ``stopped_by_job`` (``write_ahead``), so a crash between a stop and the save after
apply cannot lose which apps the job stopped.

``applied`` is the id of the transition (``on@...``/``off@...``) or override
(``ops-keep-on-until@...``) last applied; ``period`` the off period a plan was
last handled for. Never holds a secret.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from jobs.dev_hours.skus import Sku, sku_from_name
from jobs.model import Action, Outcome

STATE_KEY = "state"  # ctx.load_state(STATE_KEY)
VERSION = 1
REFUSAL_MEMORY = timedelta(days=7)  # a refused downgrade is asked again after this (the plan may be fixed)


@dataclass(frozen=True)
class SiteRecord:
    applied: str | None = None  # id of the transition or override last applied
    stopped_by_job: bool = False  # the job stopped the app and nobody started it since
    slots_stopped: tuple[str, ...] = ()  # slots the job stopped

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "stopped_by_job": self.stopped_by_job,
                "slots_stopped": list(self.slots_stopped)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SiteRecord":
        return cls(applied=data.get("applied"), stopped_by_job=bool(data.get("stopped_by_job")),
                   slots_stopped=tuple(data.get("slots_stopped") or ()))


@dataclass(frozen=True)
class Refusal:
    """A downgrade Azure refused: not asked again while the plan keeps its SKU name and
    for at most REFUSAL_MEMORY (a fixed plan is then tried again)."""

    sku: str  # the refused SKU's name ("B1")
    code: str  # Azure's error code ("Conflict")
    at: datetime  # when
    plan_sku: str  # the plan's SKU name then; another SKU (changed by hand) forgets the refusal
    message: str = ""  # Azure's message, for people

    def remembered(self, plan_sku: str, now: datetime) -> bool:
        return plan_sku.lower() == self.plan_sku.lower() and now - self.at < REFUSAL_MEMORY

    def describe(self) -> str:
        return (f"{self.sku} refused by Azure at {_iso(self.at)} ({self.code}: {self.message}); "
                f"not asked again before {_iso(self.at + REFUSAL_MEMORY)} unless the plan's SKU changes")

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "code": self.code, "at": _iso(self.at), "plan_sku": self.plan_sku,
                "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Refusal":
        return cls(sku=data["sku"], code=data.get("code") or "", at=_parse_time(data["at"]),
                   plan_sku=data["plan_sku"], message=data.get("message") or "")


@dataclass(frozen=True)
class PlanRecord:
    period: str | None = None  # the off period this plan was last handled for
    original: Sku | None = None  # SKU before this job scaled it down; None when not scaled down
    scaled_to: Sku | None = None  # what the job scaled it to
    refused: Refusal | None = None  # the last downgrade Azure refused, while remembered

    def to_json(self) -> dict[str, Any]:
        data = {"period": self.period,
                "original": self.original.to_json() if self.original else None,
                "scaled_to": self.scaled_to.to_json() if self.scaled_to else None}
        if self.refused:
            data["refused"] = self.refused.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlanRecord":
        return cls(period=data.get("period"),
                   original=Sku.from_json(data["original"]) if data.get("original") else None,
                   scaled_to=Sku.from_json(data["scaled_to"]) if data.get("scaled_to") else None,
                   refused=Refusal.from_json(data["refused"]) if data.get("refused") else None)


@dataclass(frozen=True)
class State:
    sites: Mapping[str, SiteRecord] = field(default_factory=dict)
    plans: Mapping[str, PlanRecord] = field(default_factory=dict)
    last_run: datetime | None = None
    # Planned states only: record key ("site:<id>" / "plan:<id>") -> action keys
    # that must all succeed for the record to be kept. Not stored.
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION,
                "last_run": _iso(self.last_run),
                "sites": {k: v.to_json() for k, v in sorted(self.sites.items())},
                "plans": {k: v.to_json() for k, v in sorted(self.plans.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "State":
        """Read a stored state; {} (no state yet) gives an empty one."""
        data = data or {}
        version = data.get("version", VERSION)
        if version != VERSION:
            raise ValueError(f"dev-hours state version {version} is not supported (expected {VERSION})")
        last = data.get("last_run")
        return cls(sites={k.lower(): SiteRecord.from_json(v) for k, v in (data.get("sites") or {}).items()},
                   plans={k.lower(): PlanRecord.from_json(v) for k, v in (data.get("plans") or {}).items()},
                   last_run=_parse_time(last) if last else None)


def settle(previous: State, planned: State, outcomes: Iterable[Outcome],
           refused: Mapping[str, tuple[str, str]] | None = None) -> State:
    """The state to save after apply: a planned record is kept only when every
    action it needs succeeded; otherwise the previous record is kept, updated by
    the actions that did succeed (so a stopped app is still known as stopped by
    the job, and the transition is tried again next run). ``refused`` (action key ->
    Azure's error code and message) names the scale-downs Azure refused: remembered."""
    outcomes = list(outcomes)
    done = {o.action.key for o in outcomes if o.status == "succeeded"}
    sites = dict(previous.sites)
    for key, record in planned.sites.items():
        needed = planned.requires.get(f"site:{key}", ())
        if all(k in done for k in needed):
            sites[key] = record
        else:
            sites[key] = _partial(previous.sites.get(key) or SiteRecord(), key,
                                  [k for k in needed if k in done])
    plans = dict(previous.plans)
    for key, plan_record in planned.plans.items():
        if all(k in done for k in planned.requires.get(f"plan:{key}", ())):
            plans[key] = plan_record
    for o in outcomes:
        a = o.action
        if o.status == "failed" and a.kind == "scale-down-plan" and a.key in (refused or {}):
            code, message = (refused or {})[a.key]
            refusal = Refusal(a.params["sku"]["name"], code, planned.last_run,  # type: ignore[arg-type]
                              a.params["original"]["name"], message[:300])
            plans[a.target.lower()] = replace(plans.get(a.target.lower()) or PlanRecord(), refused=refusal)
    return State(sites=sites, plans=plans, last_run=planned.last_run)


def write_ahead(previous: State, actions: Iterable[Action]) -> State | None:
    """The state to save before apply when the run stops anything: the previous one with
    every app and slot about to be stopped already known as stopped by the job (no
    transition marked applied, so it is still planned again). A process killed after a
    stop and before the state is saved after apply would otherwise leave an app it stopped
    recorded as stopped by someone else: never started again. (If a person stops that very
    app between such a kill and the next run, the job takes it for its own.) None when the
    run stops nothing: no extra write."""
    stops: dict[str, list[str]] = {}
    for action in actions:
        if action.kind in ("stop-site", "stop-slot") and not action.verdict:
            site_key = action.target.lower().split("/slots/", 1)[0]
            stops.setdefault(site_key, []).append(action.key)
    if not stops:
        return None
    sites = dict(previous.sites)
    for key, keys in stops.items():
        sites[key] = _partial(previous.sites.get(key) or SiteRecord(), key, keys)
    return State(sites=sites, plans=previous.plans, last_run=previous.last_run)


def _partial(record: SiteRecord, site_key: str, succeeded: list[str]) -> SiteRecord:
    slots = set(record.slots_stopped)
    stopped = record.stopped_by_job
    for key in succeeded:
        kind, _, target = key.partition(":")
        target = target.lower()
        slot = target.removeprefix(f"{site_key}/slots/") if target != site_key else None
        if kind == "stop-site":
            stopped = True
        elif kind == "start-site":
            stopped = False
        elif kind == "stop-slot" and slot:
            slots.add(slot)
        elif kind == "start-slot" and slot:
            slots.discard(slot)
    return replace(record, stopped_by_job=stopped, slots_stopped=tuple(sorted(slots)))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# -- the restore tag on a scaled-down plan ---------------------------------------

RESTORE_TAG = "ops-dev-hours-restore"
_TAG_FIELDS = ("name", "tier", "size", "family", "capacity")


def _fields(parts: Iterable[str]) -> dict[str, str]:
    """'key=value' parts of a tag value -> {lower-case key: value}; parts without '=' dropped."""
    return {k.strip().lower(): v.strip() for k, sep, v in (p.partition("=") for p in parts) if sep}


def restore_tag_value(original: Sku, scaled_to: Sku) -> str:
    """'name=P1v3;tier=PremiumV3;size=P1v3;family=Pv3;capacity=2;to=B1;to_capacity=1'."""
    parts = [f"{k}={getattr(original, k)}" for k in _TAG_FIELDS]
    return ";".join(parts + [f"to={scaled_to.name}", f"to_capacity={scaled_to.capacity}"])


def parse_restore_tag(value: str) -> tuple[Sku, Sku]:
    """(original SKU, SKU it was scaled to); ValueError when malformed."""
    fields = _fields((value or "").split(";"))
    missing = [k for k in (*_TAG_FIELDS, "to", "to_capacity") if not fields.get(k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        original = Sku(fields["name"], fields["tier"], fields["size"], fields["family"],
                       int(fields["capacity"]))
        capacity = int(fields["to_capacity"])
    except ValueError:
        raise ValueError("capacity is not a number") from None
    return original, sku_from_name(fields["to"], capacity)


# -- the marker on an app this job stopped ------------------------------------------------

MARKER_TAG = "ops-dev-hours-stopped"
ALL_SLOTS = "*"  # the slot list did not fit in a tag value: every stopped slot
_TAG_VALUE_MAX = 256  # Azure's limit on a tag value


def marker_value(now: datetime, app: bool, slots: Iterable[str]) -> str:
    """'2026-11-30T19:15:00Z' or '2026-11-30T19:15:00Z;slots=pr1,staging': when the job
    stopped the app, and the slots it stopped (listed here: one more write each otherwise);
    ';app=no' when it stopped slots only (the app was stopped by hand)."""
    names = sorted(slots)
    head = _iso(now) + ("" if app else ";app=no")
    value = head + (f";slots={','.join(names)}" if names else "")
    return value if len(value) <= _TAG_VALUE_MAX else f"{head};slots={ALL_SLOTS}"


def parse_marker(value: str) -> tuple[datetime | None, bool, tuple[str, ...]]:
    """(when, whether the job stopped the app itself, the slots it stopped: lower-case, or
    (ALL_SLOTS,)) from a marker; a value it cannot read is taken as the app alone."""
    head, *parts = (value or "").split(";")
    try:
        when = _parse_time(head.strip())
        when = when if when.tzinfo else None
    except ValueError:
        when = None
    fields = _fields(parts)
    slots = tuple(sorted(n.strip().lower() for n in fields.get("slots", "").split(",") if n.strip()))
    return when, fields.get("app", "").lower() != "no", slots
