"""Threshold alerts: which thresholds are crossed, the one message per
threshold per month, and what the job remembers of the ones it sent.

Pure: no Azure imports, no clock, no I/O. Must never send an all-clear, and
never conclude "below" from partial data.

State (``ctx.load_state(STATE_KEY)``, one JSON blob; scopes lower-cased)::

    {"version": 1,
     "scopes": {"/subscriptions/<id>": {
         "month": "2026-11",
         "sent": {"actual-80": {"at": "2026-11-12T07:00:00Z", "actual": 412.3,
                                "forecast": 530.1, "services": {"Storage": 120.5}}}}}}

A record is kept only when its notify action succeeded (``settle``), so a
failed notification is sent again next run and a sent one never twice. A new
month starts with nothing sent. (If saving the state fails after a send, the
next run sends again: at least once, never lost.)

Partial data: a crossed *actual* threshold is still alerted (the partial sum
of non-negative rows is a lower bound, so the crossing is proven); forecast
thresholds and "below" are left unknown. Forecast alerts are also held while
the forecast is low-confidence (month start).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from jobs.budget_check.anomalies import Anomaly
from jobs.budget_check.config import BudgetThreshold, ScopeBudget
from jobs.budget_check.costs import Forecast, Freshness, MonthToDate, day_text, money
from jobs.model import Action, Outcome
from jobs.notify import notify_action

STATE_KEY = "alerts"
VERSION = 1
MAX_SERVICES_KEPT = 50  # per sent alert, for "change since" next time


@dataclass(frozen=True)
class SentAlert:
    at: datetime
    actual: float
    forecast: float
    services: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "actual": round(self.actual, 2),
                "forecast": round(self.forecast, 2),
                "services": {k: round(v, 2) for k, v in self.services.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SentAlert":
        return cls(at=datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
                   actual=float(data.get("actual") or 0), forecast=float(data.get("forecast") or 0),
                   services={str(k): float(v) for k, v in (data.get("services") or {}).items()})


@dataclass(frozen=True)
class ScopeAlerts:
    month: str
    sent: Mapping[str, SentAlert] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertState:
    scopes: Mapping[str, ScopeAlerts] = field(default_factory=dict)
    # Planned states only: "<scope>|<threshold key>" -> the notify action's key. Not stored.
    requires: Mapping[str, str] = field(default_factory=dict, compare=False)

    def sent(self, scope: str, month: str) -> dict[str, SentAlert]:
        """Alerts already sent for ``scope`` this ``month`` (a new month has none)."""
        record = self.scopes.get(scope.lower())
        return dict(record.sent) if record and record.month == month else {}

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "scopes": {
            k: {"month": v.month, "sent": {t: s.to_json() for t, s in sorted(v.sent.items())}}
            for k, v in sorted(self.scopes.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "AlertState":
        """A stored state; {} (nothing stored yet) gives an empty one."""
        data = data or {}
        if data.get("version", VERSION) != VERSION:
            raise ValueError(f"budget-check state version {data.get('version')} is not supported "
                             f"(expected {VERSION})")
        return cls(scopes={k.lower(): ScopeAlerts(str(v.get("month") or ""), {
            t: SentAlert.from_json(s) for t, s in (v.get("sent") or {}).items()})
            for k, v in (data.get("scopes") or {}).items()})


def settle(previous: AlertState, planned: AlertState, outcomes: Iterable[Outcome]) -> AlertState:
    """The state to save after apply: a planned record is kept only when its
    notification succeeded; a scope's new month replaces its old one."""
    done = {o.action.key for o in outcomes if o.status == "succeeded"}
    scopes = dict(previous.scopes)
    for scope, record in planned.scopes.items():
        kept = {k: s for k, s in record.sent.items()
                if planned.requires.get(f"{scope}|{k}") is None or planned.requires[f"{scope}|{k}"] in done}
        scopes[scope] = ScopeAlerts(record.month, {**previous.sent(scope, record.month), **kept})
    return AlertState(scopes=scopes)


# -- thresholds ---------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdCheck:
    threshold: BudgetThreshold
    limit: float  # the threshold in money
    value: float | None  # actual or forecast compared with it
    status: str  # "crossed", "below", "alerted", "unknown", "held"
    note: str
    action: Action | None = None


@dataclass(frozen=True)
class Context:
    """What one scope's alerts say, beyond the number that crossed."""

    budget: ScopeBudget
    now: datetime
    mtd: MonthToDate
    forecast: Forecast | None
    freshness: Freshness
    anomalies: tuple[Anomaly, ...] = ()
    partial: bool = False
    partial_reason: str | None = None
    negative_rows: bool = False  # a partial sum is then no lower bound
    top_services: int = 3


