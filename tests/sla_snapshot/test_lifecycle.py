"""Lifecycle rules merged into the account's one management policy: rules
other teams own are never removed or changed, ours are added or updated, and
a second run writes nothing."""
import copy

import pytest

from jobs.sla_snapshot.lifecycle import LifecycleError, desired_rules, merge_policy
from tests.sla_snapshot.helpers import settings

PREFIX = "ops-sla-"
FOREIGN = {  # another team's rule, with fields this job knows nothing about
    "enabled": False, "name": "logs-archive", "type": "Lifecycle",
    "definition": {"actions": {"baseBlob": {"tierToArchive": {"daysSinceLastTierChangeGreaterThan": 7,
                                                             "daysAfterModificationGreaterThan": 90}},
                               "snapshot": {"delete": {"daysAfterCreationGreaterThan": 30}}},
                   "filters": {"blobTypes": ["blockBlob", "appendBlob"], "prefixMatch": ["logs/"],
                               "blobIndexMatch": [{"name": "team", "op": "==", "value": "data"}]}}}
FOREIGN_2 = {"enabled": True, "name": "tmp-cleanup", "type": "Lifecycle",
             "definition": {"actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 1}}},
                            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["tmp/"]}}}


def policy(*rules):
    return {"policy": {"rules": [copy.deepcopy(r) for r in rules]}}


def ours(**overrides):
    return desired_rules(settings(**overrides))


def test_the_default_rule_cools_at_30_days_and_deletes_at_400():
    (rule,) = ours()
    assert rule["name"] == "ops-sla-snapshots" and rule["enabled"] is True
    assert rule["definition"]["actions"]["baseBlob"] == {
        "tierToCool": {"daysAfterModificationGreaterThan": 30},
        "delete": {"daysAfterModificationGreaterThan": 400}}
    assert rule["definition"]["filters"] == {
        "blobTypes": ["blockBlob"],
        "prefixMatch": ["sla-snapshots/snapshots/", "sla-snapshots/rollups/",
                        "sla-snapshots/monthly/"]}


@pytest.mark.parametrize("overrides, actions", [
    ({"lifecycle_tier": "cold", "lifecycle_tier_after_days": 10, "lifecycle_delete_after_days": 100},
     {"tierToCold": {"daysAfterModificationGreaterThan": 10},
      "delete": {"daysAfterModificationGreaterThan": 100}}),
    ({"lifecycle_tier": "none", "lifecycle_delete_after_days": 90},
     {"delete": {"daysAfterModificationGreaterThan": 90}}),
    ({"lifecycle_tier": "archive", "lifecycle_delete_after_days": 0},
     {"tierToArchive": {"daysAfterModificationGreaterThan": 30}}),
])
def test_rules_follow_the_settings(overrides, actions):
    assert ours(**overrides)[0]["definition"]["actions"]["baseBlob"] == actions


def test_our_rule_is_added_and_foreign_rules_are_kept_exactly_in_place():
    existing = policy(FOREIGN, FOREIGN_2)
    merged, changed = merge_policy(existing, ours(), PREFIX)
    assert changed
    assert merged["policy"]["rules"][:2] == [FOREIGN, FOREIGN_2]
    assert [r["name"] for r in merged["policy"]["rules"]] == [
        "logs-archive", "tmp-cleanup", "ops-sla-snapshots"]
    assert existing == policy(FOREIGN, FOREIGN_2)  # the input is not modified


def test_a_second_run_changes_nothing():
    merged, _ = merge_policy(policy(FOREIGN), ours(), PREFIX)
    again, changed = merge_policy(merged, ours(), PREFIX)
    assert not changed and again == merged


def test_the_policy_as_azure_returns_it_counts_as_unchanged():
    merged, _ = merge_policy(policy(FOREIGN), ours(), PREFIX)
    from_azure = {"properties": {"lastModifiedTime": "2026-11-27T18:00:00Z", "policy": {"rules": [
        # rules in another order, day counts as floats, list order and nulls differ
        {**merged["policy"]["rules"][1], "definition": {
            "actions": {"baseBlob": {"tierToCool": {"daysAfterModificationGreaterThan": 30.0},
                                     "delete": {"daysAfterModificationGreaterThan": 400.0},
                                     "enableAutoTierToHotFromCool": None}},
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": list(reversed(
                merged["policy"]["rules"][1]["definition"]["filters"]["prefixMatch"]))}}},
        FOREIGN]}}}
    _, changed = merge_policy(from_azure, ours(), PREFIX)
    assert not changed


def test_changed_settings_update_only_our_rule():
    merged, _ = merge_policy(policy(FOREIGN, FOREIGN_2), ours(), PREFIX)
    updated, changed = merge_policy(merged, ours(lifecycle_delete_after_days=800), PREFIX)
    assert changed
    assert updated["policy"]["rules"][:2] == [FOREIGN, FOREIGN_2]
    assert updated["policy"]["rules"][2]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 800}


def test_our_rules_no_longer_wanted_are_removed_and_foreign_ones_stay():
    stale = {**ours()[0], "name": "ops-sla-old-rule"}
    merged, changed = merge_policy(policy(FOREIGN, stale, FOREIGN_2), [], PREFIX)
    assert changed and merged["policy"]["rules"] == [FOREIGN, FOREIGN_2]


def test_no_policy_yet_gets_just_our_rule():
    for nothing in (None, {}, {"policy": {"rules": []}}):
        merged, changed = merge_policy(nothing, ours(), PREFIX)
        assert changed and [r["name"] for r in merged["policy"]["rules"]] == ["ops-sla-snapshots"]


def test_nothing_wanted_and_nothing_there_writes_nothing():
    merged, changed = merge_policy(policy(FOREIGN), [], PREFIX)
    assert not changed and merged["policy"]["rules"] == [FOREIGN]


def test_a_policy_that_would_exceed_100_rules_is_refused():
    many = [{**FOREIGN_2, "name": f"team-{i}"} for i in range(100)]
    with pytest.raises(LifecycleError, match="Azure allows 100"):
        merge_policy(policy(*many), ours(), PREFIX)


@pytest.mark.parametrize("prefix", ["", "tmp-"])
def test_the_job_never_claims_rules_outside_its_prefix(prefix):
    with pytest.raises(LifecycleError):
        merge_policy(policy(FOREIGN_2), ours(), prefix)
