"""Lifecycle rules of the sla-snapshot job on the snapshot storage account,
merged into the account's one management policy.

A storage account has ONE management policy holding every rule, and writing
it replaces them all. The job owns exactly the rules whose name starts with
its prefix (``ops-sla-`` by default): it adds, updates and removes only
those. Every other rule is kept byte for byte, in its place.

Policies are dicts in the ARM REST shape (``ManagementPolicy.serialize()``
of azure-mgmt-storage gives ``{"properties": {"policy": ...}}``; both that and
``{"policy": {"rules": [...]}}`` are accepted; None is "no policy yet")::

    {"policy": {"rules": [{"enabled": true, "name": "ops-sla-snapshots",
                           "type": "Lifecycle",
                           "definition": {"actions": {"baseBlob": {
                                              "tierToCool": {"daysAfterModificationGreaterThan": 30},
                                              "delete": {"daysAfterModificationGreaterThan": 400}}},
                                          "filters": {"blobTypes": ["blockBlob"],
                                                      "prefixMatch": ["sla-snapshots/monthly/", ...]}}}]}}

Must never: import an Azure SDK, do I/O, or remove or change a rule it does
not own.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from jobs.sla_snapshot.config import SlaSnapshotSettings

MAX_RULES = 100  # Azure's limit per policy
AREAS = ("snapshots/", "rollups/", "monthly/")  # every blob the job writes lives under one
_TIER_ACTION = {"cool": "tierToCool", "cold": "tierToCold", "archive": "tierToArchive"}


class LifecycleError(ValueError):
    """The merged policy could not be written (too many rules, a malformed policy)."""


def desired_rules(settings: SlaSnapshotSettings) -> list[dict[str, Any]]:
    """The rules this job wants, from its settings (none when it neither tiers nor deletes)."""
    base: dict[str, Any] = {}
    if settings.lifecycle_tier != "none":
        base[_TIER_ACTION[settings.lifecycle_tier]] = {
            "daysAfterModificationGreaterThan": settings.lifecycle_tier_after_days}
    if settings.lifecycle_delete_after_days:
        base["delete"] = {"daysAfterModificationGreaterThan": settings.lifecycle_delete_after_days}
    if not base:
        return []
    container = settings.storage_container
    return [{"enabled": True, "name": f"{settings.lifecycle_rule_prefix}snapshots",
             "type": "Lifecycle",
             "definition": {"actions": {"baseBlob": base},
                            "filters": {"blobTypes": ["blockBlob"],
                                        "prefixMatch": [f"{container}/{area}" for area in AREAS]}}}]


def _rules(policy: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not policy:
        return []
    body = policy.get("properties", policy)
    rules = (body.get("policy") or {}).get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, dict) and r.get("name") for r in rules):
        raise LifecycleError("the existing management policy has rules without a name; "
                             "refusing to rewrite it")
    return rules


def _comparable(value: Any) -> Any:
    """A rule as Azure means it: nulls dropped, name lists unordered, 30 == 30.0."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [_comparable(v) for v in value]
        return sorted(items) if all(isinstance(i, str) for i in items) else items
    return value


def merge_policy(existing: Mapping[str, Any] | None, desired: list[dict[str, Any]],
                 prefix: str) -> tuple[dict[str, Any], bool]:
    """(the policy to write, whether it differs from ``existing``).

    Rules named ``prefix...`` are this job's: they become exactly ``desired``.
    Others keep their content and order; ours follow them. When nothing
    differs (ignoring rule order and the order of prefix and type lists),
    ``changed`` is False and the caller writes nothing.
    """
    if not prefix:
        raise LifecycleError("an empty prefix would claim every rule in the policy")
    if any(not rule["name"].startswith(prefix) for rule in desired):
        raise LifecycleError(f"every rule of this job must be named {prefix}...")
    current = _rules(existing)
    foreign = [copy.deepcopy(r) for r in current if not r["name"].startswith(prefix)]
    merged = foreign + [copy.deepcopy(r) for r in sorted(desired, key=lambda r: r["name"])]
    if len(merged) > MAX_RULES:
        raise LifecycleError(f"the policy would hold {len(merged)} rules; Azure allows {MAX_RULES}")
    before = {r["name"]: _comparable(r) for r in current}
    after = {r["name"]: _comparable(r) for r in merged}
    return {"policy": {"rules": merged}}, before != after
