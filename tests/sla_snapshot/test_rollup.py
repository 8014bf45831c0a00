"""Month-to-date rollup and final report: hours add up once, invalid days stay
invalid, the budget follows the real month, and each objective gets a verdict."""
from datetime import timedelta

import pytest

from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.rollup import (RollupError, add_snapshot, counts_before, final_report,
                                      rollup_from_snapshots)
from jobs.sla_snapshot.sli import CacheCounts
from jobs.sla_snapshot.snapshot import Period, build_snapshot, canonical_json
from tests.sla_snapshot.helpers import series, settings, utc

SETTINGS = settings()
SHOP = SETTINGS.targets[0]


def hour(start, *, requests=1000, errors=None, latency=None, cache=CacheCounts(900, 100),
         kind="hour", rollup=None):
    period = Period(kind, start)
    s = series(period.end, minutes=period.minutes, requests=requests, errors=errors)
    latency = latency if latency is not None else Latency(
        count=requests * 60, within_p95_target=requests * 60, within_p99_target=requests * 60,
        histogram={40: requests * 60})
    return build_snapshot(SHOP, period, s, latency, cache, SETTINGS, counts_before(rollup, period))


def month_of(snapshots):
    rollup, skipped = rollup_from_snapshots(snapshots)
    assert skipped == []
    return rollup


def test_hours_add_up_to_the_month_to_date():
    hours = [hour(utc(2026, 11, 2, h), errors={(3, 0): 100} if h == 5 else None) for h in range(24)]
    rollup = month_of(hours)
    summary = rollup["summary"]
    assert summary["requests"] == {"total": 24 * 60_000, "server_errors": 300}
    assert summary["minutes"]["bad"] == 3 and summary["minutes"]["traffic"] == 24 * 60
    assert summary["availability"]["request_based"] == pytest.approx(1 - 300 / 1_440_000)
    assert summary["availability"]["time_based"] == pytest.approx(1 - 3 / 1440)
    assert summary["error_budget"]["consumed_minutes"] == 3
    assert summary["error_budget"]["allowed_minutes"] == 43.2
    assert summary["error_budget"]["covered_minutes"] == 1440
    assert summary["cache"]["hit_ratio"] == 0.9
    assert rollup["through"] == "2026-11-03T00:00:00Z"


def test_a_period_already_in_the_rollup_is_never_counted_twice():
    first = hour(utc(2026, 11, 2, 5), errors={(10, 0): 100})
    rollup, reason = add_snapshot(None, first)
    assert reason is None
    again, reason = add_snapshot(rollup, first)
    assert again == rollup and "already in the rollup" in reason
    day, reason = add_snapshot(rollup, hour(utc(2026, 11, 2), kind="day"))
    assert day == rollup and "overlaps 2026-11-02T05:00Z" in reason


def test_rebuilding_from_snapshots_in_any_order_gives_the_incremental_rollup():
    hours = [hour(utc(2026, 11, d, h), errors={(2, 0): 200}) for d in (1, 2) for h in (0, 13)]
    incremental = None
    for snapshot in hours:
        incremental, _ = add_snapshot(incremental, snapshot)
    assert canonical_json(month_of(reversed(hours))) == canonical_json(incremental)


def test_a_snapshot_of_another_month_or_app_is_refused():
    rollup, _ = add_snapshot(None, hour(utc(2026, 11, 30, 23)))
    with pytest.raises(RollupError):
        add_snapshot(rollup, hour(utc(2026, 12, 1, 0)))


def test_the_error_budget_of_a_snapshot_counts_the_month_before_it():
    rollup = month_of([hour(utc(2026, 12, 1, h), errors={(4, 0): 100}) for h in range(3)])
    snapshot = hour(utc(2026, 12, 1, 3), errors={(1, 0): 100}, rollup=rollup)
    assert snapshot["error_budget"]["consumed_minutes"] == 3 * 4 + 1
    assert snapshot["error_budget"]["allowed_minutes"] == 44.64  # December: 31 days
    assert snapshot["error_budget"]["remaining_minutes"] == pytest.approx(44.64 - 13)
    # A re-snapshot of hour 1 counts hour 0 only: later hours are not "month to date" for it.
    assert counts_before(rollup, Period("hour", utc(2026, 12, 1, 1))).bad_minutes == 4


