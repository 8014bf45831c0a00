"""Breach alerts of the sla-snapshot job: which notifications a run sends,
once per condition, through the shared notifier (``notify`` actions).

Conditions:

- ``burn:<app>:<rule>``: a multi-window burn-rate rule (page-1h, page-6h,
  ticket-1d, ticket-3d) is firing in a snapshot. Sent when it starts firing;
  forgotten when the rule is ``ok`` again, so a later episode alerts again;
  ``no-data`` changes nothing (no alert, no reset).
- ``missed:<app>:<yyyy-mm>:<objective>``: a final monthly report has a missed
  verdict. Sent once; remembered for the 13 newest months.

State (job state key ``alerts``)::

    {"version": 1,
     "firing": {"burn:shop:page-1h": "2026-11-27T18:00:00Z"},
     "missed": {"missed:shop:2026-10:availability": "2026-11-01T00:00:00Z"},
     "pending": {"missed:shop:2026-10:latency_p95": {"title": ..., "text": ..., "facts": {...},
                                                      "severity": "warning", "through": ...}}}

The values are the period end that raised the condition. ``plan_alerts``
returns the state as if every notification succeeds; ``settle_alerts`` keeps
only the conditions whose notification did succeed, so a failed one is sent
again next run. Must never: import an Azure SDK, read the clock or do I/O.

A burn condition is seen again in every snapshot, but a missed objective only in
the run that creates the month's final report: once that report is stored, no
later run builds it again. So its notices are kept as ``pending`` (the message
itself, only present while not empty) until sent: saved before apply
(``write_ahead``), so a run killed between writing the report and saving the
state does not lose them, and kept by ``settle_alerts`` when sending failed.
Every run sends the pending ones again: at least once, never lost.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from jobs.model import Action, Outcome
from jobs.notify import notify_action

STATE_KEY = "alerts"
STATE_VERSION = 1
KEEP_MISSED_MONTHS = 13
_SEVERITY = {"page": "critical", "ticket": "warning"}
_OBJECTIVE_LABEL = {"availability": "availability objective",
                    "error_budget": "error budget", "latency_p95": "p95 latency target",
                    "latency_p99": "p99 latency target", "cache_hit_ratio": "cache hit ratio target"}


def _empty() -> dict[str, Any]:
    return {"version": STATE_VERSION, "firing": {}, "missed": {}}


def _loaded(state: Mapping[str, Any] | None) -> dict[str, Any]:
    if not state or state.get("version") != STATE_VERSION:
        return _empty()
    loaded = {"version": STATE_VERSION, "firing": dict(state.get("firing") or {}),
              "missed": dict(state.get("missed") or {})}
    if state.get("pending"):
        loaded["pending"] = {k: dict(v) for k, v in state["pending"].items()}
    return loaded


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _burn_notice(snapshot: Mapping[str, Any], rule: str, alert: Mapping[str, Any],
                 key: str) -> Action:
    app, budget = snapshot["app"], snapshot["error_budget"]
    objective = snapshot["objectives"]["availability"] * 100
    title = (f"{app['name']} ({app['environment']}): error budget burning "
             f"{_fmt(alert['long_burn'])}x over {alert['long_window']}")
    text = (f"Burn rate {_fmt(alert['long_burn'])}x over the last {alert['long_window']} and "
            f"{_fmt(alert['short_burn'])}x over the last {alert['short_window']}, at or above "
            f"{alert['threshold']:g}x for the {objective:g} % availability objective "
            f"(as of {snapshot['period']['end']}).")
    facts = {"app": app["name"], "environment": app["environment"], "rule": rule,
             "severity": alert["severity"],
             f"burn {alert['long_window']}": _fmt(alert["long_burn"], 2),
             f"burn {alert['short_window']}": _fmt(alert["short_burn"], 2),
             "budget remaining (min)": _fmt(budget["remaining_minutes"], 2),
             "period end": snapshot["period"]["end"]}
    return notify_action(key, title, text, facts, _SEVERITY[alert["severity"]])


def _missed_notice(report: Mapping[str, Any], objective: str, verdict: Mapping[str, Any],
                   key: str) -> Action:
    app, month = report["app"], report["month"]
    label = _OBJECTIVE_LABEL.get(objective, objective)
    title = f"{app['name']} ({app['environment']}): {label} missed in {month}"
    target = verdict.get("target_ms")
    text = (f"{month}: {label} missed: {_value(objective, verdict['value'])} against "
            f"{_value(objective, verdict['target'])}"
            + (f" (target {target:g} ms)" if target is not None else "") + ".")
    facts = {"app": app["name"], "environment": app["environment"], "month": month,
             "objective": objective, "value": _value(objective, verdict["value"]),
             "target": _value(objective, verdict["target"])}
    return notify_action(key, title, text, facts, "warning")


def _value(objective: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if objective == "error_budget":
        return f"{value:.2f} min remaining"
    return f"{value * 100:.3f} %"


def _month_minus(month: str, months: int) -> str:
    year, number = (int(p) for p in month.split("-"))
    index = year * 12 + number - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def plan_alerts(snapshots: Iterable[Mapping[str, Any]], finals: Iterable[Mapping[str, Any]],
                state: Mapping[str, Any] | None) -> tuple[list[Action], dict[str, Any]]:
    """(notify actions to send, the alert state once they are sent): new conditions,
    and the pending missed-objective notices of earlier runs."""
    new = _loaded(state)
    pending = new.pop("pending", {})
    actions: list[Action] = []
    newest = None
    for snapshot in snapshots:
        app = snapshot["app"]["name"]
        newest = max(newest or "", snapshot["period"]["start"][:7])
        for rule, alert in sorted(snapshot["alerts"].items()):
            key = f"burn:{app}:{rule}"
            if alert["state"] == "firing" and key not in new["firing"]:
                actions.append(_burn_notice(snapshot, rule, alert, key))
                new["firing"][key] = snapshot["period"]["end"]
            elif alert["state"] == "ok":
                new["firing"].pop(key, None)
    for report in finals:
        newest = max(newest or "", report["month"])
        for objective, verdict in sorted((report.get("verdicts") or {}).items()):
            key = f"missed:{report['app']['name']}:{report['month']}:{objective}"
            if verdict["status"] == "missed" and key not in new["missed"]:
                actions.append(_missed_notice(report, objective, verdict, key))
                new["missed"][key] = report.get("through") or ""
    for key, notice in sorted(pending.items()):
        newest = max(newest or "", key.split(":")[2])
        if key not in new["missed"]:
            actions.append(notify_action(key, notice["title"], notice["text"], notice.get("facts"),
                                         notice.get("severity", "warning")))
            new["missed"][key] = notice.get("through") or ""
    if newest:
        oldest = _month_minus(newest, KEEP_MISSED_MONTHS)
        new["missed"] = {k: v for k, v in new["missed"].items() if k.split(":")[2] > oldest}
    return actions, new


def _pending(action: Action, through: str) -> dict[str, Any]:
    p = action.params
    return {"title": p["title"], "text": p["text"], "facts": dict(p.get("facts") or {}),
            "severity": p.get("severity", "warning"), "through": through}


def write_ahead(before: Mapping[str, Any] | None, planned: Mapping[str, Any],
                actions: Iterable[Action]) -> dict[str, Any] | None:
    """The state to save before apply when the run is about to send missed-objective
    notices: ``before`` with them pending. None when it sends none (no extra write)."""
    notices = {a.target: _pending(a, planned["missed"].get(a.target, "")) for a in actions
               if a.kind == "notify" and a.target.startswith("missed:") and not a.verdict}
    if not notices:
        return None
    ahead = _loaded(before)
    ahead["pending"] = {**ahead.get("pending", {}), **notices}
    return ahead


def settle_alerts(before: Mapping[str, Any] | None, planned: Mapping[str, Any],
                  outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The state to save after apply: a condition whose notification did not
    succeed is left out, so the next run sends it again."""
    outcomes = list(outcomes)
    sent = {o.action.target for o in outcomes
            if o.action.kind == "notify" and o.status == "succeeded"}
    old = _loaded(before)
    settled = _empty()
    for section in ("firing", "missed"):
        for key, value in planned[section].items():
            if key in old[section] or key in sent:
                settled[section][key] = value
    pending = {o.action.target: _pending(o.action, planned["missed"].get(o.action.target, ""))
               for o in outcomes if o.action.kind == "notify" and o.action.target.startswith("missed:")
               and o.action.target not in sent and o.action.target not in old["missed"]}
    if pending:
        settled["pending"] = pending
    return settled
