"""The snapshot document of the sla-snapshot job: which period a run covers,
the versioned JSON it writes per app and period, its byte-stable
serialisation, the blob layout and the rule for a period already written.

Must never: import an Azure SDK, read the clock, do I/O, or put anything in a
document that differs between two runs over the same data (no run id, no
wall-clock time): the same period must give byte-identical JSON.

Snapshot, schema_version 1 (ratios in [0, 1]; times UTC, ``...Z``; counts are
integers; a figure that the data cannot support is ``null``, never 1.0)::

    schema_version   1
    kind             "sla-snapshot"
    app              {name, id, environment, role}: app name (blob paths), its
                     resource id, production|staging|development, the
                     AppRoleName its requests carry in the workspace
    period           {kind: "hour"|"day", start, end, minutes}: [start, end)
    objectives       {availability, latency_p95_ms, latency_p99_ms,
                     cache_hit_ratio, bad_minute_error_ratio, min_events}
                     in force for this snapshot
    valid            true when the period had at least min_events requests
    invalid_reason   why not ("no requests", "too few requests (12 < 100)"), or null
    requests         {total, server_errors}: Requests and Http5xx over the period
    minutes          {total, traffic, idle, good, bad}: idle minutes had no request;
                     a traffic minute is bad when its 5xx share > bad_minute_error_ratio
    availability     {request_based: 1 - 5xx/requests, time_based: good/traffic minutes};
                     null when not valid
    error_rate       5xx / requests; null when not valid
    latency_ms       null when the app has no workspace; else {valid, invalid_reason,
                     count (sum of ItemCount), p50, p95, p99 (null when not valid),
                     within_p95_target, within_p99_target (requests at or under each
                     target), histogram {bucket: requests} (see latency.py)}
    cache            null when the app has no Redis; else {resource_id, hits, misses,
                     lookups, hit_ratio (null when not valid), valid, invalid_reason}
    burn_rates       {"1h", "6h", "1d", "3d"}: (1 - request availability) /
                     (1 - objective) over the window ending at period.end; null
                     when the window had no requests
    alerts           {rule: {severity: page|ticket, long_window, short_window,
                     threshold, long_burn, short_burn, state: firing|ok|no-data}}
                     for page-1h (14.4x, 1h+5m), page-6h (6x, 6h+30m),
                     ticket-1d (3x, 1d+2h), ticket-3d (1x, 3d+6h)
    error_budget     {month, days_in_month, allowed_minutes, consumed_minutes,
                     remaining_minutes, consumed_ratio, covered_minutes,
                     elapsed_minutes}: month to date through period.end;
                     allowed = (1 - objective) * days_in_month * 1440; consumed =
                     time-based bad minutes of the month's snapshots (this one
                     included); covered = minutes of the month with a snapshot;
                     elapsed = minutes from the month start to period.end

Blob layout (in the snapshot container; app = app name)::

    snapshots/<app>/<yyyy>/<mm>/<dd>/<HH>00Z.json   one per hour (period "hour")
    snapshots/<app>/<yyyy>/<mm>/<dd>/day.json       one per day (period "day")
    rollups/<app>/<yyyy>-<mm>.json                  month to date, rewritten each run
    monthly/<app>/<yyyy>-<mm>.json and .html        final report, written once

Rule for a period already written (snapshots and monthly reports are written
once): the same bytes again is "unchanged" (no write); different bytes keep
the first blob untouched and write the new content beside it as
``<path minus extension>.conflict-<first 8 hex of its sha256>.<extension>``,
reported, never overwriting. Conflict names are content-addressed, so a
retry with the same content finds its conflict blob already there.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from jobs.sla_snapshot.config import SlaSnapshotSettings, Target
from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.sli import (REPORTED_WINDOWS, CacheCounts, MinuteSeries, WindowCounts,
                                   alert_states, burn_rate, burn_windows, count_window, error_budget,
                                   invalid_reason)

SCHEMA_VERSION = 1
FLOAT_DIGITS = 9  # decimals kept in documents: stable across runs, enough for 1 - 1e-9


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Period:
    """The span one snapshot covers: [start, end), UTC."""

    kind: Literal["hour", "day"]
    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + (timedelta(hours=1) if self.kind == "hour" else timedelta(days=1))

    @property
    def minutes(self) -> int:
        return 60 if self.kind == "hour" else 1440

    @property
    def month(self) -> str:
        return self.start.strftime("%Y-%m")


def snapshot_period(now: datetime, kind: Literal["hour", "day"] = "hour",
                    delay_minutes: int = 2) -> Period:
    """The last whole hour (or UTC day) that ended at least ``delay_minutes`` before now."""
    if now.tzinfo is None:
        raise ValueError("now must carry a UTC offset")
    settled = now.astimezone(timezone.utc) - timedelta(minutes=delay_minutes)
    if kind == "hour":
        end = settled.replace(minute=0, second=0, microsecond=0)
        return Period("hour", end - timedelta(hours=1))
    end = settled.replace(hour=0, minute=0, second=0, microsecond=0)
    return Period("day", end - timedelta(days=1))


def month_start(month: str) -> datetime:
    year, number = (int(p) for p in month.split("-"))
    return datetime(year, number, 1, tzinfo=timezone.utc)


def previous_month(month: str) -> str:
    return (month_start(month) - timedelta(days=1)).strftime("%Y-%m")


def final_report_due(period: Period, final_exists: bool) -> str | None:
    """The month whose final report this run should write, or None.

    That is the month before the one ``period.end`` falls in: the run that
    snapshots a month's last hour (ending at 00:00 on the 1st) is the first of
    the new month and writes it. A later run catches up while it is missing.
    """
    month = previous_month(period.end.strftime("%Y-%m"))
    return None if final_exists else month


def objectives(settings: SlaSnapshotSettings, environment: str) -> dict[str, Any]:
    return {"availability": settings.objective(environment),
            "latency_p95_ms": float(settings.latency_p95_ms),
            "latency_p99_ms": float(settings.latency_p99_ms),
            "cache_hit_ratio": settings.cache_hit_ratio_target / 100,
            "bad_minute_error_ratio": settings.bad_minute_error_percent / 100,
            "min_events": settings.min_events}


def build_snapshot(target: Target, period: Period, series: MinuteSeries, latency: Latency | None,
                   cache: CacheCounts | None, settings: SlaSnapshotSettings,
                   month_before: WindowCounts) -> dict[str, Any]:
    """The snapshot of one app and period.

    ``series`` holds Requests/Http5xx per minute for at least the 3 days before
    ``period.end``; ``latency`` comes from the Logs query (None: no workspace;
    ``Latency()``: a workspace without requests); ``cache`` from Redis metrics
    (None: no cache); ``month_before`` sums the month's earlier snapshots
    (``rollup.counts_before``), for the error budget.
    """
    goals = objectives(settings, target.environment)
    objective, ratio, min_events = (goals["availability"], goals["bad_minute_error_ratio"],
                                    settings.min_events)
    counts = count_window(series, period.start, period.end, ratio)
    reason = invalid_reason(counts.requests, min_events)
    windows = burn_windows(series, period.end, ratio)
    month = month_before + counts
    budget = error_budget(period.month, objective, month.bad_minutes)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "sla-snapshot",
        "app": {"name": target.name, "id": target.app_id, "environment": target.environment,
                "role": target.role},
        "period": {"kind": period.kind, "start": iso(period.start), "end": iso(period.end),
                   "minutes": period.minutes},
        "objectives": goals,
        "valid": reason is None,
        "invalid_reason": reason,
        "requests": {"total": counts.requests, "server_errors": counts.server_errors},
        "minutes": minutes_json(counts),
        "availability": {
            "request_based": counts.request_availability if reason is None else None,
            "time_based": counts.time_availability if reason is None else None},
        "error_rate": counts.error_rate if reason is None else None,
        "latency_ms": latency_json(latency, min_events),
        "cache": cache_json(target.redis_id, cache, min_events),
        "burn_rates": {w: burn_rate(windows[w], objective) for w in REPORTED_WINDOWS},
        "alerts": {s.rule.name: {"severity": s.rule.severity, "long_window": s.rule.long,
                                 "short_window": s.rule.short, "threshold": s.rule.threshold,
                                 "long_burn": s.long_burn, "short_burn": s.short_burn,
                                 "state": s.state}
                   for s in alert_states(windows, objective, min_events)},
        "error_budget": {
            "month": budget.month, "days_in_month": budget.days_in_month,
            "allowed_minutes": budget.allowed_minutes,
            "consumed_minutes": budget.consumed_minutes,
            "remaining_minutes": budget.remaining_minutes,
            "consumed_ratio": budget.consumed_ratio,
            "covered_minutes": month.minutes,
            "elapsed_minutes": int((period.end - month_start(period.month)).total_seconds() // 60)},
    }


def minutes_json(counts: WindowCounts) -> dict[str, int]:
    return {"total": counts.minutes, "traffic": counts.traffic_minutes,
            "idle": counts.idle_minutes, "good": counts.good_minutes, "bad": counts.bad_minutes}


def latency_json(latency: Latency | None, min_events: int) -> dict[str, Any] | None:
    if latency is None:
        return None
    reason = invalid_reason(latency.count, min_events)
    return {"valid": reason is None, "invalid_reason": reason, "count": latency.count,
            "p50": latency.p50 if reason is None else None,
            "p95": latency.p95 if reason is None else None,
            "p99": latency.p99 if reason is None else None,
            "within_p95_target": latency.within_p95_target,
            "within_p99_target": latency.within_p99_target,
            "histogram": {str(b): n for b, n in sorted(latency.histogram.items())}}


def cache_json(resource_id: str | None, cache: CacheCounts | None,
               min_events: int) -> dict[str, Any] | None:
    if resource_id is None and cache is None:
        return None
    cache = cache or CacheCounts(0, 0)
    reason = invalid_reason(cache.lookups, min_events, "cache lookups")
    return {"resource_id": resource_id, "hits": cache.hits, "misses": cache.misses,
            "lookups": cache.lookups, "hit_ratio": cache.hit_ratio if reason is None else None,
            "valid": reason is None, "invalid_reason": reason}


# --- serialisation -------------------------------------------------------------------------

def _stable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be stored in a snapshot")
        return round(value, FLOAT_DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be stored in a snapshot")


def canonical_json(document: dict[str, Any]) -> bytes:
    """The document as UTF-8 JSON: sorted keys, floats rounded to 9 decimals,
    two-space indent, one trailing newline. Same document, same bytes."""
    text = json.dumps(_stable(document), sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False)
    return (text + "\n").encode("utf-8")


def sha8(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


# --- blob layout and the write rule ---------------------------------------------------------

def snapshot_path(app: str, period: Period) -> str:
    day = period.start.strftime("%Y/%m/%d")
    leaf = period.start.strftime("%H00Z") if period.kind == "hour" else "day"
    return f"snapshots/{app}/{day}/{leaf}.json"


def rollup_path(app: str, month: str) -> str:
    return f"rollups/{app}/{month}.json"


def monthly_paths(app: str, month: str) -> tuple[str, str]:
    """(JSON, HTML) of the final report of a month."""
    return f"monthly/{app}/{month}.json", f"monthly/{app}/{month}.html"


def conflict_path(path: str, data: bytes) -> str:
    stem, dot, extension = path.rpartition(".")
    return f"{stem}.conflict-{sha8(data)}.{extension}" if dot else f"{path}.conflict-{sha8(data)}"


def content_type(path: str) -> str:
    return "text/html; charset=utf-8" if path.endswith(".html") else "application/json; charset=utf-8"


@dataclass(frozen=True)
class BlobWrite:
    """What to do with one blob. ``mode``: create (only if absent), replace (the
    observed version only), unchanged (nothing to write), conflict (create
    ``path``, the conflict copy; ``kept`` is the blob left as it was)."""

    path: str
    data: bytes
    mode: Literal["create", "replace", "unchanged", "conflict"]
    reason: str
    kept: str | None = None


def plan_write_once(path: str, data: bytes, existing: bytes | None) -> BlobWrite:
    """For blobs written once per period (snapshots, monthly reports)."""
    if existing is None:
        return BlobWrite(path, data, "create", f"write {path}")
    if existing == data:
        return BlobWrite(path, data, "unchanged", f"{path} already holds this content")
    copy = conflict_path(path, data)
    return BlobWrite(copy, data, "conflict",
                     f"{path} already holds a different version (sha {sha8(existing)}); kept it "
                     f"and wrote this one (sha {sha8(data)}) as {copy}", kept=path)


def plan_rewrite(path: str, data: bytes, existing: bytes | None) -> BlobWrite:
    """For the month-to-date rollup, which each run rewrites."""
    if existing is None:
        return BlobWrite(path, data, "create", f"write {path}")
    if existing == data:
        return BlobWrite(path, data, "unchanged", f"{path} is up to date")
    return BlobWrite(path, data, "replace", f"update {path}")
