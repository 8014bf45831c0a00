"""Which apps the dev-hours job may touch, and on what schedule.

An app is a target when it carries the opt-in tag, is in scope, is not denied
as production, and its tags parse. The production deny is hard: built-in rules
(an environment-like tag whose value has the word prod/production/prd, a
production-looking name of the app, a slot, the plan or their resource groups)
plus the configured extras, which only add; no tag can override it. Pure: no
clock, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.resources import Plan, Site, tag
from jobs.dev_hours.schedule import (Schedule, ScheduleError, end_of_local_day, latest_transition,
                                     parse_schedule)

ENV_TAG_NAMES = ("environment", "env", "stage", "tier", "lifecycle")
# production as a word of a name or tag value, optionally numbered: prd, prod2, prod-3, Production-EU
PROD_WORD = re.compile(r"(^|[^a-z0-9])(prod|production|prd)\d*($|[^a-z0-9])", re.IGNORECASE)
KEEP_ON_TAG = "ops-keep-on-until"
KEEP_OFF_TAG = "ops-keep-off-until"
DEFAULT_VALUE = "default"  # opt-in tag value meaning the default schedule
EXPIRY_YEARS = (2000, 2200)  # as for `now`; beyond them date arithmetic overflows (year 1, 9999)
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?",
                       re.IGNORECASE)

Status = Literal["ignored", "denied", "invalid", "target"]


@dataclass(frozen=True)
class Override:
    """A keep-on / keep-off request, in force until ``until`` (UTC)."""

    kind: Literal["on", "off"]
    tag: str
    until: datetime

    @property
    def id(self) -> str:
        return f"{self.tag}@{self.until.strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass(frozen=True)
class Event:
    """What is in force for a target now: the latest transition, or an override."""

    kind: Literal["on", "off"]
    id: str
    text: str  # for people: "off at Fri 2026-11-27 19:00 Europe/Berlin (18:00 UTC)"
    at: datetime | None  # when it became due (None for an override)


@dataclass(frozen=True)
class Classified:
    site: Site
    status: Status
    reason: str = ""  # why denied / what is malformed / why ignored
    schedule: Schedule | None = None
    override: Override | None = None
    notes: tuple[str, ...] = ()  # e.g. an expired override that was ignored

    def event(self, now: datetime) -> Event | None:
        if self.override:
            o = self.override
            zone = self.schedule.zone if self.schedule else "UTC"
            local = _local(o.until, zone)
            return Event(o.kind, o.id, f"keep-{o.kind} override ({o.tag}) until {local}", None)
        if self.schedule is None:
            return None
        t = latest_transition(self.schedule, now)
        return Event(t.kind, t.id, t.describe(), t.at) if t else None


def classify(site: Site, plan: Plan | None, now: datetime, config: DevHoursSettings) -> Classified:
    value = tag(site.tags, config.opt_in_tag)
    if value is None:
        return Classified(site, "ignored", f"no {config.opt_in_tag} tag")
    if config.subscriptions and site.subscription.lower() not in config.subscriptions:
        return Classified(site, "ignored", "subscription not in OPS_DEV_HOURS__SUBSCRIPTIONS")
    if config.resource_groups and site.resource_group.lower() not in config.resource_groups:
        return Classified(site, "ignored", "resource group not in OPS_DEV_HOURS__RESOURCE_GROUPS")
    denied = deny_reason(site, plan, config)
    if denied:
        return Classified(site, "denied", denied)
    where = f"app '{site.name}'"
    try:
        text = config.default_schedule if value.strip().lower() == DEFAULT_VALUE else value
        schedule = parse_schedule(text, zone=config.timezone, holiday_calendar=config.holiday_country,
                                  holiday_dates=config.holiday_dates)
    except ScheduleError as exc:
        return Classified(site, "invalid", f"{where}: tag {config.opt_in_tag}='{value}': {exc}")
    active, notes, errors = [], [], []
    for name, kind in ((KEEP_ON_TAG, "on"), (KEEP_OFF_TAG, "off")):
        raw = tag(site.tags, name)
        if raw is None:
            continue
        try:
            until = parse_expiry(raw, schedule.zone)
        except ValueError as exc:
            errors.append(f"{where}: tag {name}='{raw}': {exc}")
            continue
        if until > now:
            active.append(Override(kind, name, until))  # type: ignore[arg-type]
        else:
            notes.append(f"{name} expired at {_local(until, schedule.zone)}; ignored")
    if errors:
        return Classified(site, "invalid", "; ".join(errors), schedule)
    if len(active) > 1:
        return Classified(site, "invalid", f"{where}: both {KEEP_ON_TAG} and {KEEP_OFF_TAG} are in "
                          "force; remove one", schedule)
    return Classified(site, "target", "", schedule, active[0] if active else None, tuple(notes))


def parse_expiry(value: str, zone: str) -> datetime:
    """An override's expiry: ISO-8601 with a UTC offset, or a date meaning the
    end of that local day in ``zone``. ValueError says what is wrong."""
    text = (value or "").strip()
    if not text:
        raise ValueError("no expiry; set a time with offset (2026-11-27T22:00+01:00) or a date (2026-11-27)")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a valid date") from None
        _require_year(day.year, text)
        return end_of_local_day(day, zone)
    if not _ISO_TIME.fullmatch(text):
        raise ValueError("not an ISO-8601 time (expected e.g. 2026-11-27T22:00+01:00 or 2026-11-27)")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not a valid time") from None
    if moment.tzinfo is None:
        raise ValueError("the time has no UTC offset (expected e.g. 2026-11-27T22:00+01:00 or ...Z)")
    _require_year(moment.year, text)
    return moment.astimezone(timezone.utc)


def _require_year(year: int, text: str) -> None:
    first, last = EXPIRY_YEARS
    if not first <= year <= last:
        raise ValueError(f"'{text}' is out of range (years {first} to {last})")


def deny_reason(site: Site, plan: Plan | None, config: DevHoursSettings) -> str | None:
    """Why an app must never be touched, naming the rule; None when it may be."""
    if site.subscription.lower() in config.deny_subscriptions:
        return f"subscription {site.subscription} is in OPS_DEV_HOURS__DENY_SUBSCRIPTIONS"
    for subject, tags in ((f"app '{site.name}'", site.tags),
                          (f"its plan '{plan.name}'" if plan else "", plan.tags if plan else {})):
        found = production_tag(tags, config)
        if found:
            return f"{subject} has tag {found}"
    names = [(f"app name '{site.name}'", site.name),
             (f"its resource group '{site.resource_group}'", site.resource_group)]
    names += [(f"slot name '{s}'", s) for s in site.slot_names]
    if plan:
        names += [(f"plan name '{plan.name}'", plan.name),
                  (f"its plan's resource group '{plan.resource_group}'", plan.resource_group)]
    for subject, name in names:
        found = production_name(name, config)
        if found:
            return f"{subject} {found}"
    return None


def plan_deny_reason(plan: Plan, config: DevHoursSettings) -> str | None:
    """Why a plan must never be scaled, naming the rule."""
    if plan.subscription.lower() in config.deny_subscriptions:
        return f"subscription {plan.subscription} is in OPS_DEV_HOURS__DENY_SUBSCRIPTIONS"
    found = production_tag(plan.tags, config)
    if found:
        return f"plan has tag {found}"
    for subject, name in ((f"plan name '{plan.name}'", plan.name),
                          (f"its resource group '{plan.resource_group}'", plan.resource_group)):
        found = production_name(name, config)
        if found:
            return f"{subject} {found}"
    return None


def production_tag(tags, config: DevHoursSettings) -> str | None:
    keys = (*ENV_TAG_NAMES, *config.deny_tag_keys)
    for key, value in (tags or {}).items():
        if key.strip().lower() not in keys:
            continue
        if PROD_WORD.search(value or ""):
            return f"{key}={value} (built-in production rule; no tag overrides it)"
        if any(_has_word(value or "", extra) for extra in config.deny_tag_values):
            return f"{key}={value} (listed in OPS_DEV_HOURS__DENY_TAG_VALUES)"
    return None


def _has_word(text: str, word: str) -> bool:
    """``word`` (which may itself hold separators) as whole words of ``text``, any case."""
    return re.search(rf"(^|[^a-z0-9]){re.escape(word)}($|[^a-z0-9])", text.strip(), re.IGNORECASE) is not None


def production_name(name: str, config: DevHoursSettings) -> str | None:
    if PROD_WORD.search(name or ""):
        return f"matches the built-in production pattern {PROD_WORD.pattern}"
    if config.deny_name_pattern and re.search(config.deny_name_pattern, name or "", re.IGNORECASE):
        return f"matches OPS_DEV_HOURS__DENY_NAME_PATTERN {config.deny_name_pattern}"
    return None


def _local(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    utc = moment.astimezone(timezone.utc).strftime("%H:%M")
    return f"{local.strftime('%a %Y-%m-%d %H:%M')} {zone} ({utc} UTC)"
