"""Azure Monitor: the metrics batch API and the Logs query API, answered from generated telemetry.

Operations (route -> operation name, for faults and the request log)
  POST /subscriptions/{subscriptionId}/metrics:getBatch   Microsoft.Insights/metrics/getBatch
       (azure-monitor-querymetrics MetricsClient.query_resources; api-version 2024-02-01)
  POST /v1/workspaces/{workspaceId}/query                 Microsoft.OperationalInsights/workspaces/query/read
       (azure-monitor-query LogsQueryClient.query_workspace; no api-version)

Time base: the real clock (UTC). Generated series exist for the last `history_days` days up to
the last complete minute, so the demo works on any date.

World section "metrics" (an object):
  {"seed": 7, "history_days": 35,
   "resources": [                     # a list, so world files can add resources
     {"id": "/subscriptions/.../resourceGroups/rg/providers/Microsoft.Web/sites/app-x",
      "region": "westeurope",
      "generator": {...},             # optional, see below
      "points": {"Requests": [["2025-03-14T10:00:00Z", 12], ["now-5m", 3]]}}   # optional
   ]}
  A minute series per metric comes from the generator, and explicit `points` replace the
  generated value at their minute (a resource with points only has data at those minutes).
  Times are ISO datetimes, "now-90m" / "now-2h" / "now-3d", or {"days_ago": 2, "at": "14:10"}.

  Generator "app_service" (namespace Microsoft.Web/sites; metrics Requests, Http2xx, Http4xx,
  Http5xx (Count, primary aggregation Total) and HttpResponseTime (Seconds, Average)):
    {"kind": "app_service", "requests_per_minute": 220,   # mean at a pattern value of 1
     "pattern": "business" | "dev" | "flat" | [24 hourly multipliers, UTC],
     "weekend_factor": 1.0, "noise": 0.15,               # relative gaussian noise per minute
     "error_rate": 0.001, "client_error_rate": 0.01,     # share of requests answered 5xx / 4xx
     "latency_ms": 150, "latency_sigma": 0.6,            # request durations are lognormal with this
                                                         #   median and sigma (also the Logs telemetry)
     "outages": [{"start": {"days_ago": 2, "at": "14:10"}, "minutes": 45,
                  "error_rate": 0.55, "latency_ms": 2600, "traffic": 1.0}]}   # any key overrides
    Per minute: Requests = round(mean x (1 + noise x g)), 5xx and 4xx by the rates (stochastic
    rounding), Http2xx = the rest, HttpResponseTime = the lognormal's mean in seconds (absent in
    minutes without requests). Patterns: "business" peaks 08-18 UTC with a quiet night, "dev" is
    zero from 20:00 to 06:59 UTC (no traffic at night), "flat" is 1 all day.
  Generator "redis" (namespace Microsoft.Cache/redis; allcachehits, allcachemisses: Count, Total):
    {"kind": "redis", "ops_per_minute": 150, "hit_ratio": 0.9, "pattern": ..., "weekend_factor": 1,
     "noise": 0.1, "outages": [{"start": ..., "minutes": 30, "hit_ratio": 0.2}]}

getBatch: body {"resourceids": [...]} (1-50, one subscription, one resource type, one region),
query metricnamespace, metricnames, starttime, endtime (default: the last hour), interval
(PT1M default, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D, FULL), aggregation (comma separated;
default the metric's primary one), filter/top/orderby/rollupby accepted but ignored (no
dimensions are modelled). Buckets are aligned to the interval (from the epoch, so P1D is a UTC
day) starting at the bucket holding starttime, and end before endtime; each aggregates the minutes
of its bucket: total = sum, average = mean, minimum, maximum, count = minutes with data. A bucket
without data carries only its timeStamp, as Azure's do. Resources without telemetry answer
timeStamp-only buckets. Errors: Azure's {"error": {additionalInfo, code, message}} with
x-ms-error-code (MetricBatchExample2.json); messages marked "unverified" are not from public sources.

World section "logs" (an object):
  {"workspaces": [
     {"id": "00000000-0000-0000-0000-00000000a001", "name": "log-shopfront-dev",
      "apps": [{"app_role_name": "app-shopfront-dev",
                "resource_id": "/subscriptions/.../sites/app-shopfront-dev",
                "sampling_percentage": 100,     # stored AppRequests rows carry ItemCount = 100 / this
                "generator": {...}}]}]}         # optional: an app_service generator, used when the
                                                #   metrics section has none for resource_id
  An app's request telemetry is its site's traffic (the Requests series) with lognormal durations
  (median latency_ms, or the outage's, sigma latency_sigma): logs and metrics agree.

Recognised log queries (no KQL engine: the query is recognised by a marker comment
`// sandbox:<name>`, or by its shape):
  latency-percentiles  (marker, or any query naming AppRequests and percentiles/percentilesw)
      // sandbox:latency-percentiles
      AppRequests
      | summarize RequestCount = sum(ItemCount), percentiles(DurationMs, 50, 95, 99)
          by AppRoleName, bin(TimeGenerated, 1h)
    Answers one row per group with requests in the query's timespan. Group columns, in the
    order of the `by` clause: AppRoleName (string), _ResourceId (string, lower case) and
    bin(TimeGenerated, <n>m|h|d) -> TimeGenerated (datetime, the bin start); no `by` = one row.
    Then the aggregates in the order written: `X = sum(ItemCount)` -> X (long; sum_ItemCount
    unaliased) = the requests served; `X = count()` -> X (long; count_ unaliased) = the *stored*
    (sampled) rows, as Kusto would count them; percentiles(DurationMs, p...) or
    percentilesw(DurationMs, ItemCount, p...) -> percentile_DurationMs_<p> (real, ms), the exact
    percentiles of the duration distribution (no sampling error). Other `where` clauses are ignored.
  latency-summary  (marker, or a query naming AppRequests with `Kind = "summary"` and
      `Kind = "bucket"`: the sla-snapshot job's query, jobs/sla_snapshot/queries.py)
      let start = datetime(...); let finish = datetime(...); let roles = dynamic(["app-a", ...]);
      let requests = AppRequests | where ... | extend Role = tolower(AppRoleName) | where Role in (roles);
      union (requests | summarize Count = sum(ItemCount), P50 = percentilew(DurationMs, ItemCount, 50), ...,
                        WithinP95 = sumif(ItemCount, DurationMs <= 500.0), ... by Role
             | extend Kind = "summary"),
            (requests | extend Bucket = toint(floor(20 * log10(max_of(DurationMs, 1.0))))
             | summarize Count = sum(ItemCount) by Role, Bucket | extend Kind = "bucket")
    Read from the text: start/finish (narrowing the timespan), the roles list (lower-case role
    names; absent = all apps), the column names (Role, Bucket, Kind, each alias), the percentiles
    (percentile/percentilew), the sumif thresholds and the buckets per decade. Answers the union
    as Kusto would: columns Role (string), the aggregates in the order written (Count long,
    P.. real, Within.. long), Kind (string), Bucket (int); per role with requests one "summary"
    row (Bucket null) and one "bucket" row per non-empty bucket (only Role, Count, Kind, Bucket
    set). Bucket b counts durations in [10^(b/n), 10^((b+1)/n)) ms (under 1 ms in bucket 0); the
    bucket counts add up to Count exactly; WithinX = requests with DurationMs <= the threshold.
  Anything else -> 400 {"error": {"message": "The request had some invalid properties",
  "code": "BadArgumentError", "innererror": {"code": "SemanticError", ...}}}, the Logs API's shape.
  An unknown workspace -> 404 PathNotFoundError. timespan: "PT1H", "PT3600.0S", "P1D",
  "<start>/<end>", "<start>/<duration>", "<duration>/<end>"; absent = all telemetry. Additional
  workspaces (body "workspaces") are ignored.
"""
from __future__ import annotations

