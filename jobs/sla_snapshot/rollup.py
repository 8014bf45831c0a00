"""Month-to-date rollup and final monthly report of the sla-snapshot job,
built from its snapshots.

Must never: import an Azure SDK, read the clock, do I/O, count a period twice,
or report a figure its data cannot support (too few events: null, never 100 %).

Rollup, schema_version 1 (``rollups/<app>/<yyyy>-<mm>.json``)::

    schema_version, kind "sla-rollup", app, month "YYYY-MM", days_in_month
    objectives     those of the latest period added
    through        end of the latest period added
    days           {"YYYY-MM-DD": {
                      periods {"HH:MM": {minutes, requests, server_errors,
                                         traffic_minutes, bad_minutes}},
                      latency null | {count, within_p95_target, within_p99_target,
                                      histogram},
                      cache   null | {hits, misses}}}
    summary        derived from days on every change:
                   {valid, invalid_reason, requests {total, server_errors},
                    minutes {total, traffic, idle, good, bad},
                    availability {request_based, time_based}, error_rate,
                    latency_ms null | {valid, invalid_reason, count, p50, p95, p99
                                (from the merged histogram, approximate),
                                within_p95_ratio, within_p99_ratio},
                    cache null | {hits, misses, lookups, hit_ratio, valid, invalid_reason},
                    error_budget {allowed_minutes, consumed_minutes, remaining_minutes,
                                  consumed_ratio, covered_minutes, elapsed_minutes},
                    daily [{date, valid, availability {request_based, time_based},
                            latency_ms null | {p50, p95, p99}, bad_minutes,
                            budget_consumed_minutes (cumulative through that day)}]}

The final report (``monthly/<app>/<yyyy>-<mm>.json``) is the rollup of the
whole month with kind "sla-monthly" and ``verdicts``: {availability,
error_budget, latency_p95, latency_p99, cache_hit_ratio} -> {status:
met|missed|unknown, value, target, reason}. Availability is request-based;
the error budget is time-based (met while remaining >= 0); latency p95 is met
when at least 95 % of the month's requests took no longer than the p95 target
(p99 likewise with 99 %); a section without data (no workspace, no cache) has
no verdict.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any, Iterable

from jobs.sla_snapshot.latency import Latency, total_latency
from jobs.sla_snapshot.sli import NO_COUNTS, WindowCounts, days_in_month, error_budget, invalid_reason
from jobs.sla_snapshot.snapshot import SCHEMA_VERSION, Period, minutes_json, month_start, parse_iso


class RollupError(ValueError):
    """A snapshot that does not belong to the rollup it was added to."""


def _entry_span(day: str, start: str, minutes: int) -> tuple[datetime, datetime]:
    begin = parse_iso(f"{day}T{start}:00Z")
    return begin, begin + timedelta(minutes=minutes)


def _periods(rollup: dict[str, Any] | None):
    for day, record in sorted((rollup or {}).get("days", {}).items()):
        for start, entry in sorted(record["periods"].items()):
            yield day, start, entry


def _counts(entry: dict[str, Any]) -> WindowCounts:
    return WindowCounts(entry["minutes"], entry["requests"], entry["server_errors"],
                        entry["traffic_minutes"], entry["bad_minutes"])


def counts_before(rollup: dict[str, Any] | None, period: Period) -> WindowCounts:
    """The month's counts of the periods that ended by ``period.start``: what a
    snapshot of ``period`` adds its own counts to, so its error budget is the month
    to date through its own end (later periods never count, so re-snapshotting an
    earlier hour gives the same bytes as the first time)."""
    total = NO_COUNTS
    for day, start, entry in _periods(rollup):
        _, end = _entry_span(day, start, entry["minutes"])
        if end <= period.start:
            total = total + _counts(entry)
    return total


def new_rollup(snapshot: dict[str, Any]) -> dict[str, Any]:
    month = snapshot["period"]["start"][:7]
    year, number = (int(p) for p in month.split("-"))
    return {"schema_version": SCHEMA_VERSION, "kind": "sla-rollup", "app": dict(snapshot["app"]),
            "month": month, "days_in_month": days_in_month(year, number),
            "objectives": dict(snapshot["objectives"]), "through": None, "days": {}}


def add_snapshot(rollup: dict[str, Any] | None,
                 snapshot: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(the rollup with the snapshot added, None) or (the rollup unchanged, why
    not): a period already in it, or overlapping one, is never counted twice."""
    rollup = copy.deepcopy(rollup) if rollup else new_rollup(snapshot)
    period = snapshot["period"]
    if period["start"][:7] != rollup["month"] or snapshot["app"]["name"] != rollup["app"]["name"]:
        raise RollupError(f"snapshot of {snapshot['app']['name']} {period['start']} does not belong "
                          f"to the rollup of {rollup['app']['name']} {rollup['month']}")
    start, end = parse_iso(period["start"]), parse_iso(period["end"])
    for day, key, entry in _periods(rollup):
        begin, finish = _entry_span(day, key, entry["minutes"])
        if begin == start and finish == end:
            return rollup, f"period {period['start']} is already in the rollup"
        if begin < end and finish > start:
            return rollup, (f"period {period['start']} overlaps {day}T{key}Z "
                            f"({entry['minutes']} min) already in the rollup")
    record = rollup["days"].setdefault(period["start"][:10],
                                       {"periods": {}, "latency": None, "cache": None})
    minutes = snapshot["minutes"]
    record["periods"][period["start"][11:16]] = {
        "minutes": period["minutes"], "requests": snapshot["requests"]["total"],
        "server_errors": snapshot["requests"]["server_errors"],
        "traffic_minutes": minutes["traffic"], "bad_minutes": minutes["bad"]}
    latency = snapshot.get("latency_ms")
    if latency is not None:
        before = record["latency"] or {"count": 0, "within_p95_target": 0, "within_p99_target": 0,
                                       "histogram": {}}
        merged = _latency(before) + _latency(latency)
        record["latency"] = {"count": merged.count, "within_p95_target": merged.within_p95_target,
                             "within_p99_target": merged.within_p99_target,
                             "histogram": {str(b): n for b, n in merged.histogram.items()}}
    cache = snapshot.get("cache")
    if cache is not None:
        before = record["cache"] or {"hits": 0, "misses": 0}
        record["cache"] = {"hits": before["hits"] + cache["hits"],
                           "misses": before["misses"] + cache["misses"]}
    if rollup["through"] is None or parse_iso(rollup["through"]) <= end:
        rollup["through"] = period["end"]
        rollup["objectives"] = dict(snapshot["objectives"])
    rollup["summary"] = summarise(rollup)
    return rollup, None


