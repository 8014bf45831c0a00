"""Azure Monitor in the sandbox: the metrics batch API through the real MetricsClient and the
Logs query API through the real LogsQueryClient."""
import math
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError

SUB1 = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
SITES = "Microsoft.Web/sites"


def _site(name, sub=SUB1, rg="rg-shopfront-dev"):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}"


STAGING = _site("app-shopfront-staging", rg="rg-shopfront-staging")
DEV = _site("app-shopfront-dev")
STAGING_WS = "00000000-0000-0000-0000-00000000a002"
LATENCY = ("// sandbox:latency-percentiles\nAppRequests\n"
           "| summarize RequestCount = sum(ItemCount), percentiles(DurationMs, 50, 95, 99) by AppRoleName")


def _hour(days_ago=0, hours_ago=0) -> datetime:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=days_ago, hours=hours_ago)


def _explicit_world(start: datetime) -> dict:
    return {"metrics": {"resources": [{"id": _site("app-known"), "points": {
        "Requests": [[(start + timedelta(minutes=i)).isoformat(), i + 1] for i in range(10)],
        "HttpResponseTime": [[(start + timedelta(minutes=i)).isoformat(), 0.1 * (i + 1)] for i in range(4)]}}]}}


# -- metrics ---------------------------------------------------------------------------------------
def test_aggregation_over_intervals_is_computed_from_the_minute_series(world, clients):
    start = _hour(hours_ago=3)
    world(_explicit_world(start))

    def query(granularity, end=start + timedelta(minutes=10), **kw):
        [result] = clients.metrics.query_resources(
            resource_ids=[_site("app-known")], metric_namespace=SITES, metric_names=["Requests"],
            timespan=(start, end), granularity=granularity,
            aggregations=["Total", "Average", "Minimum", "Maximum", "Count"], **kw)
        return result.metrics["Requests"].timeseries[0].data

    five = query(timedelta(minutes=5))
    assert [(p.timestamp, p.total, p.average, p.minimum, p.maximum, p.count) for p in five] == [
        (start, 15, 3, 1, 5, 5), (start + timedelta(minutes=5), 40, 8, 6, 10, 5)]
    one = query(timedelta(minutes=1))
    assert [p.total for p in one] == list(range(1, 11))
    # An hour holds ten minutes with data: the rest have none and do not count.
    [hour] = query(timedelta(hours=1), end=start + timedelta(hours=1))
    assert (hour.total, hour.average, hour.count) == (55, 5.5, 10)
    daily = query(timedelta(days=1), end=start + timedelta(hours=1))
    assert len(daily) == 1 and daily[0].timestamp == start.replace(hour=0) and daily[0].total == 55
    # Buckets without data carry their timestamp only.
    later = query(timedelta(minutes=5), end=start + timedelta(minutes=20))
    assert [p.total for p in later] == [15, 40, None, None]


def test_average_metric_and_primary_aggregation(world, clients):
    start = _hour(hours_ago=3)
    world(_explicit_world(start))
    [result] = clients.metrics.query_resources(
        resource_ids=[_site("app-known")], metric_namespace=SITES, metric_names=["HttpResponseTime", "Requests"],
        timespan=(start, start + timedelta(minutes=5)), granularity=timedelta(minutes=5))
    latency, requests = result.metrics["HttpResponseTime"], result.metrics["Requests"]
    assert latency.unit == "Seconds" and requests.unit == "Count"
    # Without aggregations each metric answers its primary one: Average for latency, Total for counts.
    assert latency.timeseries[0].data[0].average == pytest.approx(0.25)
    assert latency.timeseries[0].data[0].total is None
    assert requests.timeseries[0].data[0].total == 15 and requests.timeseries[0].data[0].average is None
    assert result.granularity == timedelta(minutes=5)
    assert result.namespace == "microsoft.web/sites" and result.resource_region == "westeurope"
    assert latency.id == f"{_site('app-known')}/providers/Microsoft.Insights/metrics/HttpResponseTime"


