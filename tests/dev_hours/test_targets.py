"""The production rule of dev-hours, table-driven: which tags, values and names
(of apps, slots, plans and resource groups) deny an app or a plan, that the
built-in rule holds whatever is configured, and what merely looks like prod."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.resources import Plan, Site, Slot
from jobs.dev_hours.skus import sku_from_name
from jobs.dev_hours.targets import classify, plan_deny_reason

SUB = "00000000-0000-0000-0000-0000000000aa"
NOW = datetime(2026, 11, 27, 18, 5, tzinfo=timezone.utc)


def site(name: str = "web-dev", rg: str = "rg-dev", tags: dict | None = None, **kw) -> Site:
    return Site(id=f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}",
                name=name, subscription=SUB, resource_group=rg, state="Running",
                plan_id=f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/serverfarms/asp",
                tags={"ops-dev-hours": "default", **(tags or {})}, **kw)


def plan(name: str = "asp-dev", rg: str = "rg-dev", tags: dict | None = None) -> Plan:
    return Plan(id=f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/serverfarms/{name}",
                name=name, subscription=SUB, resource_group=rg, sku=sku_from_name("S1"), tags=tags or {})


@pytest.mark.parametrize("app, host, config, rule", [
    pytest.param(site(tags={"stage": "prd"}), plan(), {}, "stage=prd", id="stage-prd"),
    pytest.param(site(tags={"environment": "Production-EU"}), plan(), {}, "environment=Production-EU",
                 id="production-eu"),
    pytest.param(site(tags={"Env": "prod-2"}), plan(), {}, "Env=prod-2", id="prod-2"),
    pytest.param(site(tags={"TIER": "eu prod"}), plan(), {}, "TIER=eu prod", id="tier-tokens"),
    pytest.param(site(tags={"environment": "PRD3"}), plan(), {}, "environment=PRD3", id="prd3"),
    pytest.param(site(rg="rg-payments-prod"), plan(), {}, "resource group 'rg-payments-prod'",
                 id="app-resource-group"),
    pytest.param(site(), plan(rg="RG.Shared.Production"), {}, "resource group 'RG.Shared.Production'",
                 id="plan-resource-group"),
    pytest.param(site(), plan(tags={"stage": "Prod"}), {}, "its plan 'asp-dev' has tag stage=Prod",
                 id="plan-stage-tag"),
    pytest.param(site(tags={"workload": "payments-live"}), plan(),
                 {"deny_tag_keys": "workload", "deny_tag_values": "live"},
                 "OPS_DEV_HOURS__DENY_TAG_VALUES", id="extra-key-and-value-as-token"),
    pytest.param(site(tags={"workload": "prod"}), plan(), {"deny_tag_keys": "workload"},
                 "built-in production rule", id="extra-key-built-in-value"),
    pytest.param(site(rg="rg-payments-dev"), plan(), {"deny_name_pattern": "^rg-payments"},
                 "OPS_DEV_HOURS__DENY_NAME_PATTERN", id="extra-pattern-on-resource-group"),
    # configuration only adds: the built-in keys, values and names hold whatever is set
    pytest.param(site(tags={"stage": "prd"}), plan(), {"deny_tag_keys": "workload", "deny_tag_values": "live"},
                 "stage=prd", id="extras-keep-built-in-tags"),
    pytest.param(site(rg="rg-payments-prod"), plan(), {"deny_name_pattern": "^legacy-"},
                 "resource group 'rg-payments-prod'", id="extras-keep-built-in-names"),
])
def test_production_is_denied(app, host, config, rule):
    c = classify(replace(app, plan_id=host.id), host, NOW, DevHoursSettings(**config))
    assert c.status == "denied" and rule in c.reason


@pytest.mark.parametrize("tags, rg", [
    ({"stage": "preprod"}, "rg-dev"),
    ({"environment": "nonprod"}, "rg-dev"),
    ({"env": "products"}, "rg-dev"),
    ({"tier": "frontend"}, "rg-product-dev"),
    ({"owner": "prod-team"}, "rg-reproducer"),  # not an environment key
])
def test_what_merely_contains_prod_is_not_denied(tags, rg):
    host = plan()
    c = classify(replace(site(rg=rg, tags=tags), plan_id=host.id), host, NOW, DevHoursSettings())
    assert c.status == "target", c.reason


@pytest.mark.parametrize("host, config, rule", [
    (plan(rg="rg-payments-prod"), {}, "resource group 'rg-payments-prod'"),
    (plan(tags={"environment": "Production-EU"}), {}, "environment=Production-EU"),
    (plan(tags={"cost-center": "live"}), {"deny_tag_keys": "Cost-Center", "deny_tag_values": "live"},
     "cost-center=live"),
])
def test_a_production_plan_is_denied(host, config, rule):
    assert rule in (plan_deny_reason(host, DevHoursSettings(**config)) or "")


def test_a_slot_named_like_production_denies_its_app():
    c = classify(site(slots=(Slot("prd-eu", "Running"),)), None, NOW, DevHoursSettings())
    assert c.status == "denied" and "slot name 'prd-eu'" in c.reason


def test_a_bad_extra_tag_key_names_the_fault():
    with pytest.raises(ValueError, match="'a/b' is not a usable tag name"):
        DevHoursSettings(deny_tag_keys="env,a/b")
