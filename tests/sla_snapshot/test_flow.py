"""The pure parts chained as a run would chain them, over a month boundary,
with a dict standing in for the container: hourly snapshots, the rollup, the
final report on the first run of the month, idempotent re-runs and a conflict
kept beside the first snapshot."""
import json

from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.report_html import render_report
from jobs.sla_snapshot.rollup import add_snapshot, counts_before, final_report
from jobs.sla_snapshot.sli import CacheCounts
from jobs.sla_snapshot.snapshot import (build_snapshot, canonical_json, final_report_due,
                                        monthly_paths, plan_rewrite, plan_write_once, rollup_path,
                                        snapshot_path, snapshot_period)
from tests.sla_snapshot.helpers import series, settings, utc

SETTINGS = settings()
SHOP = SETTINGS.targets[0]


def run(blobs: dict[str, bytes], now, errors=None):
    """One run for one app; returns the write modes, applying them to ``blobs``."""
    period = snapshot_period(now, SETTINGS.period, SETTINGS.ingestion_delay_minutes)
    path_of_rollup = rollup_path(SHOP.name, period.month)
    rollup = _json(blobs.get(path_of_rollup))
    snapshot = build_snapshot(SHOP, period, series(period.end, errors=errors),
                              Latency(count=60_000, within_p95_target=60_000,
                                      within_p99_target=60_000, histogram={40: 60_000}),
                              CacheCounts(900, 100), SETTINGS, counts_before(rollup, period))
    rollup, _ = add_snapshot(rollup, snapshot)
    writes = [plan_write_once(snapshot_path(SHOP.name, period), canonical_json(snapshot),
                              blobs.get(snapshot_path(SHOP.name, period))),
              plan_rewrite(path_of_rollup, canonical_json(rollup), blobs.get(path_of_rollup))]
    json_path, html_path = monthly_paths(SHOP.name, final_report_due(period, final_exists=False))
    due = final_report_due(period, final_exists=json_path in blobs)
    if due:
        month_rollup = rollup if due == period.month else _json(
            blobs.get(rollup_path(SHOP.name, due)))
        if month_rollup:
            report = final_report(month_rollup)
            writes.append(plan_write_once(json_path, canonical_json(report), blobs.get(json_path)))
            html = render_report(report).encode()
            writes.append(plan_write_once(html_path, html, blobs.get(html_path)))
    for write in writes:
        if write.mode != "unchanged":
            assert write.path not in blobs or write.mode == "replace"  # never overwrite once-only
            blobs[write.path] = write.data
    return [(w.mode, w.path) for w in writes]


def _json(data):
    return json.loads(data) if data else None


def test_a_day_of_hourly_runs_then_the_first_run_of_december_writes_novembers_report():
    blobs: dict[str, bytes] = {}
    for hour in range(1, 24):  # runs at 01:05 .. 23:05 cover 00:00 .. 22:00
        modes = run(blobs, utc(2026, 11, 30, hour, 5), errors={(2, 0): 100})
        assert not any(path.startswith("monthly/") for _, path in modes)
    # 2026-12-01 00:05 covers November's last hour and writes the month's report
    modes = run(blobs, utc(2026, 12, 1, 0, 5), errors={(2, 0): 100})
    assert modes == [("create", "snapshots/shop/2026/11/30/2300Z.json"),
                     ("replace", "rollups/shop/2026-11.json"),
                     ("create", "monthly/shop/2026-11.json"),
                     ("create", "monthly/shop/2026-11.html")]
    assert "monthly/shop/2026-11.json" in blobs and "monthly/shop/2026-11.html" in blobs
    report = _json(blobs["monthly/shop/2026-11.json"])
    assert report["kind"] == "sla-monthly"
    assert report["summary"]["error_budget"]["consumed_minutes"] == 24 * 2
    assert report["summary"]["error_budget"]["covered_minutes"] == 24 * 60
    assert report["verdicts"]["error_budget"]["status"] == "missed"  # 48 > 43.2 minutes
    assert len([p for p in blobs if p.startswith("snapshots/shop/2026/11/30/")]) == 24

    # the next hour belongs to December: a fresh rollup, and no second November report
    modes = run(blobs, utc(2026, 12, 1, 1, 5))
    assert modes == [("create", "snapshots/shop/2026/12/01/0000Z.json"),
                     ("create", "rollups/shop/2026-12.json")]
    december = _json(blobs["rollups/shop/2026-12.json"])
    assert december["summary"]["error_budget"]["allowed_minutes"] == 44.64


def test_a_retried_run_writes_nothing_new():
    blobs: dict[str, bytes] = {}
    run(blobs, utc(2026, 11, 30, 22, 5))
    first = run(blobs, utc(2026, 12, 1, 0, 5))
    assert [m for m, _ in first] == ["create", "replace", "create", "create"]
    before = dict(blobs)
    again = run(blobs, utc(2026, 12, 1, 0, 5))
    assert [m for m, _ in again] == ["unchanged"] * 2  # the report exists: not due again
    assert blobs == before


def test_different_data_for_a_written_hour_is_kept_beside_it_not_over_it():
    blobs: dict[str, bytes] = {}
    run(blobs, utc(2026, 11, 27, 18, 5))
    original = blobs["snapshots/shop/2026/11/27/1700Z.json"]
    modes = run(blobs, utc(2026, 11, 27, 18, 5), errors={(3, 0): 100})  # late data
    assert modes[0][0] == "conflict"
    assert modes[0][1].startswith("snapshots/shop/2026/11/27/1700Z.conflict-")
    assert blobs["snapshots/shop/2026/11/27/1700Z.json"] == original
    assert modes[1][0] == "unchanged"  # the rollup keeps the first version of the hour