def test_days_with_too_few_requests_stay_invalid_in_the_daily_figures():
    rollup = month_of([hour(utc(2026, 11, 1, 0)), hour(utc(2026, 11, 2, 0), requests=1)])
    good, thin = rollup["summary"]["daily"]
    assert good["valid"] and good["availability"]["request_based"] == 1.0
    assert thin["date"] == "2026-11-02" and thin["valid"] is False
    assert thin["availability"] == {"request_based": None, "time_based": None}
    assert thin["latency_ms"] is None  # 60 requests: too few for percentiles


def test_budget_burn_is_cumulative_through_the_month():
    rollup = month_of([hour(utc(2026, 11, d, 12), errors={(d, 0): 100}) for d in (1, 2, 5)])
    assert [(d["date"], d["bad_minutes"], d["budget_consumed_minutes"])
            for d in rollup["summary"]["daily"]] == [
        ("2026-11-01", 1, 1), ("2026-11-02", 2, 3), ("2026-11-05", 5, 8)]


VERDICT_CASES = [
    # (case, errors per hour {(from, to): 5xx}, within-p95 share, cache hits, expected verdicts)
    ("all met", None, 1.0, 900,
     {"availability": "met", "error_budget": "met", "latency_p95": "met", "latency_p99": "met",
      "cache_hit_ratio": "met"}),
    # 1 % of requests fail in every minute: 99 % < 99.9 %, yet no minute is above the 5 %
    # bad-minute threshold, so the time-based budget holds
    ("availability missed, evenly", {(60, 0): 10}, 1.0, 900,
     {"availability": "missed", "error_budget": "met", "latency_p95": "met", "latency_p99": "met",
      "cache_hit_ratio": "met"}),
    ("latency missed", None, 0.9, 900,
     {"availability": "met", "error_budget": "met", "latency_p95": "missed",
      "latency_p99": "missed", "cache_hit_ratio": "met"}),
    ("cache missed", None, 1.0, 500,
     {"availability": "met", "error_budget": "met", "latency_p95": "met", "latency_p99": "met",
      "cache_hit_ratio": "missed"}),
]


@pytest.mark.parametrize("case, errors, within, hits, expected", VERDICT_CASES)
def test_the_final_report_says_which_objectives_the_month_missed(case, errors, within, hits,
                                                                 expected):
    count = 60_000
    latency = Latency(count=count, within_p95_target=int(count * within),
                      within_p99_target=int(count * within), histogram={40: count})
    start = utc(2026, 11, 1)
    snapshots = [hour(start + timedelta(hours=h), errors=errors, latency=latency,
                      cache=CacheCounts(hits, 1000 - hits)) for h in range(48)]
    report = final_report(month_of(snapshots))
    assert report["kind"] == "sla-monthly"
    assert {k: v["status"] for k, v in report["verdicts"].items()} == expected


def test_a_month_without_enough_data_has_unknown_verdicts_not_met():
    report = final_report(month_of([hour(utc(2026, 11, 1, 0), requests=1,
                                         cache=CacheCounts(0, 0))]))
    assert {v["status"] for v in report["verdicts"].values()} == {"unknown"}
    assert report["verdicts"]["availability"]["reason"] == "too few requests (60 < 100)"


def test_exactly_the_objective_is_met():
    # 1 failure per 1000 requests is exactly 99.9 %
    rollup = month_of([hour(utc(2026, 11, 1, 0), errors={(60, 0): 1})])
    assert final_report(rollup)["verdicts"]["availability"]["status"] == "met"


def test_more_bad_minutes_than_the_month_allows_misses_the_error_budget():
    outage = hour(utc(2026, 11, 3, 9), errors={(44, 0): 1000})  # 44 minutes down > 43.2
    quiet = [hour(utc(2026, 11, 3, h)) for h in range(9)]
    report = final_report(month_of(quiet + [outage]))
    assert report["verdicts"]["error_budget"]["status"] == "missed"
    assert report["verdicts"]["error_budget"]["value"] == pytest.approx(43.2 - 44)
