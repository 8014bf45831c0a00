"""What the observe step of the sla-snapshot job asks Azure Monitor for, as
data: metric names and time ranges, batches for the metrics batch API, the
one Logs query per workspace, and how its rows become ``Latency``.

Must never: import an Azure SDK, read the clock or do I/O. It builds
requests; azure_io sends them.

Per run and per app the observe step provides:

- ``Requests`` and ``Http5xx`` of the app (namespace ``Microsoft.Web/sites``),
  aggregation Total, over ``app_metrics_timespan(period)``: the three days
  before the period end (the longest burn-rate window), through the batch API
  (``metric_batches``: at most 50 resources of one subscription and type per
  call; one region per endpoint), in two reads (``app_metric_fetches``): per
  minute (PT1M) over the span that needs minutes, the period itself (its
  minute states: time-based availability, bad minutes) and the short burn
  windows (5 min to 6 h); per hour (PT1H) before that, for the rest of the 1 d
  and 3 d windows, which need request totals only. The period ends on a whole
  hour, so both spans are whole hours and every window edge falls on an edge
  of the grain it is read at: the totals are those of the minutes (sli.py says
  when a raise of requests to the 5xx count could differ).
- ``allcachehits`` and ``allcachemisses`` of its Redis cache (namespace
  ``Microsoft.Cache/redis``), aggregation Total, over the period itself.
- from one ``latency_query`` per workspace (all the workspace's apps at once),
  the rows parsed by ``parse_latency_rows``: one ``Latency`` per role name.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from jobs.sla_snapshot.latency import BUCKETS_PER_DECADE, Latency

APP_NAMESPACE = "Microsoft.Web/sites"
APP_METRICS = ("Requests", "Http5xx")
CACHE_NAMESPACE = "Microsoft.Cache/redis"
CACHE_METRICS = ("allcachehits", "allcachemisses")
BATCH_SIZE = 50  # resources per metrics batch call
LOOKBACK = timedelta(days=3)  # longest burn-rate window
MINUTE_SPAN = timedelta(hours=6)  # longest burn window read per minute: the short ones, 5 min to 6 h
HOUR = timedelta(hours=1)


def app_metrics_timespan(period_end: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the app metrics one run needs (the longest burn window)."""
    return period_end - LOOKBACK, period_end


def app_metric_fetches(period_start: datetime, period_end: datetime
                       ) -> list[tuple[datetime, datetime, int]]:
    """The reads of one run's app metrics: (start, end, grain in minutes), oldest first:
    hourly totals from the lookback start up to the minute span, then per minute over
    the minute span: the period itself or the last ``MINUTE_SPAN``, whichever is longer.
    Both spans are whole hours (the period ends on one)."""
    if period_end.timestamp() % 3600 or period_start.timestamp() % 60:
        raise ValueError(f"a period ends on a whole hour, not at {period_end.isoformat()}")
    start, end = app_metrics_timespan(period_end)
    minutes_from = min(period_start, period_end - MINUTE_SPAN)
    minutes_from -= timedelta(seconds=minutes_from.timestamp() % 3600)  # back to a whole hour
    minutes_from = max(minutes_from, start)
    fetches = [(start, minutes_from, 60)] if start < minutes_from else []
    return fetches + [(minutes_from, end, 1)]


def metric_batches(resource_ids: Iterable[str], size: int = BATCH_SIZE) -> list[list[str]]:
    """Resource ids grouped for the batch API: one subscription and resource type
    per batch, at most ``size`` each, in a stable order."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid in sorted({r.lower() for r in resource_ids}):
        parts = rid.split("/")
        if len(parts) < 9 or parts[1] != "subscriptions":
            raise ValueError(f"not a resource id: {rid}")
        groups[(parts[2], f"{parts[6]}/{parts[7]}")].append(rid)
    return [ids[i:i + size] for key in sorted(groups) for ids in [groups[key]]
            for i in range(0, len(ids), size)]


def _kql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kql_datetime(moment: datetime) -> str:
    return "datetime(" + moment.strftime("%Y-%m-%dT%H:%M:%SZ") + ")"


def latency_query(roles: Iterable[str], start: datetime, end: datetime,
                  p95_target_ms: float, p99_target_ms: float) -> str:
    """The KQL for one workspace and period: per role, percentiles weighted by
    ItemCount (sampling), within-target counts and the duration histogram."""
    role_list = ", ".join(_kql_string(r.lower()) for r in sorted({r.lower() for r in roles}))
    return f"""let start = {_kql_datetime(start)};
let finish = {_kql_datetime(end)};
let roles = dynamic([{role_list}]);
let requests = AppRequests
| where TimeGenerated >= start and TimeGenerated < finish
| extend Role = tolower(AppRoleName)
| where Role in (roles);
union
(requests
 | summarize Count = sum(ItemCount),
             P50 = percentilew(DurationMs, ItemCount, 50),
             P95 = percentilew(DurationMs, ItemCount, 95),
             P99 = percentilew(DurationMs, ItemCount, 99),
             WithinP95 = sumif(ItemCount, DurationMs <= {float(p95_target_ms)!r}),
             WithinP99 = sumif(ItemCount, DurationMs <= {float(p99_target_ms)!r}) by Role
 | extend Kind = "summary"),
(requests
 | extend Bucket = toint(floor({BUCKETS_PER_DECADE} * log10(max_of(DurationMs, 1.0))))
 | summarize Count = sum(ItemCount) by Role, Bucket
 | extend Kind = "bucket")
"""


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    return float(value)


def parse_latency_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Latency]:
    """Rows of ``latency_query`` (column name -> value) -> Latency by lower-case role.
    A role without rows had no requests: it is absent (the caller gives Latency())."""
    summaries: dict[str, Mapping[str, Any]] = {}
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rows:
        role = str(row.get("Role") or "").lower()
        if row.get("Kind") == "summary":
            summaries[role] = row
        elif row.get("Kind") == "bucket":
            bucket, count = _number(row, "Bucket"), _number(row, "Count")
            if bucket is not None and count:
                histograms[role][int(bucket)] = histograms[role].get(int(bucket), 0) + int(count)
    out = {}
    for role, row in summaries.items():
        out[role] = Latency(count=int(_number(row, "Count") or 0), p50=_number(row, "P50"),
                            p95=_number(row, "P95"), p99=_number(row, "P99"),
                            within_p95_target=int(_number(row, "WithinP95") or 0),
                            within_p99_target=int(_number(row, "WithinP99") or 0),
                            histogram=dict(sorted(histograms.get(role, {}).items())))
    return out

