"""The snapshot document: which period a run covers, invalid data never shown
as 100 %, byte-identical JSON for the same period, the blob layout, the rule
for a differing snapshot of a period already written, and when the final
report of a month is due."""
import json

import pytest

from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.rollup import add_snapshot, counts_before
from jobs.sla_snapshot.sli import CacheCounts, MinuteSeries
from jobs.sla_snapshot.snapshot import (Period, build_snapshot, canonical_json, conflict_path,
                                        final_report_due, monthly_paths, plan_rewrite,
                                        plan_write_once, rollup_path, snapshot_path,
                                        snapshot_period)
from tests.sla_snapshot.helpers import series, settings, utc

SETTINGS = settings()
LATENCY = Latency(count=5000, p50=80.0, p95=420.0, p99=950.0, within_p95_target=4800,
                  within_p99_target=4960, histogram={38: 4000, 52: 960, 60: 40})


def snap(start, *, errors=None, requests=1000, rollup=None, latency=LATENCY,
         cache=CacheCounts(900, 100), s=SETTINGS, the_series=None):
    period = Period("hour", start)
    the_series = the_series or series(period.end, errors=errors, requests=requests)
    return build_snapshot(s.targets[0], period, the_series, latency, cache, s,
                          counts_before(rollup, period))


# --- which period a run covers ------------------------------------------------------------------

@pytest.mark.parametrize("now, kind, start", [
    (utc(2026, 11, 27, 18, 5), "hour", utc(2026, 11, 27, 17)),
    (utc(2026, 11, 27, 18, 2), "hour", utc(2026, 11, 27, 17)),
    (utc(2026, 11, 27, 18, 1), "hour", utc(2026, 11, 27, 16)),  # 18:00 not settled yet
    (utc(2026, 12, 1, 0, 5), "hour", utc(2026, 11, 30, 23)),    # last hour of November
    (utc(2026, 12, 1, 0, 30), "day", utc(2026, 11, 30)),
])
def test_a_run_covers_the_last_settled_whole_period(now, kind, start):
    assert snapshot_period(now, kind, delay_minutes=2) == Period(kind, start)


# --- the document -----------------------------------------------------------------------------

def test_a_snapshot_reports_both_availabilities_latency_cache_and_budget():
    doc = snap(utc(2026, 11, 27, 17), errors={(10, 0): 100})  # 10 minutes at 10 % 5xx
    assert doc["schema_version"] == 1 and doc["valid"] is True
    assert doc["period"] == {"kind": "hour", "start": "2026-11-27T17:00:00Z",
                             "end": "2026-11-27T18:00:00Z", "minutes": 60}
    assert doc["requests"] == {"total": 60_000, "server_errors": 1000}
    assert doc["availability"]["request_based"] == pytest.approx(1 - 1000 / 60_000)
    assert doc["availability"]["time_based"] == pytest.approx(50 / 60)
    assert doc["minutes"] == {"total": 60, "traffic": 60, "idle": 0, "good": 50, "bad": 10}
    assert (doc["latency_ms"]["p95"], doc["latency_ms"]["valid"]) == (420.0, True)
    assert doc["cache"]["hit_ratio"] == 0.9
    assert doc["error_budget"]["allowed_minutes"] == 43.2
    assert doc["error_budget"]["consumed_minutes"] == 10
    assert doc["error_budget"]["remaining_minutes"] == pytest.approx(33.2)
    assert set(doc["burn_rates"]) == {"1h", "6h", "1d", "3d"}
    assert doc["alerts"]["page-1h"]["state"] == "firing"  # 16.7x over 1h and 100x over 5m


@pytest.mark.parametrize("requests, reason", [(0, "no requests"),
                                              (1, "too few requests (60 < 100)")])
def test_no_data_or_too_few_requests_is_invalid_never_100_percent(requests, reason):
    doc = snap(utc(2026, 11, 27, 17), requests=requests, latency=Latency(), cache=CacheCounts(0, 0))
    assert doc["valid"] is False and doc["invalid_reason"] == reason
    assert doc["availability"] == {"request_based": None, "time_based": None}
    assert doc["error_rate"] is None
    assert doc["latency_ms"]["valid"] is False and doc["latency_ms"]["p95"] is None
    assert doc["cache"]["valid"] is False and doc["cache"]["invalid_reason"] == "no cache lookups"
    assert doc["cache"]["hit_ratio"] is None
    stored = json.loads(canonical_json(doc))
    assert stored["availability"] == {"request_based": None, "time_based": None}


def test_an_app_without_workspace_or_cache_has_null_sections():
    doc = snap(utc(2026, 11, 27, 17), latency=None, cache=None,
               s=settings(targets="/subscriptions/00000000-0000-0000-0000-000000000001/"
                                  "resourceGroups/rg/providers/Microsoft.Web/sites/shop|dev"))
    assert doc["latency_ms"] is None and doc["cache"] is None