def check_thresholds(ctx: Context, sent: Mapping[str, SentAlert], operator: str) -> list[ThresholdCheck]:
    """One check per threshold; a crossed one not yet alerted this month carries
    its notify action."""
    out = []
    for t in ctx.budget.thresholds:
        limit = t.limit(ctx.budget.amount)
        value = ctx.mtd.total if t.kind == "actual" else (ctx.forecast.total if ctx.forecast else None)
        if t.key in sent:
            out.append(ThresholdCheck(t, limit, value, "alerted",
                                      f"alerted on {day_text(sent[t.key].at.date())}"))
            continue
        if ctx.partial and (t.kind == "forecast" or ctx.negative_rows):
            out.append(ThresholdCheck(t, limit, value, "unknown",
                                      f"not judged on partial data ({ctx.partial_reason or 'incomplete'})"))
            continue
        if value is None:
            out.append(ThresholdCheck(t, limit, None, "unknown", "no forecast"))
            continue
        crossed = value > limit if operator == "GreaterThan" else value >= limit
        if not crossed:
            status = "unknown" if ctx.partial else "below"
            note = ("at least " if ctx.partial else "") + f"{money(value, ctx.budget.currency)} " \
                   f"of {money(limit, ctx.budget.currency)}"
            out.append(ThresholdCheck(t, limit, value, status, note))
            continue
        if t.kind == "forecast" and ctx.forecast and ctx.forecast.confidence == "low":
            out.append(ThresholdCheck(t, limit, value, "held",
                                      "forecast crosses it, but is low-confidence: no alert yet"))
            continue
        sign = ">" if operator == "GreaterThan" else ">="
        out.append(ThresholdCheck(t, limit, value, "crossed",
                                  f"{money(value, ctx.budget.currency)} {sign} {money(limit, ctx.budget.currency)}",
                                  alert_action(ctx, t, value, sent)))
    return out


def alert_key(scope: str, month: str, t: BudgetThreshold) -> str:
    """The notify action's target: 'budget:/subscriptions/<id>:2026-11:actual-80'."""
    return f"budget:{scope.lower()}:{month}:{t.key}"


def alert_action(ctx: Context, t: BudgetThreshold, value: float, sent: Mapping[str, SentAlert]) -> Action:
    """The one message for a crossed threshold."""
    b, cur = ctx.budget, ctx.budget.currency
    pct = value / b.amount * 100
    at_least = "at least " if ctx.partial else ""
    if t.kind == "actual":
        title = f"Budget {t.percent:g}% reached: {b.label}"
        lead = (f"Cost of {b.label} this month is {at_least}{money(value, cur)}, {pct:.0f}% of the "
                f"{money(b.amount, cur)} budget (alert at {t.written}).")
    else:
        title = f"Forecast over {t.percent:g}% of budget: {b.label}"
        lead = (f"Forecast for {b.label} to month end is {money(value, cur)}, {pct:.0f}% of the "
                f"{money(b.amount, cur)} budget (alert at {t.written}).")
    last = _last_sent(sent)
    lines = [lead]
    if ctx.forecast and t.kind == "actual":
        lines.append(f"Forecast to month end: {money(ctx.forecast.total, cur)}.")
    lines.append("Top services: " + drivers(ctx.mtd.by_service, last[1].services if last else None,
                                            cur, ctx.top_services) + ".")
    lines.append(since_text(ctx.mtd.total, last, cur) + ".")
    if ctx.anomalies:
        lines.append("Anomalies: " + "; ".join(a.text for a in ctx.anomalies[:5]) + ".")
    lines.append(ctx.freshness.text[:1].upper() + ctx.freshness.text[1:] + ".")
    if ctx.partial:
        lines.append(f"Partial data ({ctx.partial_reason or 'incomplete'}): the true cost may be higher.")
    facts = {"Scope": b.scope, "Month to date": at_least + money(ctx.mtd.total, cur),
             "Budget": money(b.amount, cur), "Threshold": t.written}
    if ctx.forecast:
        facts["Forecast"] = money(ctx.forecast.total, cur)
    if ctx.freshness.last_complete_day:
        facts["Data to"] = day_text(ctx.freshness.last_complete_day)
    severity = "critical" if pct >= 100 and t.kind == "actual" else "warning"
    return notify_action(alert_key(b.scope, ctx.mtd.month, t), title, " ".join(lines), facts, severity)


def _last_sent(sent: Mapping[str, SentAlert]) -> tuple[str, SentAlert] | None:
    return max(sent.items(), key=lambda kv: kv[1].at) if sent else None


def drivers(now: Mapping[str, float], before: Mapping[str, float] | None, currency: str, n: int) -> str:
    """The services that drive the spend: largest growth since the last alert,
    else largest cost this month. 'Storage $120.00 (+$40.00), ...'."""
    if before is None:
        top = list(now.items())[:n]
        return ", ".join(f"{s} {money(v, currency)}" for s, v in top) or "none"
    growth = sorted(((s, v, v - before.get(s, 0.0)) for s, v in now.items()),
                    key=lambda x: (-x[2], x[0]))
    top = [g for g in growth if g[2] > 0.005][:n] or [(s, v, v - before.get(s, 0.0))
                                                       for s, v in list(now.items())[:n]]
    return ", ".join(f"{s} {money(v, currency)} ({money(d, currency, signed=True)})" for s, v, d in top)


def since_text(total: float, last: tuple[str, SentAlert] | None, currency: str) -> str:
    """'+$42.10 since the 80% actual alert on Nov 12' or 'first budget alert this month'."""
    if last is None:
        return "First budget alert this month"
    key, record = last
    kind, _, pct = key.partition("-")
    return (f"{money(total - record.actual, currency, signed=True)} since the {pct}% {kind} alert "
            f"on {day_text(record.at.date())}")


def record_for(ctx: Context) -> SentAlert:
    """What to remember of an alert sent now."""
    services = dict(list(ctx.mtd.by_service.items())[:MAX_SERVICES_KEPT])
    return SentAlert(at=ctx.now, actual=ctx.mtd.total,
                     forecast=ctx.forecast.total if ctx.forecast else 0.0, services=services)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