def test_one_batch_call_for_many_resources(world, app_env, clients):
    ids = [_site(f"app-{i:02d}") for i in range(40)]
    world({"metrics": {"seed": 3, "resources": [
        {"id": rid, "region": "westeurope", "generator": {
            "kind": "app_service", "requests_per_minute": 10 + i, "noise": 0.0, "error_rate": 0.0}}
        for i, rid in enumerate(ids)]}})
    start = _hour(hours_ago=2)
    results = clients.metrics.query_resources(
        resource_ids=ids, metric_namespace=SITES, metric_names=["Requests", "Http5xx", "Http2xx"],
        timespan=(start, start + timedelta(hours=1)), granularity=timedelta(hours=1), aggregations=["Total"])
    assert len(results) == 40
    for i, (rid, result) in enumerate(zip(ids, results)):
        requests = result.metrics["Requests"]
        assert requests.id.startswith(rid + "/providers/Microsoft.Insights/metrics/")
        assert requests.timeseries[0].data[0].total == (10 + i) * 60  # flat, no noise
        assert result.metrics["Http5xx"].timeseries[0].data[0].total == 0
        assert result.metrics["Http2xx"].timeseries[0].data[0].total == (10 + i) * 60
    batches = [r for r in app_env.sandbox.request_log() if r["operation"] == "Microsoft.Insights/metrics/getBatch"]
    assert [(b["method"], b["path"], b["status"]) for b in batches] == [
        ("POST", f"/subscriptions/{SUB1}/metrics:getBatch", 200)]


def test_more_than_fifty_resources_are_refused(app_env, clients):
    ids = [_site(f"app-{i:02d}") for i in range(51)]
    with pytest.raises(HttpResponseError) as err:
        clients.metrics.query_resources(resource_ids=ids, metric_namespace=SITES, metric_names=["Requests"],
                                        timespan=timedelta(hours=1))
    assert err.value.status_code == 400
    body = err.value.response.json()["error"]
    assert body["code"] == "BadRequest" and "51" in body["message"] and "50" in body["message"]
    assert err.value.response.headers["x-ms-error-code"] == "BadRequest"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"metric_names": ["Requests", "Colour"]}, "Failed to find metric configuration"),
    ({"resource_ids": [_site("a"), _site("b", sub=SUB2)]}, "subscription"),
    ({"metric_namespace": "Microsoft.Cache/redis", "metric_names": ["allcachehits"]}, "type"),
    ({"granularity": timedelta(minutes=7)}, "Invalid interval"),
])
def test_the_batch_refuses_bad_requests(app_env, clients, kwargs, fragment):
    args = {"resource_ids": [DEV], "metric_namespace": SITES, "metric_names": ["Requests"],
            "timespan": timedelta(hours=1), **kwargs}
    with pytest.raises(HttpResponseError) as err:
        clients.metrics.query_resources(**args)
    assert err.value.status_code == 400 and fragment in err.value.response.json()["error"]["message"]


def test_demo_staging_outage_and_dev_night(app_env, clients):
    outage = _hour(days_ago=2).replace(hour=14, minute=15)
    [staging] = clients.metrics.query_resources(
        resource_ids=[STAGING], metric_namespace=SITES, metric_names=["Requests", "Http5xx", "HttpResponseTime"],
        timespan=(outage, outage + timedelta(minutes=30)), granularity=timedelta(minutes=15),
        aggregations=["Total", "Average"])
    requests = sum(p.total for p in staging.metrics["Requests"].timeseries[0].data)
    errors = sum(p.total for p in staging.metrics["Http5xx"].timeseries[0].data)
    assert requests > 0 and errors / requests > 0.4
    assert all(p.average > 2 for p in staging.metrics["HttpResponseTime"].timeseries[0].data)

    # Dev has no traffic at night: zero requests, and no response time at all.
    night = _hour(days_ago=1).replace(hour=1)
    [dev] = clients.metrics.query_resources(
        resource_ids=[DEV], metric_namespace=SITES, metric_names=["Requests", "HttpResponseTime"],
        timespan=(night, night + timedelta(hours=4)), granularity=timedelta(hours=1),
        aggregations=["Total", "Count", "Average"])
    assert [(p.total, p.count) for p in dev.metrics["Requests"].timeseries[0].data] == [(0, 60)] * 4
    assert [p.average for p in dev.metrics["HttpResponseTime"].timeseries[0].data] == [None] * 4