@pytest.mark.parametrize("start, month, days, elapsed", [
    (utc(2026, 11, 30, 23), "2026-11", 30, 30 * 1440),  # the month's last hour
    (utc(2026, 12, 1, 0), "2026-12", 31, 60),           # the next month starts afresh
    (utc(2026, 2, 28, 23), "2026-02", 28, 28 * 1440),
])
def test_the_budget_is_for_the_month_of_the_period(start, month, days, elapsed):
    budget = snap(start)["error_budget"]
    assert (budget["month"], budget["days_in_month"], budget["elapsed_minutes"]) == (
        month, days, elapsed)


# --- byte-identical JSON ----------------------------------------------------------------------

def test_the_same_period_gives_byte_identical_json():
    first = canonical_json(snap(utc(2026, 11, 27, 17), errors={(7, 0): 3}))
    again = canonical_json(snap(utc(2026, 11, 27, 17), errors={(7, 0): 3}))
    assert first == again
    assert first.endswith(b"}\n") and json.loads(first)["schema_version"] == 1


def test_key_order_and_float_noise_do_not_change_the_bytes():
    assert canonical_json({"b": 0.1 + 0.2, "a": -0.0}) == canonical_json({"a": 0.0, "b": 0.3})


def test_non_finite_numbers_are_refused_rather_than_written():
    with pytest.raises(ValueError):
        canonical_json({"burn": float("inf")})


def test_a_retry_after_the_rollup_was_written_gives_the_same_snapshot():
    start = utc(2026, 11, 27, 17)
    earlier = snap(utc(2026, 11, 27, 16), errors={(60, 0): 100})
    rollup, _ = add_snapshot(None, earlier)
    first = snap(start, errors={(5, 0): 100}, rollup=rollup)
    rollup, _ = add_snapshot(rollup, first)  # the run wrote the rollup, then failed
    retry = snap(start, errors={(5, 0): 100}, rollup=rollup)
    assert canonical_json(retry) == canonical_json(first)
    assert retry["error_budget"]["consumed_minutes"] == 60 + 5


# --- blob layout and the write rule ------------------------------------------------------------

def test_blob_layout_is_date_partitioned_per_app():
    assert snapshot_path("shop", Period("hour", utc(2026, 11, 7, 5))) == \
        "snapshots/shop/2026/11/07/0500Z.json"
    assert snapshot_path("shop", Period("day", utc(2026, 11, 7))) == \
        "snapshots/shop/2026/11/07/day.json"
    assert rollup_path("shop", "2026-11") == "rollups/shop/2026-11.json"
    assert monthly_paths("shop", "2026-11") == ("monthly/shop/2026-11.json",
                                                "monthly/shop/2026-11.html")


def test_a_new_period_is_created_only_if_absent():
    write = plan_write_once("snapshots/shop/2026/11/27/1700Z.json", b"{}\n", None)
    assert (write.mode, write.path) == ("create", "snapshots/shop/2026/11/27/1700Z.json")


def test_the_same_content_again_writes_nothing():
    assert plan_write_once("p.json", b"same", b"same").mode == "unchanged"


def test_a_differing_snapshot_keeps_the_first_and_is_written_beside_it():
    path = "snapshots/shop/2026/11/27/1700Z.json"
    write = plan_write_once(path, b'{"v": 2}', b'{"v": 1}')
    assert write.mode == "conflict" and write.kept == path
    assert write.path == conflict_path(path, b'{"v": 2}')
    assert write.path.startswith("snapshots/shop/2026/11/27/1700Z.conflict-")
    assert write.path.endswith(".json") and len(write.path.split("conflict-")[1]) == len("12345678.json")
    assert "kept it" in write.reason and write.path in write.reason
    # content-addressed: the same differing content maps to the same conflict blob
    assert plan_write_once(path, b'{"v": 2}', b'{"v": 1}').path == write.path
    assert plan_write_once(path, b'{"v": 3}', b'{"v": 1}').path != write.path


def test_a_differing_html_report_keeps_its_extension():
    assert conflict_path("monthly/shop/2026-11.html", b"x").endswith(".html")


@pytest.mark.parametrize("existing, data, mode", [(None, b"a", "create"), (b"a", b"a", "unchanged"),
                                                  (b"a", b"b", "replace")])
def test_the_month_to_date_rollup_is_rewritten_only_when_it_changed(existing, data, mode):
    assert plan_rewrite("rollups/shop/2026-11.json", data, existing).mode == mode


# --- the final report of a month ---------------------------------------------------------------

@pytest.mark.parametrize("start, final_exists, due", [
    (utc(2026, 11, 30, 23), False, "2026-11"),  # the run at 00:05 on 1 December
    (utc(2026, 11, 30, 23), True, None),
    (utc(2026, 12, 1, 0), False, "2026-11"),    # a missed run catches up
    (utc(2026, 12, 1, 0), True, None),
    (utc(2027, 1, 1, 0), False, "2026-12"),     # across a year
    (utc(2026, 11, 30, 22), False, "2026-10"),  # mid-month: only if last month's is missing
])
def test_the_final_report_of_the_previous_month_is_due_until_written(start, final_exists, due):
    assert final_report_due(Period("hour", start), final_exists) == due


def test_series_must_be_whole_minutes_in_utc():
    with pytest.raises(ValueError):
        MinuteSeries(utc(2026, 11, 27, 17, 0, 30), (1,), (0,))
