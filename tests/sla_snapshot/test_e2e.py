"""sla-snapshot end to end: the runner, the real MetricsClient, LogsQueryClient and
StorageManagementClient against the sandbox, snapshots in Azurite, notifications
to a local webhook receiver. Calls are counted from the sandbox's request log."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from jobs import service
from sandbox.webhook import WebhookReceiver
from tests.sla_snapshot.estate import (APPS, BATCH_OP, LOGS_OP, POLICY_WRITE, ROOT, SUB_A, SUB_B,
                                      WS_NONPROD, WS_PROD, Estate, by_status, estate_world, iso,
                                      month_boundary, settled_hour, writes)

MINUTE = timedelta(minutes=1)


@pytest.fixture
def hour():
    return settled_hour()  # the period of a run at hour + 5 min is [hour - 1 h, hour)


def test_a_run_writes_a_snapshot_per_app_with_one_batch_per_50_resources_and_one_query_per_workspace(
        app_env, world, monkeypatch, hour):
    estate = Estate(app_env, world, monkeypatch, estate_world(fillers=55))
    report = estate.run(hour + 5 * MINUTE)
    assert report["status"] == "succeeded", by_status(report)

    start = hour - timedelta(hours=1)
    leaf = f"{start:%Y/%m/%d}/{start:%H}00Z.json"
    blobs = estate.blobs()
    apps = list(APPS) + [f"app-fill-{i:02d}" for i in range(55)]
    for app in apps:
        assert f"snapshots/{app}/{leaf}" in blobs
        assert f"rollups/{app}/{start:%Y-%m}.json" in blobs
    assert len([b for b in blobs if b.startswith("snapshots/")]) == len(apps)

    # Subscription A: 58 sites (2 batches) and 2 caches (1); subscription B: 2 sites (1).
    # Each site batch is read twice (hourly totals, then minutes), each cache batch once.
    batches = Counter(e["path"] for e in estate.calls(BATCH_OP))
    assert batches == {f"/subscriptions/{SUB_A}/metrics:getBatch": 2 * math.ceil(58 / 50) + 1,
                       f"/subscriptions/{SUB_B}/metrics:getBatch": 2 * 1}
    assert sorted(e["path"] for e in estate.calls(LOGS_OP)) == sorted(
        f"/v1/workspaces/{ws}/query" for ws in (WS_PROD, WS_NONPROD))
    assert all(e["status"] == 200 for e in estate.log)

    shop = estate.read_json(f"snapshots/app-shop/{leaf}")
    assert shop["valid"] and shop["period"] == {"kind": "hour", "start": iso(start),
                                                "end": iso(hour), "minutes": 60}
    assert 0.99 < shop["availability"]["request_based"] <= 1
    assert shop["requests"]["total"] > 10_000  # 200 a minute
    assert shop["latency_ms"]["valid"] and 100 < shop["latency_ms"]["p50"] < 150
    assert shop["latency_ms"]["count"] == pytest.approx(shop["requests"]["total"], rel=0.01)
    assert 0.9 < shop["cache"]["hit_ratio"] < 0.96
    admin = estate.read_json(f"snapshots/app-admin/{leaf}")
    assert admin["cache"]["hit_ratio"] < 0.8  # below target, and reported as it is
    legacy = estate.read_json(f"snapshots/app-legacy/{leaf}")
    assert legacy["latency_ms"] is None and legacy["cache"] is None  # neither configured

    table = report["details"]["tables"][0]
    assert table["columns"][:3] == ["app", "environment", "valid"]
    assert [row[0] for row in table["rows"]] == apps
    assert {a["app"]: a["snapshot"] for a in report["details"]["apps"]}["app-shop"] == "written"


def test_a_rerun_of_the_same_period_writes_nothing(app_env, world, monkeypatch, hour):
    estate = Estate(app_env, world, monkeypatch)
    first = estate.run(hour + 5 * MINUTE)
    assert first["status"] == "succeeded", by_status(first)
    blobs = estate.blobs()
    assert len(blobs) == 2 * len(APPS)

    again = estate.run(hour + 9 * MINUTE)  # a retry, a few minutes later
    assert again["status"] == "succeeded"
    assert writes(again) == [] and again["actions"] == []
    assert estate.blobs() == blobs  # same names, same etags: nothing rewritten
    assert not estate.calls(POLICY_WRITE)
    assert {a["snapshot"] for a in again["details"]["apps"]} == {"unchanged"}


def test_late_data_for_a_written_period_is_kept_beside_the_first_and_reported(
        app_env, world, monkeypatch, hour):
    estate = Estate(app_env, world, monkeypatch)
    estate.run(hour + 5 * MINUTE)
    start = hour - timedelta(hours=1)
    path = f"snapshots/app-api/{start:%Y/%m/%d}/{start:%H}00Z.json"
    first, rollup = estate.read(path), estate.blobs()[f"rollups/app-api/{start:%Y-%m}.json"]

    estate.add_points("app-api", "Http5xx", [(start + 30 * MINUTE, 90), (start + 31 * MINUTE, 80)])
    report = estate.run(hour + 20 * MINUTE)
    [conflict] = [a for a in report["actions"] if a["kind"] == "write-conflict"]
    assert conflict["status"] == "succeeded"
    assert conflict["target"].startswith(path.removesuffix(".json") + ".conflict-")
    assert "kept it" in conflict["reason"] and path in conflict["reason"]
    assert report["details"]["conflicts"] == [conflict["target"]]
    assert estate.read(path) == first  # the first version stays
    later = json.loads(estate.read(conflict["target"]))
    assert later["requests"]["server_errors"] >= json.loads(first)["requests"]["server_errors"] + 170
    assert estate.blobs()[f"rollups/app-api/{start:%Y-%m}.json"] == rollup  # counts the first
    assert writes(report) == [("write-conflict", conflict["target"])]

    again = estate.run(hour + 25 * MINUTE)  # the same late data again: already kept beside it
    assert writes(again) == []


def test_lifecycle_rules_are_merged_with_rules_of_other_teams_once(app_env, world, monkeypatch, hour):
    estate = Estate(app_env, world, monkeypatch)
    foreign = estate.policy_rules()
    assert [r["name"] for r in foreign] == ["data-platform-exports", "security-logs-retention"]

    report = estate.run(hour + 5 * MINUTE)
    [write] = estate.calls(POLICY_WRITE)
    assert write["status"] == 200
    rules = estate.policy_rules()
    assert [r["name"] for r in rules] == ["data-platform-exports", "security-logs-retention",
                                          "ops-sla-snapshots"]
    assert json.dumps(rules[:2], sort_keys=True) == json.dumps(foreign, sort_keys=True)
    ours = rules[2]["definition"]
    assert ours["actions"]["baseBlob"] == {"tierToCool": {"daysAfterModificationGreaterThan": 30},
                                           "delete": {"daysAfterModificationGreaterThan": 400}}
    assert ours["filters"]["prefixMatch"] == [f"{estate.container}/{area}/"
                                              for area in ("snapshots", "rollups", "monthly")]
    [action] = [a for a in report["actions"] if a["kind"] == "ensure-lifecycle"]
    assert "keeping 2 rule(s) of others unchanged" in action["reason"]

    estate.run(hour + 65 * MINUTE)  # the next hour: the policy is as wanted
    assert not estate.calls(POLICY_WRITE)

    estate.configure(LIFECYCLE_DELETE_AFTER_DAYS="500")  # our rule changes, theirs do not
    estate.run(hour + 125 * MINUTE)
    assert len(estate.calls(POLICY_WRITE)) == 1
    rules = estate.policy_rules()
    assert json.dumps(rules[:2], sort_keys=True) == json.dumps(foreign, sort_keys=True)
    assert rules[2]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 500}


def test_the_first_run_of_a_month_writes_the_final_report_of_the_month_before(
        app_env, world, monkeypatch):
    boundary = month_boundary()
    last_month = (boundary - timedelta(days=1)).strftime("%Y-%m")
    estate = Estate(app_env, world, monkeypatch)
    report = estate.run(boundary - timedelta(minutes=55))  # covers 22:00-23:00 on the last day
    assert not [t for _, t in writes(report) if t.startswith("monthly/")]

    # The run covering the month's last hour is the first of the new month: through the CLI,
    # its clock pinned there (a real run takes --now only near the clock).
    at = iso(boundary + 5 * MINUTE)
    out = subprocess.run([sys.executable, "-m", "tests.cli_at", at, "run", "sla-snapshot", "--apply",
                          "--json", "--now", at], capture_output=True, text=True,
                         env=dict(os.environ), cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    monthly = sorted(t for k, t in writes(report) if k == "write-monthly")
    assert monthly == sorted(f"monthly/{app}/{last_month}.{ext}" for app in APPS
                             for ext in ("html", "json"))
    final = estate.read_json(f"monthly/app-shop/{last_month}.json")
    assert final["kind"] == "sla-monthly" and final["month"] == last_month
    assert final["summary"]["error_budget"]["covered_minutes"] == 120  # the two hours snapshotted
    assert final["verdicts"]["availability"]["status"] in ("met", "missed")
    page = estate.read(f"monthly/app-shop/{last_month}.html").decode()
    assert page.startswith("<!DOCTYPE html>") and 'data-chart="availability"' in page

    blobs = estate.blobs()
    for now in (boundary + 8 * MINUTE, boundary + 65 * MINUTE):  # a retry, then the next hour
        again = estate.run(now)
        assert not [t for _, t in writes(again) if t.startswith("monthly/")]
    after = estate.blobs()
    assert {k: v for k, v in after.items() if k.startswith("monthly/")} == {
        k: v for k, v in blobs.items() if k.startswith("monthly/")}


def test_a_burn_rate_breach_is_notified_once(app_env, world, monkeypatch, hour):
    receiver = WebhookReceiver()
    try:
        outage = {"start": hour - 40 * MINUTE, "minutes": 40, "error_rate": 0.5}
        estate = Estate(app_env, world, monkeypatch, estate_world({"app-shop": [outage]}),
                        OPS_NOTIFY_KIND="webhook", OPS_NOTIFY_URL=receiver.url)
        report = estate.run(hour + 5 * MINUTE)
        assert report["status"] == "succeeded", by_status(report)
        rules = sorted(m["facts"]["rule"] for m in receiver.received)
        assert rules == ["page-1h", "page-6h", "ticket-1d", "ticket-3d"]
        assert {m["facts"]["app"] for m in receiver.received} == {"app-shop"}
        page = next(m for m in receiver.received if m["facts"]["rule"] == "page-1h")
        assert page["severity"] == "critical" and "app-shop (production)" in page["title"]
        notified = sorted(a["target"] for a in report["actions"] if a["kind"] == "notify")
        assert notified == [f"burn:app-shop:{r}" for r in rules]
        state, _ = service.environment().store.load_state("sla-snapshot", "alerts")
        assert sorted(state["firing"]) == notified

        estate.run(hour + 10 * MINUTE)  # a retry of the same period
        estate.run(hour + 65 * MINUTE)  # the next hour: the ticket rules still fire
        assert len(receiver.received) == 4
        state, _ = service.environment().store.load_state("sla-snapshot", "alerts")
        assert sorted(state["firing"]) == ["burn:app-shop:ticket-1d", "burn:app-shop:ticket-3d"]
    finally:
        receiver.stop()


def test_a_dry_run_writes_nothing(app_env, world, monkeypatch, hour):
    receiver = WebhookReceiver()
    try:
        outage = {"start": hour - 40 * MINUTE, "minutes": 40, "error_rate": 0.5}
        estate = Estate(app_env, world, monkeypatch, estate_world({"app-shop": [outage]}),
                        OPS_NOTIFY_KIND="webhook", OPS_NOTIFY_URL=receiver.url)
        foreign = estate.policy_rules()
        report = estate.run(hour + 5 * MINUTE, dry_run=True)
        assert report["dry_run"] and {a["status"] for a in report["actions"]} == {"planned"}
        kinds = Counter(a["kind"] for a in report["actions"])
        assert kinds == {"create-container": 1, "write-snapshot": 5, "write-rollup": 5,
                         "ensure-lifecycle": 1, "notify": 4}
        assert estate.blobs() == {}
        assert estate.policy_rules() == foreign and not estate.calls(POLICY_WRITE)
        assert receiver.received == []
        assert service.environment().store.load_state("sla-snapshot", "alerts") == ({}, None)
        assert all(e["method"] == "GET" or e["operation"] in (BATCH_OP, LOGS_OP) for e in estate.log)
    finally:
        receiver.stop()


def test_a_failed_logs_query_skips_the_snapshots_of_its_apps_and_fails_the_run(
        app_env, world, monkeypatch, hour):
    data = estate_world()
    unknown = "5a000000-0000-0000-0000-0000000000ff"
    data["settings"]["OPS_SLA_SNAPSHOT__TARGETS"] = data["settings"][
        "OPS_SLA_SNAPSHOT__TARGETS"].replace(WS_NONPROD, unknown)
    estate = Estate(app_env, world, monkeypatch, data)
    report = estate.run(hour + 5 * MINUTE)
    assert report["status"] == "failed"
    failed = [a for a in report["actions"] if a["status"] == "failed"]
    assert sorted(a["target"].rsplit("/", 1)[1] for a in failed) == ["app-admin", "app-batch"]
    assert all(a["kind"] == "snapshot" and "latency query of workspace" in a["error"]
               and "no snapshot" in a["error"] for a in failed)
    written = {b.split("/")[1] for b in estate.blobs() if b.startswith("snapshots/")}
    assert written == {"app-shop", "app-api", "app-legacy"}
    # the next run, with the workspace fixed, takes their snapshots of its own period
    estate.configure(TARGETS=estate_world()["settings"]["OPS_SLA_SNAPSHOT__TARGETS"])
    report = estate.run(hour + 65 * MINUTE)
    assert report["status"] == "succeeded", by_status(report)