import json
import math
import random
import re
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sandbox.server import ApiError, Request, Response, route
from sandbox.world import World

MAX_RESOURCES = 50
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
GRAINS = {1: "PT1M", 5: "PT5M", 15: "PT15M", 30: "PT30M", 60: "PT1H", 360: "PT6H", 720: "PT12H", 1440: "P1D"}
AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")

# namespace (lower) -> metric (lower) -> definition; names, units and primary aggregations as
# Azure Monitor's supported-metrics tables list them.
CATALOG: dict[str, dict[str, dict[str, str]]] = {
    "microsoft.web/sites": {
        "requests": {"name": "Requests", "localized": "Requests", "unit": "Count", "primary": "total",
                     "description": "The total number of requests regardless of their resulting HTTP status code."},
        "http2xx": {"name": "Http2xx", "localized": "Http 2xx", "unit": "Count", "primary": "total",
                    "description": "The count of requests resulting in an HTTP status code >= 200 but < 300."},
        "http4xx": {"name": "Http4xx", "localized": "Http 4xx", "unit": "Count", "primary": "total",
                    "description": "The count of requests resulting in an HTTP status code >= 400 but < 500."},
        "http5xx": {"name": "Http5xx", "localized": "Http Server Errors", "unit": "Count", "primary": "total",
                    "description": "The count of requests resulting in an HTTP status code >= 500 but < 600."},
        "httpresponsetime": {"name": "HttpResponseTime", "localized": "Response Time", "unit": "Seconds",
                             "primary": "average",
                             "description": "The time taken for the app to serve requests, in seconds."},
    },
    "microsoft.cache/redis": {
        "allcachehits": {"name": "allcachehits", "localized": "Cache Hits (Instance Based)", "unit": "Count",
                         "primary": "total", "description": "The number of successful key lookups."},
        "allcachemisses": {"name": "allcachemisses", "localized": "Cache Misses (Instance Based)",
                           "unit": "Count", "primary": "total",
                           "description": "The number of failed key lookups."},
    },
}
PATTERNS = {
    "flat": [1.0] * 24,
    "business": [0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.75, 0.95, 1.0, 1.0, 1.0,
                 0.95, 1.0, 1.0, 1.0, 0.95, 0.9, 0.75, 0.6, 0.5, 0.42, 0.35, 0.3],
    "dev": [0.0] * 7 + [0.3, 0.9, 1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0, 0.9, 0.6, 0.3, 0.1] + [0.0] * 4,
}