def test_redis_hits_and_misses(app_env, clients):
    rid = f"/subscriptions/{SUB2}/resourceGroups/rg-shopfront-prod/providers/Microsoft.Cache/Redis/redis-shopfront-prod"
    [redis] = clients.metrics.query_resources(
        resource_ids=[rid], metric_namespace="Microsoft.Cache/redis", metric_names=["allcachehits", "allcachemisses"],
        timespan=timedelta(days=1), granularity=timedelta(days=1), aggregations=["Total"])
    hits = sum(p.total or 0 for p in redis.metrics["allcachehits"].timeseries[0].data)
    misses = sum(p.total or 0 for p in redis.metrics["allcachemisses"].timeseries[0].data)
    assert hits / (hits + misses) == pytest.approx(0.94, abs=0.01)


# -- logs ------------------------------------------------------------------------------------------
def test_latency_percentiles_agree_with_the_metrics(app_env, clients):
    start = _hour(days_ago=1, hours_ago=2)
    end = start + timedelta(hours=6)
    result = clients.logs.query_workspace(STAGING_WS, LATENCY, timespan=(start, end))
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert table.columns == ["AppRoleName", "RequestCount", "percentile_DurationMs_50",
                             "percentile_DurationMs_95", "percentile_DurationMs_99"]
    assert table.columns_types == ["string", "long", "real", "real", "real"]
    [row] = table.rows
    assert row["AppRoleName"] == "app-shopfront-staging"
    assert row["percentile_DurationMs_50"] < row["percentile_DurationMs_95"] < row["percentile_DurationMs_99"]
    # sum(ItemCount) counts every request, as the Requests metric does over the same window.
    [metrics] = clients.metrics.query_resources(
        resource_ids=[STAGING], metric_namespace=SITES, metric_names=["Requests"], timespan=(start, end),
        granularity=timedelta(hours=1), aggregations=["Total"])
    assert row["RequestCount"] == sum(p.total for p in metrics.metrics["Requests"].timeseries[0].data)


def test_percentiles_are_exact_for_a_known_distribution(world, clients):
    rid = _site("app-flat")
    world({"metrics": {"resources": [{"id": rid, "generator": {
               "kind": "app_service", "requests_per_minute": 10, "noise": 0, "latency_ms": 100,
               "latency_sigma": 0.5}}]},
           "logs": {"workspaces": [{"id": "11111111-1111-1111-1111-111111111111", "apps": [
               {"app_role_name": "flat", "resource_id": rid, "sampling_percentage": 25}]}]}})
    query = ("// sandbox:latency-percentiles\nAppRequests\n| summarize Sampled = count(), Served = sum(ItemCount), "
             "percentilesw(DurationMs, ItemCount, 50, 99.9) by _ResourceId, bin(TimeGenerated, 1h)")
    start = _hour(hours_ago=5)
    result = clients.logs.query_workspace("11111111-1111-1111-1111-111111111111", query,
                                          timespan=(start, start + timedelta(hours=2)))
    table = result.tables[0]
    assert table.columns == ["_ResourceId", "TimeGenerated", "Sampled", "Served",
                             "percentile_DurationMs_50", "percentile_DurationMs_99_9"]
    assert [(r["_ResourceId"], r["TimeGenerated"], r["Sampled"], r["Served"]) for r in table.rows] == [
        (rid.lower(), start, 150, 600), (rid.lower(), start + timedelta(hours=1), 150, 600)]
    p999 = 100 * math.exp(0.5 * 3.090232)
    assert table.rows[0]["percentile_DurationMs_50"] == pytest.approx(100, rel=1e-3)
    assert table.rows[0]["percentile_DurationMs_99_9"] == pytest.approx(p999, rel=1e-3)


