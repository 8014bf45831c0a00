"""The job's own planning (jobs/sla_snapshot/job.py) over hand-made observations:
what the sandbox cannot show (policy fields it does not store, a run whose reads
half failed, a final report of a finished month while this hour failed)."""
import json

from jobs.sla_snapshot.azure_io import AppView, Blob, Lifecycle, Observed
from jobs.sla_snapshot.job import plan_lifecycle, plan_run, policy_body
from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.rollup import add_snapshot, counts_before
from jobs.sla_snapshot.sli import CacheCounts, NO_COUNTS
from jobs.sla_snapshot.snapshot import (build_snapshot, canonical_json, snapshot_path,
                                        snapshot_period)
from tests.sla_snapshot.helpers import series, settings, utc

SETTINGS = settings(storage_account_id="/subscriptions/00000000-0000-0000-0000-000000000001/"
                    "resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stsla")
SHOP = SETTINGS.targets[0]
FOREIGN = {"enabled": True, "name": "team-x", "type": "Lifecycle", "futureRuleField": {"a": [1, 2]},
           "definition": {"filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["x/"]},
                          "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 9}}}}}


def lifecycle(policy):
    return Lifecycle(SETTINGS.storage_account_id, "00000000-0000-0000-0000-000000000001", "rg",
                     "stsla", policy=policy)


def view(period, **kw):
    v = AppView(SHOP, series=series(period.end), cache=CacheCounts(900, 100),
                latency=Latency(count=60_000, within_p95_target=60_000, within_p99_target=60_000,
                                histogram={40: 60_000}))
    for key, value in kw.items():
        setattr(v, key, value)
    return v


def observed(period, views, policy=None, exists=True):
    return Observed(period=period, container="sla-snapshots", container_exists=exists,
                    apps=views, lifecycle=lifecycle(policy), alert_state={}, alert_etag=None,
                    calls={})


def test_the_policy_body_keeps_every_field_it_read_but_the_read_only_time():
    existing = {"id": "x", "name": "DefaultManagementPolicy",
                "properties": {"lastModifiedTime": "2026-01-01T00:00:00Z", "newProperty": 7,
                               "policy": {"rules": [FOREIGN], "futurePolicyField": "kept"}}}
    [action] = plan_lifecycle(lifecycle(existing), SETTINGS)
    body = action.params["policy"]
    assert body["properties"]["newProperty"] == 7
    assert body["properties"]["policy"]["futurePolicyField"] == "kept"
    assert "lastModifiedTime" not in body["properties"]
    rules = body["properties"]["policy"]["rules"]
    assert json.dumps(rules[0], sort_keys=True) == json.dumps(FOREIGN, sort_keys=True)
    assert [r["name"] for r in rules] == ["team-x", "ops-sla-snapshots"]
    # written as the policy now is: nothing to do
    assert plan_lifecycle(lifecycle({"properties": body["properties"]}), SETTINGS) == []
    assert policy_body(None, rules)["properties"] == {"policy": {"rules": rules}}


def test_no_rule_wanted_and_none_of_others_deletes_the_policy_instead_of_emptying_it():
    off = settings(lifecycle_tier="none", lifecycle_delete_after_days=0,
                   storage_account_id=SETTINGS.storage_account_id)
    ours = {"properties": {"policy": {"rules": [dict(FOREIGN, name="ops-sla-snapshots")]}}}
    [action] = plan_lifecycle(lifecycle(ours), off)
    assert action.kind == "remove-lifecycle"
    assert plan_lifecycle(lifecycle(None), off) == []


def test_an_app_whose_reads_failed_gets_a_failed_outcome_and_the_others_go_on():
    period = snapshot_period(utc(2026, 11, 27, 18, 5))
    failed = view(period, problems=["latency query of workspace w failed: HttpResponseError: boom"])
    plan = plan_run(observed(period, [failed]), SETTINGS)
    [fail] = [a for a in plan if a.verdict == "failed"]
    assert fail.kind == "snapshot" and fail.target == SHOP.app_id
    assert "no snapshot of shop for 2026-11-27T17:00:00Z" in fail.error and "boom" in fail.error
    assert not [a for a in plan if a.kind.startswith("write-")]


def test_a_failed_hour_does_not_hold_back_the_final_report_of_a_finished_month():
    period = snapshot_period(utc(2026, 12, 1, 3, 5))  # December: November is finished
    november = snapshot_period(utc(2026, 11, 30, 12, 5))
    snapshot = build_snapshot(SHOP, november, series(november.end), None, None, SETTINGS, NO_COUNTS)
    rollup, _ = add_snapshot(None, snapshot)
    failed = view(period, problems=["its app metrics batch failed: timeout"], due="2026-11",
                  final_rollup=Blob(canonical_json(rollup), "etag"),
                  final_blobs={"monthly/shop/2026-11.json": None, "monthly/shop/2026-11.html": None})
    plan = plan_run(observed(period, [failed]), SETTINGS)
    assert [(a.kind, a.target) for a in plan if a.kind == "write-monthly"] == [
        ("write-monthly", "monthly/shop/2026-11.json"), ("write-monthly", "monthly/shop/2026-11.html")]


def test_the_rollup_counts_the_version_kept_in_storage_when_a_period_comes_out_different():
    period = snapshot_period(utc(2026, 11, 27, 18, 5))
    first = build_snapshot(SHOP, period, series(period.end), None, None, SETTINGS, NO_COUNTS)
    # the snapshot was written but the rollup write failed; now the data differs
    late = view(period, series=series(period.end, errors={(30, 0): 100}), latency=None, cache=None,
                snapshot=Blob(canonical_json(first), "e1"))
    plan = plan_run(observed(period, [late]), SETTINGS)
    kinds = {a.kind: a for a in plan}
    assert kinds["write-conflict"].params["kept"] == snapshot_path("shop", period)
    rollup = json.loads(kinds["write-rollup"].params["data"])
    entry = rollup["days"]["2026-11-27"]["periods"]["17:00"]
    assert entry["server_errors"] == first["requests"]["server_errors"] == 0
    assert counts_before(rollup, period) == NO_COUNTS


def test_a_missing_container_is_created_before_any_write():
    period = snapshot_period(utc(2026, 11, 27, 18, 5))
    plan = plan_run(observed(period, [view(period)], exists=False), SETTINGS)
    assert plan[0].kind == "create-container"
    assert all(plan[0].key in a.after for a in plan if a.kind.startswith("write-"))


def test_re_running_an_earlier_hour_after_later_ones_gives_the_same_snapshot():
    """A snapshot's budget is month to date through its own end: hours added to the
    rollup after it do not change it, so a re-run is no conflict."""
    hour17 = snapshot_period(utc(2026, 11, 27, 18, 5))
    hour18 = snapshot_period(utc(2026, 11, 27, 19, 5))
    first = build_snapshot(SHOP, hour17, series(hour17.end), None, None, SETTINGS, NO_COUNTS)
    rollup, _ = add_snapshot(None, first)
    later = build_snapshot(SHOP, hour18, series(hour18.end, errors={(20, 0): 500}), None, None,
                           SETTINGS, counts_before(rollup, hour18))
    rollup, _ = add_snapshot(rollup, later)
    assert rollup["summary"]["error_budget"]["consumed_minutes"] == 20
    again = view(hour17, latency=None, cache=None, snapshot=Blob(canonical_json(first), "e1"),
                 rollup=Blob(canonical_json(rollup), "e2"))
    plan = plan_run(observed(hour17, [again]), SETTINGS)
    assert [a for a in plan if a.kind.startswith("write-")] == []
