"""What the observe step asks for: metrics in batches of at most 50 per
subscription and type, one Logs query per workspace, and its rows turned into
latency that adds up across hours."""
import pytest

from jobs.sla_snapshot.latency import Latency, bucket_of, histogram_percentile, total_latency
from jobs.sla_snapshot.queries import (app_metrics_timespan, latency_query, metric_batches,
                                       parse_latency_rows)
from tests.sla_snapshot.helpers import app_id, redis_id, utc


def test_metric_batches_hold_at_most_50_resources_of_one_type_and_subscription():
    apps = [app_id(f"app-{i:03d}") for i in range(120)]
    other_sub = app_id("elsewhere").replace("0001", "0002")
    batches = metric_batches(apps + [redis_id("cache-1"), other_sub])
    assert sorted(len(b) for b in batches) == [1, 1, 20, 50, 50]
    assert all(len({r.split("/")[2] for r in b}) == 1 for b in batches)
    assert all(len({r.split("/")[7] for r in b}) == 1 for b in batches)
    assert sorted(r for b in batches for r in b) == sorted(
        r.lower() for r in apps + [redis_id("cache-1"), other_sub])


def test_app_metrics_reach_back_three_days_for_the_longest_burn_window():
    start, end = app_metrics_timespan(utc(2026, 11, 27, 18))
    assert (start, end) == (utc(2026, 11, 24, 18), utc(2026, 11, 27, 18))


def test_one_query_covers_every_role_of_a_workspace_for_the_period():
    kql = latency_query(["Shop", "admin", 'we"ird'], utc(2026, 11, 27, 17), utc(2026, 11, 27, 18),
                        500, 1000)
    assert 'dynamic(["admin", "shop", "we\\"ird"])' in kql
    assert "datetime(2026-11-27T17:00:00Z)" in kql and "datetime(2026-11-27T18:00:00Z)" in kql
    assert "TimeGenerated < finish" in kql  # [start, end): the next hour is not counted twice
    assert "sum(ItemCount)" in kql and "percentilew(DurationMs, ItemCount, 95)" in kql
    assert "DurationMs <= 500.0" in kql and "DurationMs <= 1000.0" in kql


def test_query_rows_become_latency_per_role():
    rows = [
        {"Kind": "summary", "Role": "shop", "Count": 1000, "P50": 80.5, "P95": 420.0, "P99": 900.0,
         "WithinP95": 960, "WithinP99": 995, "Bucket": None},
        {"Kind": "bucket", "Role": "shop", "Count": 900, "Bucket": 38, "P50": None},
        {"Kind": "bucket", "Role": "shop", "Count": 100, "Bucket": 53},
        {"Kind": "summary", "Role": "admin", "Count": 3, "P50": 10, "P95": 11, "P99": 12,
         "WithinP95": 3, "WithinP99": 3},
    ]
    parsed = parse_latency_rows(rows)
    shop = parsed["shop"]
    assert (shop.count, shop.p50, shop.p95, shop.p99) == (1000, 80.5, 420.0, 900.0)
    assert (shop.within_p95_target, shop.within_p99_target) == (960, 995)
    assert shop.histogram == {38: 900, 53: 100}
    assert parsed["admin"].histogram == {}
    assert "other" not in parsed  # no requests: no row; the caller gives Latency()


@pytest.mark.parametrize("duration, bucket", [(0.2, 0), (1, 0), (10, 20), (100, 40),
                                              (500, 53), (1000, 60)])
def test_histogram_buckets_match_the_query(duration, bucket):
    assert bucket_of(duration) == bucket


def test_percentiles_of_hours_combined_come_from_the_merged_histogram():
    fast = Latency(count=900, within_p95_target=900, within_p99_target=900, histogram={40: 900})
    slow = Latency(count=100, within_p95_target=0, within_p99_target=50, histogram={60: 100})
    day = total_latency([fast, slow])
    assert day.count == 1000 and day.approximate
    assert day.p50 == pytest.approx(105.9, rel=0.001)  # middle of the 100-112 ms bucket
    assert day.p99 == pytest.approx(1059, rel=0.001)   # middle of the 1000-1122 ms bucket
    # the verdict uses exact counts, not the histogram: 90 % within the p95 target
    assert day.within_ratio("p95") == 0.9 and day.within_ratio("p99") == 0.95


def test_an_empty_histogram_has_no_percentile():
    assert histogram_percentile({}, 95) is None
    assert Latency().within_ratio("p95") is None