SUMMARY_QUERY = """let start = datetime({start});
let finish = datetime({finish});
let roles = dynamic(["flat", "not-there"]);
let requests = AppRequests
| where TimeGenerated >= start and TimeGenerated < finish
| extend Role = tolower(AppRoleName)
| where Role in (roles);
union
(requests
 | summarize Count = sum(ItemCount),
             P50 = percentilew(DurationMs, ItemCount, 50),
             P95 = percentilew(DurationMs, ItemCount, 95),
             WithinP95 = sumif(ItemCount, DurationMs <= 200.0) by Role
 | extend Kind = "summary"),
(requests
 | extend Bucket = toint(floor(20 * log10(max_of(DurationMs, 1.0))))
 | summarize Count = sum(ItemCount) by Role, Bucket
 | extend Kind = "bucket")
"""


def test_the_sla_snapshot_summary_and_histogram_query(world, clients):
    rid = _site("app-flat")
    world({"metrics": {"resources": [{"id": rid, "generator": {
               "kind": "app_service", "requests_per_minute": 10, "noise": 0, "latency_ms": 100,
               "latency_sigma": 0.5}}]},
           "logs": {"workspaces": [{"id": "11111111-1111-1111-1111-111111111111", "apps": [
               {"app_role_name": "Flat", "resource_id": rid, "sampling_percentage": 25}]}]}})
    start = _hour(hours_ago=5)
    query = SUMMARY_QUERY.format(start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 finish=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    table = clients.logs.query_workspace("11111111-1111-1111-1111-111111111111", query,
                                         timespan=(start - timedelta(hours=1), start + timedelta(hours=3))).tables[0]
    assert table.columns == ["Role", "Count", "P50", "P95", "WithinP95", "Kind", "Bucket"]
    assert table.columns_types == ["string", "long", "real", "real", "long", "string", "int"]
    rows = [dict(zip(table.columns, row)) for row in table.rows]
    [summary] = [r for r in rows if r["Kind"] == "summary"]
    buckets = [r for r in rows if r["Kind"] == "bucket"]
    assert summary["Role"] == "flat" and summary["Count"] == 600 and summary["Bucket"] is None
    assert summary["P50"] == pytest.approx(100, rel=1e-3)
    assert summary["P95"] == pytest.approx(100 * math.exp(0.5 * 1.644854), rel=1e-3)
    # ln(200/100) / 0.5 = 1.386 sigma: 91.7 % of requests.
    assert summary["WithinP95"] == round(600 * 0.5 * (1 + math.erf(math.log(2) / 0.5 / math.sqrt(2))))
    assert sum(r["Count"] for r in buckets) == 600 and all(r["P50"] is None for r in buckets)
    # Bucket 40 holds [100, 112.2) ms: the median is its lower edge, so it is the fullest.
    assert max(buckets, key=lambda r: r["Count"])["Bucket"] in (39, 40)


def test_a_duration_timespan_and_the_shape_without_marker(app_env, clients):
    query = "AppRequests | summarize percentiles(DurationMs, 95) by AppRoleName"
    result = clients.logs.query_workspace(STAGING_WS, query, timespan=timedelta(hours=3))
    assert result.tables[0].columns == ["AppRoleName", "percentile_DurationMs_95"]
    assert len(result.tables[0].rows) == 1


def test_an_unknown_query_is_refused_in_the_logs_api_shape(app_env, clients):
    with pytest.raises(HttpResponseError) as err:
        clients.logs.query_workspace(STAGING_WS, "Heartbeat | take 10", timespan=timedelta(hours=1))
    assert err.value.status_code == 400
    body = err.value.response.json()["error"]
    assert body["code"] == "BadArgumentError" and body["message"] == "The request had some invalid properties"
    assert body["innererror"]["code"] == "SemanticError"
    assert err.value.model.code == "BadArgumentError"


def test_an_unknown_workspace_is_not_found(app_env, clients):
    with pytest.raises(HttpResponseError) as err:
        clients.logs.query_workspace("99999999-9999-9999-9999-999999999999", LATENCY, timespan=timedelta(hours=1))
    assert err.value.status_code == 404
    assert err.value.response.json()["error"]["code"] == "PathNotFoundError"