# -- errors in each API's own shape ----------------------------------------------------------------
class _ShapedError(ApiError):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status, body["error"]["code"], str(body["error"].get("message")), headers)
        self.body = body

    def response(self) -> Response:
        return Response(self.status, self.body, dict(self.headers))


def _metrics_error(message: str, exception_type: str = "RPRequestFormatException") -> _ShapedError:
    # Shape: specification/monitor/data-plane/Microsoft.Insights/stable/2024-02-01/examples/
    # MetricBatchExample2.json ("default" response).
    return _ShapedError(400, {"error": {
        "additionalInfo": [{"type": "string", "info": f"TraceId={uuid.uuid4().hex}"},
                           {"type": "string",
                            "info": f"ExceptionType=Microsoft.Online.Metrics.MetricsMP.Utilities.{exception_type}"}],
        "code": "BadRequest", "message": message}}, {"x-ms-error-code": "BadRequest"})


def _logs_error(inner_code: str, inner_message: str) -> _ShapedError:
    # The Logs API's error, as it answers a query it cannot run (seen in Azure/azure-cli-extensions#3002
    # and MicrosoftDocs/feedback#1792).
    return _ShapedError(400, {"error": {
        "message": "The request had some invalid properties", "code": "BadArgumentError",
        "correlationId": str(uuid.uuid4()),
        "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
                       "innererror": {"code": inner_code, "message": inner_message}}}})


# -- time ------------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(timezone.utc)


def _minute(dt: datetime) -> int:
    return int((dt - EPOCH).total_seconds() // 60)


def _at_minute(m: int) -> datetime:
    return EPOCH + timedelta(minutes=m)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: str) -> datetime:
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


def parse_duration(value: str) -> timedelta:
    """An ISO 8601 duration without years or months (PT1M, PT3600.0S, P1D, P1DT2H)."""
    m = _DURATION.match(value.strip())
    if not m or value.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value}")
    weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or mins:
        text += "T" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins else "")
    return text if text != "P" else "PT0M"


_RELATIVE = re.compile(r"^now\s*(?:-\s*(\d+(?:\.\d+)?)\s*([mhd]))?$", re.IGNORECASE)


def resolve_time(expr: Any, now: datetime) -> datetime:
    """A time expression: ISO datetime, "now-90m" / "now-2h" / "now-3d", or {"days_ago", "at"}."""
    if isinstance(expr, dict):
        hour, minute = (int(x) for x in str(expr.get("at", "00:00")).split(":"))
        day = (now - timedelta(days=int(expr.get("days_ago", 0)))).date()
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)
    m = _RELATIVE.match(str(expr).strip())
    if m:
        if not m.group(1):
            return now
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[m.group(2).lower()]: float(m.group(1))})
    return parse_datetime(str(expr))


# -- the telemetry generator ------------------------------------------------------------------
def _pattern(spec: Any) -> list[float]:
    if isinstance(spec, list) and len(spec) == 24:
        return [float(x) for x in spec]
    return PATTERNS.get(str(spec or "flat"), PATTERNS["flat"])


def _stochastic_round(x: float, rng: random.Random) -> int:
    whole = int(x)
    return whole + (1 if rng.random() < x - whole else 0)