def rollup_from_snapshots(snapshots: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None,
                                                                       list[str]]:
    """Rebuild a month's rollup from its snapshots (in period order); the
    reasons of those left out."""
    rollup, skipped = None, []
    for snapshot in sorted(snapshots, key=lambda s: (s["period"]["start"], s["period"]["end"])):
        rollup, reason = add_snapshot(rollup, snapshot)
        if reason:
            skipped.append(reason)
    return rollup, skipped


def _latency(section: dict[str, Any]) -> Latency:
    return Latency(count=section["count"], within_p95_target=section["within_p95_target"],
                   within_p99_target=section["within_p99_target"],
                   histogram={int(b): n for b, n in section["histogram"].items()})


def _availability(counts: WindowCounts, min_events: int) -> tuple[str | None, dict[str, Any]]:
    reason = invalid_reason(counts.requests, min_events)
    return reason, {"request_based": counts.request_availability if reason is None else None,
                    "time_based": counts.time_availability if reason is None else None}


def summarise(rollup: dict[str, Any]) -> dict[str, Any]:
    """The derived figures of a rollup (month to date and per day)."""
    goals = rollup["objectives"]
    min_events = goals["min_events"]
    total, daily, consumed = NO_COUNTS, [], 0
    latencies, caches = [], []
    for day, record in sorted(rollup["days"].items()):
        counts = NO_COUNTS
        for entry in record["periods"].values():
            counts = counts + _counts(entry)
        total = total + counts
        consumed += counts.bad_minutes
        reason, availability = _availability(counts, min_events)
        day_latency = None
        if record["latency"] is not None:
            latency = total_latency([_latency(record["latency"])])
            latencies.append(latency)
            if invalid_reason(latency.count, min_events) is None:
                day_latency = {"p50": latency.p50, "p95": latency.p95, "p99": latency.p99}
        if record["cache"] is not None:
            caches.append(record["cache"])
        daily.append({"date": day, "valid": reason is None, "availability": availability,
                      "latency_ms": day_latency, "bad_minutes": counts.bad_minutes,
                      "budget_consumed_minutes": consumed})
    reason, availability = _availability(total, min_events)
    budget = error_budget(rollup["month"], goals["availability"], total.bad_minutes)
    through = parse_iso(rollup["through"]) if rollup.get("through") else month_start(rollup["month"])
    return {
        "valid": reason is None, "invalid_reason": reason,
        "requests": {"total": total.requests, "server_errors": total.server_errors},
        "minutes": minutes_json(total), "availability": availability,
        "error_rate": total.error_rate if reason is None else None,
        "latency_ms": _latency_summary(latencies, min_events),
        "cache": _cache_summary(caches, min_events),
        "error_budget": {
            "allowed_minutes": budget.allowed_minutes, "consumed_minutes": budget.consumed_minutes,
            "remaining_minutes": budget.remaining_minutes, "consumed_ratio": budget.consumed_ratio,
            "covered_minutes": total.minutes,
            "elapsed_minutes": int((through - month_start(rollup["month"])).total_seconds() // 60)},
        "daily": daily,
    }


def _latency_summary(parts: list[Latency], min_events: int) -> dict[str, Any] | None:
    if not parts:
        return None
    latency = total_latency(parts)
    reason = invalid_reason(latency.count, min_events)
    valid = reason is None
    return {"valid": valid, "invalid_reason": reason, "count": latency.count,
            "p50": latency.p50 if valid else None, "p95": latency.p95 if valid else None,
            "p99": latency.p99 if valid else None,
            "within_p95_ratio": latency.within_ratio("p95") if valid else None,
            "within_p99_ratio": latency.within_ratio("p99") if valid else None}


def _cache_summary(parts: list[dict[str, int]], min_events: int) -> dict[str, Any] | None:
    if not parts:
        return None
    hits, misses = sum(p["hits"] for p in parts), sum(p["misses"] for p in parts)
    reason = invalid_reason(hits + misses, min_events, "cache lookups")
    return {"hits": hits, "misses": misses, "lookups": hits + misses,
            "hit_ratio": hits / (hits + misses) if reason is None else None,
            "valid": reason is None, "invalid_reason": reason}


def _at_least(value: float | None, target: float) -> bool | None:
    # compared as stored (9 decimals), so 0.999 meets 99.9 % whatever the float noise
    return None if value is None else round(value, 9) >= round(target, 9)


def _verdict(value: float | None, target: float, met: bool | None,
             reason: str | None) -> dict[str, Any]:
    status = "unknown" if value is None or met is None else ("met" if met else "missed")
    return {"status": status, "value": value, "target": target,
            "reason": reason if status == "unknown" else None}


def verdicts(rollup: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Whether the month met each objective; see the module docstring."""
    goals, summary = rollup["objectives"], rollup["summary"]
    availability = summary["availability"]["request_based"]
    out = {"availability": _verdict(availability, goals["availability"],
                                    _at_least(availability, goals["availability"]),
                                    summary["invalid_reason"])}
    budget = summary["error_budget"]
    out["error_budget"] = _verdict(budget["remaining_minutes"], 0.0,
                                   None if summary["invalid_reason"]
                                   else _at_least(budget["remaining_minutes"], 0.0),
                                   summary["invalid_reason"])
    latency = summary["latency_ms"]
    if latency is not None:
        for name, share in (("p95", 0.95), ("p99", 0.99)):
            ratio = latency[f"within_{name}_ratio"]
            out[f"latency_{name}"] = _verdict(ratio, share, _at_least(ratio, share),
                                              latency["invalid_reason"])
            out[f"latency_{name}"]["target_ms"] = goals[f"latency_{name}_ms"]
    cache = summary["cache"]
    if cache is not None:
        ratio = cache["hit_ratio"]
        out["cache_hit_ratio"] = _verdict(ratio, goals["cache_hit_ratio"],
                                          _at_least(ratio, goals["cache_hit_ratio"]),
                                          cache["invalid_reason"])
    return out


def final_report(rollup: dict[str, Any]) -> dict[str, Any]:
    """The final report of a finished month, from its rollup."""
    report = copy.deepcopy(rollup)
    report["kind"] = "sla-monthly"
    report["summary"] = summarise(report)
    report["verdicts"] = verdicts(report)
    return report

