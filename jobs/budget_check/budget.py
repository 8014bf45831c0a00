"""The Azure budget of a scope: what it should look like, how it differs from
what Azure has, and the one action that puts it right.

Contacts: the ones in settings; with none in settings, each notification
keeps the contacts the budget already has (they are then not compared).
Azure needs an email or action group per notification, so without either a
missing budget is not created (a skipped ``budget-unmanaged``).

Pure: no Azure imports, no clock, no I/O. Works on the ARM JSON shape of a
Consumption budget (``budget.as_dict()`` of azure-mgmt-consumption, or the
raw GET body). Must never change a budget's start date (Azure refuses it, and
a recreated budget loses its history): an update carries the observed
``timePeriod`` and ``eTag`` unchanged; only a missing budget gets a start date,
the first day of the current month.

Action kinds (target ``<scope>/providers/Microsoft.Consumption/budgets/<name>``):

- ``create-budget``  params ``{"scope", "name", "body"}``; body has no eTag.
- ``update-budget``  params ``{"scope", "name", "body", "drift"}``; body carries
  the observed eTag and timePeriod. Apply does one ``budgets.create_or_update``.
- verdict-only: ``budget`` (failed: could not read it), ``budget-unmanaged``
  (skipped: no contacts in settings, or OPS_BUDGET_CHECK__MANAGE_BUDGET=false).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping

from jobs.budget_check.config import BudgetCheckSettings, BudgetThreshold, ScopeBudget
from jobs.model import Action

THRESHOLD_TYPES = {"actual": "Actual", "forecast": "Forecasted"}
_KIND_OF = {"actual": "actual", "forecasted": "forecast"}


@dataclass(frozen=True)
class Notification:
    name: str
    enabled: bool
    operator: str
    threshold: float
    kind: str  # "actual" or "forecast"
    contact_emails: frozenset[str] = frozenset()
    contact_groups: frozenset[str] = frozenset()
    contact_roles: frozenset[str] = frozenset()
    locale: str | None = None

    @property
    def match_key(self) -> tuple[str, float]:
        return self.kind, round(self.threshold, 2)

    def __str__(self) -> str:
        return f"{self.threshold:g}% {self.kind}"


@dataclass(frozen=True)
class ObservedBudget:
    name: str
    amount: float
    category: str
    time_grain: str
    time_period: Mapping[str, Any]  # as Azure has it; sent back unchanged
    notifications: tuple[Notification, ...] = ()
    etag: str | None = None
    current_spend: float | None = None
    forecast_spend: float | None = None
    unit: str | None = None  # currency of the spends
    filter: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def start_date(self) -> str | None:
        return self.time_period.get("startDate")


def parse_budget(arm: Mapping[str, Any]) -> ObservedBudget:
    """ARM JSON of a budget -> ObservedBudget."""
    props = arm.get("properties") or {}
    notes = []
    for name, n in (props.get("notifications") or {}).items():
        notes.append(Notification(
            name=name, enabled=bool(n.get("enabled", True)), operator=str(n.get("operator", "")),
            threshold=float(n.get("threshold", 0)),
            kind=_KIND_OF.get(str(n.get("thresholdType") or "Actual").lower(), "actual"),
            contact_emails=frozenset(e.lower() for e in n.get("contactEmails") or ()),
            contact_groups=frozenset(g.lower() for g in n.get("contactGroups") or ()),
            contact_roles=frozenset(n.get("contactRoles") or ()),
            locale=(n.get("locale") or None)))
    spend, fspend = props.get("currentSpend") or {}, props.get("forecastSpend") or {}
    return ObservedBudget(
        name=str(arm.get("name") or ""), amount=float(props.get("amount") or 0),
        category=str(props.get("category") or ""), time_grain=str(props.get("timeGrain") or ""),
        time_period=dict(props.get("timePeriod") or {}), notifications=tuple(notes),
        etag=arm.get("eTag") or arm.get("etag"),
        current_spend=_number(spend.get("amount")), forecast_spend=_number(fspend.get("amount")),
        unit=spend.get("unit") or fspend.get("unit"), filter=props.get("filter") or None)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def notification_name(t: BudgetThreshold, operator: str) -> str:
    """'Actual_GreaterThan_80_Percent' (Azure's portal style; no dots)."""
    return f"{THRESHOLD_TYPES[t.kind]}_{operator}_{t.percent:g}_Percent".replace(".", "_")


def has_contacts(budget: ScopeBudget) -> bool:
    """Settings name whom Azure notifies; without, the budget's own contacts are kept."""
    return bool(budget.contact_emails or budget.action_groups or budget.contact_roles)


def _contacts(budget: ScopeBudget, t: BudgetThreshold,
              observed: ObservedBudget | None) -> tuple[list[str], list[str], list[str]]:
    if has_contacts(budget) or observed is None:
        return list(budget.contact_emails), list(budget.action_groups), list(budget.contact_roles)
    same = [n for n in observed.notifications if n.match_key == (t.kind, round(t.percent, 2))]
    for n in same + list(observed.notifications):
        if n.contact_emails or n.contact_groups or n.contact_roles:
            return sorted(n.contact_emails), sorted(n.contact_groups), sorted(n.contact_roles)
    return [], [], []


def desired_notifications(budget: ScopeBudget, config: BudgetCheckSettings,
                          observed: ObservedBudget | None = None) -> dict[str, dict[str, Any]]:
    out = {}
    for t in budget.thresholds:
        emails, groups, roles = _contacts(budget, t, observed)
        out[notification_name(t, config.operator)] = {
            "enabled": True, "operator": config.operator, "threshold": t.percent,
            "thresholdType": THRESHOLD_TYPES[t.kind], "contactEmails": emails,
            "contactGroups": groups, "contactRoles": roles, "locale": config.locale}
    return out


def desired_body(budget: ScopeBudget, config: BudgetCheckSettings, today: date,
                 observed: ObservedBudget | None = None) -> dict[str, Any]:
    """The ARM body to PUT: new (start date = first of this month) or an update
    of ``observed`` (its eTag, timePeriod and filter kept)."""
    props: dict[str, Any] = {
        "category": "Cost", "amount": budget.amount, "timeGrain": "Monthly",
        "timePeriod": dict(observed.time_period) if observed
        else {"startDate": f"{today.replace(day=1).isoformat()}T00:00:00Z"},
        "notifications": desired_notifications(budget, config, observed),
    }
    if observed and observed.filter:
        props["filter"] = observed.filter
    body: dict[str, Any] = {"properties": props}
    if observed and observed.etag:
        body["eTag"] = observed.etag
    return body


def drift(observed: ObservedBudget, budget: ScopeBudget, config: BudgetCheckSettings) -> list[str]:
    """How the Azure budget differs from settings, in words; [] when in shape."""
    out = []
    if abs(observed.amount - budget.amount) >= 0.005:
        out.append(f"amount is {observed.amount:g}, settings say {budget.amount:g}")
    if observed.category.lower() != "cost":
        out.append(f"category is {observed.category or 'unset'}, not Cost")
    if observed.time_grain.lower() != "monthly":
        out.append(f"time grain is {observed.time_grain or 'unset'}, not Monthly")
    have = {n.match_key: n for n in observed.notifications}
    want = {(t.kind, round(t.percent, 2)): t for t in budget.thresholds}
    for key, t in want.items():
        n = have.get(key)
        if n is None:
            out.append(f"no notification at {t}")
            continue
        out += [f"notification {n}: {d}" for d in _notification_drift(n, budget, config)]
    out += [f"notification {n} is not in settings" for k, n in have.items() if k not in want]
    if len(observed.notifications) > len(have):
        out.append("two notifications have the same threshold")
    return out


def _notification_drift(n: Notification, budget: ScopeBudget, config: BudgetCheckSettings) -> list[str]:
    out = []
    if not n.enabled:
        out.append("disabled")
    if n.operator != config.operator:
        out.append(f"operator {n.operator}, settings say {config.operator}")
    for what, has, wants in (("emails", n.contact_emails, {e.lower() for e in budget.contact_emails}),
                             ("action groups", n.contact_groups, {g.lower() for g in budget.action_groups}),
                             ("roles", n.contact_roles, set(budget.contact_roles))):
        if has != wants and has_contacts(budget):
            out.append(f"{what} {_list(has)}, settings say {_list(wants)}")
    if (n.locale or "en-us").lower() != config.locale.lower():
        out.append(f"locale {n.locale}, settings say {config.locale}")
    return out


def _list(values: frozenset[str] | set[str]) -> str:
    return ", ".join(sorted(values)) if values else "none"


@dataclass(frozen=True)
class BudgetStatus:
    state: str  # "in shape", "missing", "drifted", "unknown"
    drift: tuple[str, ...] = ()
    observed: ObservedBudget | None = None


def budget_target(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Consumption/budgets/{name}"


def budget_actions(budget: ScopeBudget, observed: ObservedBudget | None, error: str | None,
                   config: BudgetCheckSettings, today: date) -> tuple[list[Action], BudgetStatus]:
    """At most one action that brings the Azure budget in line with settings."""
    target = budget_target(budget.scope, config.budget_name)
    if error:
        return ([Action.fail(target, f"could not read the budget: {error}", kind="budget")],
                BudgetStatus("unknown"))
    status = (BudgetStatus("missing") if observed is None else
              BudgetStatus("drifted" if (d := drift(observed, budget, config)) else "in shape",
                           tuple(d), observed))
    if status.state == "in shape":
        return [], status
    if not config.manage_budget:
        return ([Action.skip(target, f"budget {status.state}, not managed "
                                     "(OPS_BUDGET_CHECK__MANAGE_BUDGET=false)", kind="budget-unmanaged")],
                status)
    body = desired_body(budget, config, today, observed)
    if not all(n["contactEmails"] or n["contactGroups"]
               for n in body["properties"]["notifications"].values()):
        return ([Action.skip(target, f"budget {status.state}, but Azure needs a contact to notify: set "
                                     "OPS_BUDGET_CHECK__CONTACT_EMAILS or __ACTION_GROUPS",
                             kind="budget-unmanaged")], status)
    params = {"scope": budget.scope, "name": config.budget_name, "body": body}
    if observed is None:
        reason = (f"create budget {config.budget_name}: {budget.amount:g} {budget.currency} a month, "
                  f"alerts at {', '.join(str(t) for t in budget.thresholds)}")
        return [Action("create-budget", target, reason, params=params)], status
    params["drift"] = list(status.drift)
    reason = "budget drifted: " + "; ".join(status.drift)
    return [Action("update-budget", target, reason, params=params)], status