@lru_cache(maxsize=512)
def _day_series(generator: str, windows: tuple[tuple[int, int, str], ...], seed: str, rid: str,
                day: int) -> dict[str, tuple]:
    """One UTC day (days since the epoch) of minute values for a generator, deterministic in its
    inputs. `windows` are outages as (first minute, end minute, overrides as JSON)."""
    gen = json.loads(generator)
    rng = random.Random(f"{seed}|{rid}|{day}")
    pattern = _pattern(gen.get("pattern"))
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    scale = float(gen.get("weekend_factor", 1.0)) if weekend else 1.0
    noise = float(gen.get("noise", 0.1))
    active = [(a, b, json.loads(o)) for a, b, o in windows if a < (day + 1) * 1440 and b > day * 1440]
    kind = gen.get("kind", "app_service")
    out: dict[str, list] = {}
    for m in range(1440):
        minute = day * 1440 + m
        params = dict(gen)
        for a, b, overrides in active:
            if a <= minute < b:
                params.update(overrides)
        g = max(-3.0, min(3.0, rng.gauss(0, 1)))
        base_key = "requests_per_minute" if kind == "app_service" else "ops_per_minute"
        mean = float(params.get(base_key, 0)) * pattern[m // 60] * scale * float(params.get("traffic", 1.0))
        count = 0 if mean <= 0 else max(0, round(mean * (1 + noise * g)))
        if kind == "redis":
            hits = min(count, _stochastic_round(count * float(params.get("hit_ratio", 0.9)), rng))
            out.setdefault("allcachehits", []).append(hits)
            out.setdefault("allcachemisses", []).append(count - hits)
            continue
        errors = min(count, _stochastic_round(count * float(params.get("error_rate", 0.0)), rng))
        client = min(count - errors, _stochastic_round(count * float(params.get("client_error_rate", 0.0)), rng))
        median_ms = float(params.get("latency_ms", 200))
        sigma = float(params.get("latency_sigma", 0.6))
        g2 = max(-3.0, min(3.0, rng.gauss(0, 1)))
        latency = (median_ms * math.exp(sigma * sigma / 2) / 1000 * (1 + 0.08 * g2)) if count else None
        out.setdefault("requests", []).append(count)
        out.setdefault("http5xx", []).append(errors)
        out.setdefault("http4xx", []).append(client)
        out.setdefault("http2xx", []).append(count - errors - client)
        out.setdefault("httpresponsetime", []).append(round(latency, 6) if latency is not None else None)
        out.setdefault("_median_ms", []).append(median_ms)
    return {k: tuple(v) for k, v in out.items()}


class _Series:
    """The minute series of one resource (generator and explicit points), within the data window."""

    def __init__(self, section: dict[str, Any], resource: dict[str, Any] | None,
                 generator: dict[str, Any] | None, now: datetime):
        self.rid = (resource or {}).get("id", "").lower()
        self.seed = str(section.get("seed", 0))
        self.generator = generator
        self.last = _minute(now)  # the current minute is not complete: data ends before it
        self.first = self.last - int(section.get("history_days", 35)) * 1440
        self.windows: tuple = ()
        self.gen_key = ""
        if generator:
            spec = {k: v for k, v in generator.items() if k != "outages"}
            self.gen_key = json.dumps(spec, sort_keys=True)
            windows = []
            for outage in generator.get("outages", []):
                start = _minute(resolve_time(outage["start"], now))
                overrides = {k: v for k, v in outage.items() if k not in ("start", "minutes")}
                windows.append((start, start + int(outage.get("minutes", 1)), json.dumps(overrides, sort_keys=True)))
            self.windows = tuple(windows)
        self.points: dict[str, dict[int, float]] = {}
        for name, points in ((resource or {}).get("points") or {}).items():
            self.points[name.lower()] = {_minute(resolve_time(t, now)): v for t, v in points}

    def values(self, metric: str, start: int, end: int) -> list[Any]:
        """Values of minutes [start, end) (None = no data)."""
        metric = metric.lower()
        out: list[Any] = []
        m = start
        while m < end:
            day_end = min(end, (m // 1440 + 1) * 1440)
            lo, hi = max(m, self.first), min(day_end, self.last)
            if self.generator and lo < hi:
                day = _day_series(self.gen_key, self.windows, self.seed, self.rid, m // 1440)
                series = day.get(metric)
                if series is None:
                    out.extend([None] * (day_end - m))
                else:
                    out.extend([None] * (lo - m))
                    out.extend(series[lo % 1440:(hi - 1) % 1440 + 1])
                    out.extend([None] * (day_end - hi))
            else:
                out.extend([None] * (day_end - m))
            m = day_end
        explicit = self.points.get(metric)
        if explicit:
            for minute, value in explicit.items():
                if start <= minute < end:
                    out[minute - start] = value
        return out


def _metric_resources(world: World) -> dict[str, dict[str, Any]]:
    return {r["id"].lower(): r for r in world.section("metrics", {}).get("resources", [])}


def _series_for(world: World, resource_id: str, now: datetime, fallback: dict[str, Any] | None = None) -> _Series:
    section = world.section("metrics", {})
    resource = _metric_resources(world).get(resource_id.lower())
    generator = (resource or {}).get("generator") or fallback
    return _Series(section, resource or {"id": resource_id}, generator, now)


# -- metrics:getBatch ------------------------------------------------------------------------------
def _namespace_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    try:
        i = [p.lower() for p in parts].index("providers")
        return f"{parts[i + 1]}/{parts[i + 2]}".lower()
    except (ValueError, IndexError):
        raise _metrics_error(f"Invalid resource id '{resource_id}'.") from None  # unverified


# Shapes: specification/monitor/data-plane/Microsoft.Insights/stable/2024-02-01/examples/
# MetricBatchExample.json and MetricBatchExample2.json.
@route("POST", "/subscriptions/{sub}/metrics:getBatch", "Microsoft.Insights/metrics/getBatch")
def metrics_batch(req: Request, world: World, sub: str):
    q = {k.lower(): v for k, v in req.query.items()}
    if "timespan" in q:
        raise _metrics_error(f"Detected invalid time range parameters for API version {q.get('api-version')}. "
                             f"Please use only starttime and endtime to specify a time range.")
    body = req.json() or {}
    resource_ids = {k.lower(): v for k, v in body.items()}.get("resourceids") if isinstance(body, dict) else None
    if not resource_ids:
        raise _metrics_error("The request body must contain a non-empty list of resourceids.")  # unverified
    if len(resource_ids) > MAX_RESOURCES:
        raise _metrics_error(f"The number of resource ids in the request ({len(resource_ids)}) exceeds the "
                             f"maximum of {MAX_RESOURCES}.")  # unverified wording; the limit is documented
    namespace = q.get("metricnamespace", "")
    if not namespace:
        raise _metrics_error("The metricnamespace query parameter is required.")  # unverified
    catalog = CATALOG.get(namespace.lower())
    names = [n.replace("%2", ",").strip() for n in q.get("metricnames", "").split(",") if n.strip()]
    if not names:
        raise _metrics_error("The metricnames query parameter is required.")  # unverified
    provider, _, rtype = namespace.partition("/")
    for name in names:
        if catalog is None or name.lower() not in catalog:
            valid = ", ".join(d["name"] for d in (catalog or {}).values())
            raise _metrics_error(f"Failed to find metric configuration for provider: {provider}, resource Type: "
                                 f"{rtype}, metric: {name}, Valid metrics: {valid}")
    aggregations = [a.strip().lower() for a in q.get("aggregation", "").split(",") if a.strip()]
    for a in aggregations:
        if a not in AGGREGATIONS:
            raise _metrics_error(f"Invalid aggregation '{a}'. Valid aggregations: {', '.join(AGGREGATIONS)}.")

    now = _now()
    try:
        end = parse_datetime(q["endtime"]) if q.get("endtime") else now
        start = parse_datetime(q["starttime"]) if q.get("starttime") else None
    except ValueError:
        raise _metrics_error("Invalid starttime or endtime: use the format yyyy-MM-ddTHH:mm:ss.fffZ.") from None
    if start is None:
        if q.get("endtime"):
            raise _metrics_error("starttime is required when endtime is given.")  # unverified
        start = end - timedelta(hours=1)
    if end <= start:
        raise _metrics_error("endtime must be after starttime.")  # unverified
    start_min, end_min = _minute(start), _minute(end)
    interval = q.get("interval") or "PT1M"
    if interval.upper() == "FULL":
        grain = None
        interval_out = format_duration(max(1, end_min - start_min))
    else:
        try:
            grain_td = parse_duration(interval)
        except ValueError:
            grain_td = None
        grain = int(grain_td.total_seconds() // 60) if grain_td else None
        if grain not in GRAINS or grain_td.total_seconds() % 60:
            raise _metrics_error(f"Invalid interval '{interval}'. Supported: {', '.join(GRAINS.values())}, FULL.")
        interval_out = GRAINS[grain]

    resources = []
    for rid in resource_ids:
        parts = rid.strip("/").split("/")
        if len(parts) < 2 or parts[0].lower() != "subscriptions" or parts[1].lower() != sub.lower():
            raise _metrics_error(f"Resource '{rid}' is not in subscription '{sub}': all resources of a batch must "
                                 f"be in the subscription of the request.")  # unverified
        if _namespace_of(rid) != namespace.lower():
            raise _metrics_error(f"Resource '{rid}' is not of type '{namespace}': all resources of a batch must be "
                                 f"of the metric namespace's type.")  # unverified
        resources.append(rid)
    with world.lock:
        known = _metric_resources(world)
        regions = {known.get(r.lower(), {}).get("region", "westeurope").lower() for r in resources}
        if len(regions) > 1:
            raise _metrics_error(f"All resources of a batch must be in one region; found {', '.join(sorted(regions))}.")
        series = {r: _series_for(world, r, now) for r in resources}

    if grain is None:
        buckets = [(start_min, max(end_min, start_min + 1))]
    else:
        first = start_min // grain * grain
        buckets = [(b, min(b + grain, end_min)) for b in range(first, end_min, grain)] or [(first, first + grain)]
    span_start, span_end = buckets[0][0], buckets[-1][1]

    stamps = [_iso(_at_minute(b_start)) for b_start, _ in buckets]
    values = []
    for rid in resources:
        metrics = []
        for name in names:
            definition = catalog[name.lower()]
            wanted = aggregations or [definition["primary"]]
            minute_values = series[rid].values(definition["name"], span_start, span_end)
            data = []
            for (b_start, b_end), stamp in zip(buckets, stamps):
                present = [v for v in minute_values[b_start - span_start:b_end - span_start] if v is not None]
                point: dict[str, Any] = {"timeStamp": stamp}
                if present:
                    for a in wanted:
                        point[a] = _aggregate(a, present)
                data.append(point)
            metrics.append({
                "id": f"{rid}/providers/Microsoft.Insights/metrics/{definition['name']}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": definition["name"], "localizedValue": definition["localized"]},
                "displayDescription": definition["description"],
                "unit": definition["unit"],
                "timeseries": [{"metadatavalues": [], "data": data}],
                "errorCode": "Success"})
        values.append({"starttime": q.get("starttime") or _iso(start), "endtime": q.get("endtime") or _iso(end),
                       "interval": interval_out, "value": metrics, "namespace": namespace.lower(),
                       "resourceregion": known.get(rid.lower(), {}).get("region", "westeurope"),
                       "resourceid": rid})
    return {"values": values}


def _aggregate(kind: str, values: list[float]) -> float:
    if kind == "total":
        return sum(values)
    if kind == "average":
        return sum(values) / len(values)
    if kind == "minimum":
        return min(values)
    if kind == "maximum":
        return max(values)
    return float(len(values))


# -- Logs query ------------------------------------------------------------------------------------
def _workspace(world: World, workspace_id: str) -> dict[str, Any]:
    for ws in world.section("logs", {}).get("workspaces", []):
        if ws["id"].lower() == workspace_id.lower():
            return ws
    raise _ShapedError(404, {"error": {"message": "The requested path does not exist",
                                       "code": "PathNotFoundError", "correlationId": str(uuid.uuid4())}})


def _timespan(value: Any, now: datetime, history_start: datetime) -> tuple[datetime, datetime]:
    if not value:
        return history_start, now
    text = str(value).strip()
    try:
        if "/" in text:
            left, right = (p.strip() for p in text.split("/", 1))
            if left.upper().startswith("P"):
                end = parse_datetime(right)
                return end - parse_duration(left), end
            start = parse_datetime(left)
            return start, (start + parse_duration(right)) if right.upper().startswith("P") else parse_datetime(right)
        return now - parse_duration(text), now
    except ValueError:
        raise _ShapedError(400, {"error": {"message": f"The timespan '{value}' is invalid",
                                           "code": "BadArgumentError", "correlationId": str(uuid.uuid4())}}) from None


_MARKER = re.compile(r"//\s*sandbox:([\w-]+)")
_KUSTO_SPAN = re.compile(r"^(\d+)\s*(m|h|d)$", re.IGNORECASE)


# Shapes: specification/monitor/data-plane/Microsoft.OperationalInsights/stable/v1/examples/la-post-example.json
@route("POST", "/v1/workspaces/{workspace}/query", "Microsoft.OperationalInsights/workspaces/query/read")
def logs_query(req: Request, world: World, workspace: str):
    body = {k.lower(): v for k, v in (req.json() or {}).items()}
    query = str(body.get("query") or "")
    with world.lock:
        ws = _workspace(world, workspace)
        marker = _MARKER.search(query)
        name = marker.group(1).lower() if marker else None
        lowered = query.lower()
        if name is None and "apprequests" in lowered:
            if re.search(r'kind\s*=\s*"summary"', lowered) and re.search(r'kind\s*=\s*"bucket"', lowered):
                name = "latency-summary"
            elif "percentile" in lowered:
                name = "latency-percentiles"
        if name == "latency-percentiles":
            table = _latency_percentiles(world, ws, query, body.get("timespan"))
        elif name == "latency-summary":
            table = _latency_summary(world, ws, query, body.get("timespan"))
        elif name:
            raise _logs_error("SEM0100", f"The sandbox does not answer the query 'sandbox:{name}'. Recognised: "
                                         f"latency-percentiles, latency-summary (sandbox/apis/monitor.py).")
        else:
            raise _logs_error("SEM0100", "The sandbox does not recognise this query; it answers only the "
                                         "queries documented in sandbox/apis/monitor.py.")
    return {"tables": [table]}


def _window(world: World, timespan: Any, now: datetime) -> tuple[int, int]:
    """[first, end) minutes of a query's timespan, within the telemetry there is."""
    history = int(world.section("metrics", {}).get("history_days", 35))
    start, end = _timespan(timespan, now, now - timedelta(days=history))
    return _minute(start), min(_minute(end), _minute(now))


def _requests(world: World, app: dict[str, Any], start_min: int, end_min: int, now: datetime):
    """(minute, requests, median duration ms, sigma) of an app's minutes with requests."""
    series = _series_for(world, app["resource_id"], now, app.get("generator"))
    counts = series.values("Requests", start_min, end_min)
    medians = series.values("_median_ms", start_min, end_min)
    generator = series.generator or {}
    sigma = float(generator.get("latency_sigma", 0.6))
    for offset, count in enumerate(counts):
        if count:
            median = medians[offset] if medians[offset] is not None else float(generator.get("latency_ms", 200))
            yield start_min + offset, count, median, sigma


def _latency_percentiles(world: World, ws: dict[str, Any], query: str, timespan: Any) -> dict[str, Any]:
    now = _now()
    start_min, end_min = _window(world, timespan, now)

    # Group columns from the `by` clause of the (last) summarize.
    summarize = query[query.lower().rfind("summarize"):] if "summarize" in query.lower() else ""
    by_match = re.search(r"\bby\b(.*)$", summarize, re.IGNORECASE | re.DOTALL)
    groups: list[tuple[str, Any]] = []
    if by_match:
        for token in re.findall(r"bin\s*\([^)]*\)|[\w.]+", by_match.group(1).split("|")[0]):
            if token.lower().startswith("bin"):
                arg = token[token.index("(") + 1:-1].split(",")
                span = _KUSTO_SPAN.match(arg[-1].strip()) if len(arg) == 2 else None
                if not span or arg[0].strip() != "TimeGenerated":
                    raise _logs_error("SEM0100", f"The sandbox supports bin(TimeGenerated, <n>m|h|d), not {token}.")
                minutes = int(span.group(1)) * {"m": 1, "h": 60, "d": 1440}[span.group(2).lower()]
                groups.append(("TimeGenerated", minutes))
            elif token in ("AppRoleName", "_ResourceId"):
                groups.append((token, None))
            else:
                raise _logs_error("SEM0100", f"'summarize' operator: Failed to resolve scalar expression named "
                                             f"'{token}'")

    # Aggregates, in the order written.
    aggregates: list[tuple[int, str, str, Any]] = []  # (position, column, kind, arg)
    for m in re.finditer(r"(?:(\w+)\s*=\s*)?sum\s*\(\s*ItemCount\s*\)", query, re.IGNORECASE):
        aggregates.append((m.start(), m.group(1) or "sum_ItemCount", "requests", None))
    for m in re.finditer(r"(?:(\w+)\s*=\s*)?count\s*\(\s*\)", query, re.IGNORECASE):
        aggregates.append((m.start(), m.group(1) or "count_", "rows", None))
    for m in re.finditer(r"percentiles?w?\s*\(\s*DurationMs\s*,([^)]*)\)", query, re.IGNORECASE):
        for p in [a.strip() for a in m.group(1).split(",")]:
            if re.fullmatch(r"\d+(?:\.\d+)?", p):
                aggregates.append((m.start(), f"percentile_DurationMs_{p.replace('.', '_')}", "percentile", float(p)))
    aggregates.sort(key=lambda a: a[0])
    if not any(kind == "percentile" for _, _, kind, _ in aggregates):
        raise _logs_error("SEM0100", "The sandbox answers percentiles(DurationMs, ...) over AppRequests only.")

    cells: dict[tuple, dict[str, Any]] = {}
    for app in ws.get("apps", []):
        sampling = float(app.get("sampling_percentage", 100)) / 100
        for minute, count, median, sigma in _requests(world, app, start_min, end_min, now):
            key: tuple = ()
            for column, size in groups:
                if column == "TimeGenerated":
                    key += (_iso(_at_minute(minute // size * size)),)
                elif column == "AppRoleName":
                    key += (app["app_role_name"],)
                else:
                    key += (app["resource_id"].lower(),)
            cell = cells.setdefault(key, {"requests": 0, "rows": 0.0, "mix": {}})
            cell["requests"] += count
            cell["rows"] += count * sampling
            mix = cell["mix"].setdefault(sigma, {})
            mix[median] = mix.get(median, 0) + count

    columns = [{"name": c, "type": "datetime" if c == "TimeGenerated" else "string"} for c, _ in groups]
    columns += [{"name": col, "type": "real" if kind == "percentile" else "long"} for _, col, kind, _ in aggregates]
    rows = []
    for key in sorted(cells):
        cell = cells[key]
        row: list[Any] = list(key)
        for _, _, kind, arg in aggregates:
            if kind == "requests":
                row.append(cell["requests"])
            elif kind == "rows":
                row.append(round(cell["rows"]))
            else:
                row.append(round(_mixture_quantile(cell["mix"], arg / 100), 3))
        rows.append(row)
    return {"name": "PrimaryResult", "columns": columns, "rows": rows}


def _latency_summary(world: World, ws: dict[str, Any], query: str, timespan: Any) -> dict[str, Any]:
    """The sla-snapshot job's query: per role a "summary" row (count, weighted percentiles,
    counts within latency targets) and "bucket" rows (a log-spaced duration histogram)."""
    now = _now()
    start_min, end_min = _window(world, timespan, now)
    # The query's own `let start = datetime(...)` / `let finish = datetime(...)` narrow the timespan.
    first = re.search(r"let\s+start\s*=\s*datetime\(([^)]*)\)", query)
    finish = re.search(r"let\s+finish\s*=\s*datetime\(([^)]*)\)", query)
    if first:
        start_min = max(start_min, _minute(parse_datetime(first.group(1))))
    if finish:
        end_min = min(end_min, _minute(parse_datetime(finish.group(1))))
    roles_m = re.search(r"let\s+roles\s*=\s*dynamic\(\[(.*?)\]\)", query, re.DOTALL)
    roles = ({json.loads(f'"{r}"') for r in re.findall(r'"((?:[^"\\]|\\.)*)"', roles_m.group(1))}
             if roles_m else None)
    role_col = (re.search(r"extend\s+(\w+)\s*=\s*tolower\(\s*AppRoleName\s*\)", query) or [None, "Role"])[1]
    bucket_col = (re.search(r"extend\s+(\w+)\s*=\s*toint\(\s*floor", query) or [None, "Bucket"])[1]
    per_decade = int((re.search(r"floor\(\s*(\d+)\s*\*\s*log10", query) or [None, 20])[1])
    kind_col = (re.search(r'extend\s+(\w+)\s*=\s*"summary"', query) or [None, "Kind"])[1]

    aggregates: list[tuple[int, str, str, float | None]] = []  # (position, column, kind, argument)
    count_m = re.search(r"(\w+)\s*=\s*sum\(\s*ItemCount\s*\)", query)
    count_col = count_m.group(1) if count_m else "Count"
    if count_m:
        aggregates.append((count_m.start(), count_col, "count", None))
    for m in re.finditer(r"(\w+)\s*=\s*percentilew?\s*\(\s*DurationMs\s*(?:,\s*ItemCount\s*)?,\s*([\d.]+)\s*\)",
                         query):
        aggregates.append((m.start(), m.group(1), "percentile", float(m.group(2))))
    for m in re.finditer(r"(\w+)\s*=\s*sumif\(\s*ItemCount\s*,\s*DurationMs\s*<=\s*([\d.]+)\s*\)", query):
        aggregates.append((m.start(), m.group(1), "within", float(m.group(2))))
    aggregates.sort(key=lambda a: a[0])

    mixes: dict[str, dict[float, dict[float, int]]] = {}
    for app in ws.get("apps", []):
        role = app["app_role_name"].lower()
        if roles is not None and role not in roles:
            continue
        for _, count, median, sigma in _requests(world, app, start_min, end_min, now):
            mix = mixes.setdefault(role, {}).setdefault(sigma, {})
            mix[median] = mix.get(median, 0) + count

    columns = [(role_col, "string")] + [
        (col, "real" if kind == "percentile" else "long") for _, col, kind, _ in aggregates]
    columns += [(kind_col, "string"), (bucket_col, "int")]
    index = {name: i for i, (name, _) in enumerate(columns)}
    rows: list[list[Any]] = []
    for role in sorted(mixes):
        mix = mixes[role]
        total = sum(w for medians in mix.values() for w in medians.values())
        summary: list[Any] = [None] * len(columns)
        summary[0], summary[index[kind_col]] = role, "summary"
        for _, col, kind, arg in aggregates:
            if kind == "count":
                summary[index[col]] = total
            elif kind == "percentile":
                summary[index[col]] = round(_mixture_quantile(mix, arg / 100), 3)
            else:
                summary[index[col]] = round(total * _mixture_cdf(mix, math.log(arg))) if arg > 0 else 0
        rows.append(summary)
        # Bucket b holds durations in [10^(b/n), 10^((b+1)/n)) ms; under 1 ms counts in bucket 0.
        below, bucket = 0, 0
        while below < total and bucket < 1000:
            upper = round(total * _mixture_cdf(mix, (bucket + 1) / per_decade * math.log(10)))
            if upper > below:
                row: list[Any] = [None] * len(columns)
                row[0], row[index[kind_col]], row[index[bucket_col]] = role, "bucket", bucket
                row[index[count_col]] = upper - below
                rows.append(row)
            below, bucket = upper, bucket + 1
    return {"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns], "rows": rows}


def _mixture_cdf(mix: dict[float, dict[float, int]], log_x: float) -> float:
    components = [(math.log(median), sigma, weight) for sigma, medians in mix.items()
                  for median, weight in medians.items()]
    total = sum(w for _, _, w in components)
    return sum(w * 0.5 * (1 + math.erf((log_x - mu) / (s * math.sqrt(2)))) for mu, s, w in components) / total


def _mixture_quantile(mix: dict[float, dict[float, int]], q: float) -> float:
    """The q-quantile of a weighted mixture of lognormals {sigma: {median: weight}}."""
    components = [(math.log(median), sigma) for sigma, medians in mix.items() for median in medians]
    q = min(max(q, 1e-9), 1 - 1e-9)
    lo = min(mu - 8 * s for mu, s in components)
    hi = max(mu + 8 * s for mu, s in components)
    for _ in range(80):
        mid = (lo + hi) / 2
        if _mixture_cdf(mix, mid) < q:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)
