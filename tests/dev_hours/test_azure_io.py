"""dev-hours observe/apply against the sandbox, through the real azure-mgmt-web client:
which reads a run spends (from the sandbox's request log), how the SDK models map onto
the planning dataclasses, how a plan write merges its tags, and how Azure's refusals
are worded."""
from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError

from jobs import service
from jobs.dev_hours import azure_io
from jobs.dev_hours.job import JOB
from jobs.dev_hours.state import RESTORE_TAG
from jobs.runner import RunContext
from tests.dev_hours.test_e2e import DEV, TEST, WORLD, Estate, configure, summary, utc

RG = "rg-hours"
SCOPE = f"/subscriptions/{DEV}/resourceGroups/{RG}"
SKUS = {"S1": ("Standard", "S"), "P1v3": ("PremiumV3", "Pv3"), "B1": ("Basic", "B"), "F1": ("Free", "F")}
RESTORE_S1_X2 = "name=S1;tier=Standard;size=S1;family=S;capacity=2;to=B1;to_capacity=1"


# -- a small estate in one resource group of the Dev subscription ----------------------------
def plan(name: str, sku: str = "S1", capacity: int = 2, tags: dict | None = None) -> dict:
    tier, family = SKUS[sku]
    return {"id": f"{SCOPE}/providers/Microsoft.Web/serverfarms/{name}", "name": name,
            "type": "Microsoft.Web/serverfarms", "kind": "app", "location": "West Europe",
            "tags": {"environment": "dev"} if tags is None else tags,
            "sku": {"name": sku, "tier": tier, "size": sku, "family": family, "capacity": capacity},
            "properties": {"status": "Ready", "geoRegion": "West Europe", "reserved": False,
                           "resourceGroup": RG, "provisioningState": "Succeeded"}}


def site(name: str, plan_name: str, *, always_on: bool = False, state: str = "Running",
         opted_in: bool = True, custom_domain: str | None = None, **properties) -> dict:
    bindings = [{"name": f"{name}.azurewebsites.net", "hostType": "Standard", "sslState": "Disabled"}]
    if custom_domain:
        bindings.append({"name": custom_domain, "hostType": "Standard", "sslState": "SniEnabled"})
    return {"id": f"{SCOPE}/providers/Microsoft.Web/sites/{name}", "name": name,
            "type": "Microsoft.Web/sites", "kind": "app", "location": "West Europe",
            "tags": {"environment": "dev", **({"ops-dev-hours": "default"} if opted_in else {})},
            "properties": {"state": state, "enabled": True, "hostNameSslStates": bindings,
                           "defaultHostName": f"{name}.azurewebsites.net", "resourceGroup": RG,
                           "serverFarmId": f"{SCOPE}/providers/Microsoft.Web/serverfarms/{plan_name}",
                           "siteConfig": {"alwaysOn": always_on, "numberOfWorkers": 1}, **properties}}


def slot(parent: dict, name: str, state: str = "Running") -> dict:
    return {**parent, "id": f"{parent['id']}/slots/{name}", "name": f"{parent['name']}/{name}",
            "type": "Microsoft.Web/sites/slots", "properties": {**parent["properties"], "state": state}}


def estate(*resources: dict) -> dict:
    group = {"id": SCOPE, "name": RG, "type": "Microsoft.Resources/resourceGroups",
             "location": "westeurope", "tags": {"environment": "dev"},
             "properties": {"provisioningState": "Succeeded"}}
    return {"subscriptions": {DEV: {"displayName": "Contoso Dev"}}, "resources": [group, *resources]}


def settings(monkeypatch, **dev_hours) -> None:
    monkeypatch.setenv("OPS_SUBSCRIPTIONS", DEV)
    for key, value in dev_hours.items():
        if value is None:
            monkeypatch.delenv(f"OPS_DEV_HOURS__{key.upper()}", raising=False)
        else:
            monkeypatch.setenv(f"OPS_DEV_HOURS__{key.upper()}", str(value))
    service.reset()


def context(now: str) -> RunContext:
    env = service.environment()
    return RunContext(job="dev-hours", run_id="test", now=utc(now), dry_run=True,
                      settings=env.settings, clients=env.clients, store=env.store)


def logged(app_env) -> list[dict]:
    """The request log once it is quiet: the sandbox logs a request just after answering it."""
    deadline, log = time.monotonic() + 2, app_env.sandbox.request_log()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        again = app_env.sandbox.request_log()
        if len(again) == len(log):
            break
        log = again
    return log


def requests(app_env, since: int = 0) -> list[tuple[str, str]]:
    """(operation, what it named) of the Microsoft.Web requests logged since ``since``."""
    out = []
    for e in logged(app_env)[since:]:
        if e["operation"].startswith("Microsoft.Web/"):
            path = e["path"].split("?")[0].split("/providers/Microsoft.Web/", 1)[-1].split("/")
            out.append((e["operation"], path[1] if len(path) > 1 else ""))
    return out


def config_reads(app_env, since: int = 0) -> list[str]:
    return sorted(name for op, name in requests(app_env, since) if op == "Microsoft.Web/sites/config/read")


def plan_read_back(clients, name: str):
    return clients.web(DEV).app_service_plans.get(RG, name)


MON_EVENING, TUE_MORNING = "2026-11-30T19:15:00Z", "2026-12-01T08:15:00Z"  # London = UTC in winter


# -- reads ----------------------------------------------------------------------------------
def test_with_resource_groups_configured_the_listing_carries_the_slots(world, app_env, monkeypatch):
    world(WORLD)
    configure(monkeypatch, resource_groups="rg-web-dev,rg-shop-test")
    estate_ = Estate(app_env)
    report, log, writes = estate_.run("2026-11-30T19:15:00Z")
    reads = sorted({e["operation"] for e in log if e["method"] == "GET"})
    assert reads == ["Microsoft.Web/serverfarms/list", "Microsoft.Web/serverfarms/sites/read",
                     "Microsoft.Web/sites/listByResourceGroup"]  # the plans to scale: their own app lists
    done = summary(writes)
    assert "app-web-dev/staging" in done["stop"] and "app-preview-dev/pr1" in done["stop"]
    assert not [n for n in done["stop"] if n.startswith(("app-report", "app-misc", "app-etl"))]  # rg-data-dev
    assert estate_.plans()["plan-web-dev"] == "S1 x1"  # slots known: B1 refused before any write


def test_a_subscription_that_cannot_be_listed_fails_the_run_but_not_the_others(world, app_env, monkeypatch):
    world(WORLD)
    configure(monkeypatch)
    monkeypatch.setenv("OPS_SUBSCRIPTIONS", f"{DEV},{TEST},0d000000-0000-0000-0000-00000000ffff")
    service.reset()
    report, log, writes = Estate(app_env).run("2026-11-30T19:15:00Z")
    assert report["status"] == "failed"
    assert any("0d000000-0000-0000-0000-00000000ffff: could not list sites and plans" in e
               and "SubscriptionNotFound" in e for e in report["errors"])
    assert "app-shop-test" in summary(writes)["stop"]


def test_always_on_is_read_only_for_a_downgrade_below_basic_and_blocks_it(world, app_env, clients,
                                                                        monkeypatch):
    world(estate(plan("plan-free"), site("app-a", "plan-free"), site("app-b", "plan-free", always_on=True),
                 plan("plan-busy"), site("app-c", "plan-busy"),
                 plan("plan-manual", capacity=1), site("app-d", "plan-manual", always_on=True, opted_in=False)))
    settings(monkeypatch, scale_down_sku="F1")
    observed = azure_io.observe(context(MON_EVENING))
    # the lists leave Always On null; config/web is read for the due targets, whose plans
    # would go below Basic, and for no one else (app-d is not a dev-hours target)
    assert config_reads(app_env) == ["app-a", "app-b", "app-c"]
    assert sorted(requests(app_env)) == sorted([
        ("Microsoft.Web/serverfarms/list", ""), ("Microsoft.Web/sites/list", ""),
        ("Microsoft.Web/sites/listByResourceGroup", ""),  # the group's slots, read once for 3 due apps
        *[("Microsoft.Web/sites/config/read", n) for n in ("app-a", "app-b", "app-c")],
        *[("Microsoft.Web/serverfarms/sites/read", n) for n in ("plan-busy", "plan-free")]])  # to scale
    assert {s.name: s.always_on for s in observed.sites} == {
        "app-a": False, "app-b": True, "app-c": False, "app-d": None}

    before = len(logged(app_env))
    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc(MON_EVENING))
    assert config_reads(app_env, before) == ["app-a", "app-b", "app-c"]
    scale = {a["target"].rsplit("/", 1)[-1]: a for a in report["actions"] if a["kind"] == "scale-down-plan"}
    assert "F1 (Free) refused: app-b uses Always On, which needs Basic or higher" in scale["plan-free"]["reason"]
    assert {n: a["status"] for n, a in scale.items()} == {"plan-free": "succeeded", "plan-busy": "succeeded"}
    assert plan_read_back(clients, "plan-free").sku.as_dict() == {
        "name": "S1", "tier": "Standard", "size": "S1", "family": "S", "capacity": 1}
    assert plan_read_back(clients, "plan-busy").sku.name == "F1"  # Azure took it: app-c has no Always On


@pytest.mark.parametrize("scale_down_sku", ["B1", None])
def test_without_a_downgrade_below_basic_no_configuration_is_read(world, app_env, monkeypatch, scale_down_sku):
    world(estate(plan("plan-a"), site("app-a", "plan-a", always_on=True)))
    settings(monkeypatch, scale_down_sku=scale_down_sku)
    observed = azure_io.observe(context(MON_EVENING))
    assert sorted(requests(app_env)) == [
        ("Microsoft.Web/serverfarms/list", ""), ("Microsoft.Web/serverfarms/sites/read", "plan-a"),
        ("Microsoft.Web/sites/list", ""),
        ("Microsoft.Web/sites/slots/list", "app-a")]  # its off transition is due: its slots, alone
    assert observed.sites[0].always_on is None  # not reported by the list, not needed


def test_no_slot_or_configuration_is_read_when_nothing_is_due(world, app_env, monkeypatch):
    app = site("app-a", "plan-a")
    world(estate(plan("plan-a"), app, slot(app, "staging"), plan("plan-b"), site("app-b", "plan-b")))
    settings(monkeypatch, scale_down_sku="F1")
    service.run("dev-hours", trigger="timer", dry_run=False, now=utc(MON_EVENING))  # stops, scales down
    before = len(logged(app_env))
    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc("2026-11-30T19:30:00Z"))
    assert sorted(requests(app_env, before)) == [
        ("Microsoft.Web/serverfarms/list", ""), ("Microsoft.Web/sites/list", "")]
    assert not [a for a in report["actions"] if a["status"] == "succeeded"]


# -- mapping --------------------------------------------------------------------------------
def test_observe_maps_sites_and_plans_from_the_list_responses(world, app_env, monkeypatch):
    subnet = (f"/subscriptions/{DEV}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/"
              "vnet-dev/subnets/apps")
    web = site("app-web", "plan-a", custom_domain="web.contoso.com")
    world(estate(plan("plan-a", "P1v3", 3, tags={"environment": "dev", "Owner": "team"}), web,
                 slot(web, "staging", state="Stopped"),
                 site("app-api", "plan-a", virtualNetworkSubnetId=subnet, state="Stopped")))
    settings(monkeypatch, resource_groups=RG)
    observed = azure_io.observe(context(MON_EVENING))
    sites = {s.name: s for s in observed.sites}
    assert set(sites) == {"app-web", "app-api"}
    a, b = sites["app-web"], sites["app-api"]
    assert (a.id, a.subscription, a.resource_group, a.kind) == (web["id"], DEV, RG, "app")
    assert a.plan_id.lower() == f"{SCOPE}/providers/Microsoft.Web/serverfarms/plan-a".lower()
    assert a.tags == {"environment": "dev", "ops-dev-hours": "default"}
    assert (a.state, a.custom_tls_domains, a.vnet_integrated, a.always_on) == ("Running", True, False, None)
    assert [(s.name, s.state) for s in a.slots] == [("staging", "Stopped")]
    assert (b.state, b.custom_tls_domains, b.vnet_integrated, b.slots) == ("Stopped", False, True, ())
    [p] = observed.plans
    assert (p.name, p.subscription, p.resource_group, p.number_of_sites) == ("plan-a", DEV, RG, 2)
    assert (p.sku.name, p.sku.tier, p.sku.family, p.sku.capacity) == ("P1v3", "PremiumV3", "Pv3", 3)
    assert p.tags == {"environment": "dev", "Owner": "team"}


# -- plan writes: tags ------------------------------------------------------------------------
def test_plan_writes_merge_their_tags_with_the_observed_ones_case_insensitively(world, app_env, clients,
                                                                                monkeypatch):
    """One PATCH carries the SKU and the restore tag, and a PATCH's tags replace them all:
    each write keeps the plan's other tags, and matches tag names whatever their case."""
    world(estate(plan("plan-b", tags={"Environment": "dev", "Owner": "team"}), site("app-b", "plan-b"),
                 # scaled down by a run whose state was lost; the tag's name re-cased by hand
                 plan("plan-a", "B1", 1, tags={"Environment": "dev", "OPS-DEV-HOURS-RESTORE": RESTORE_S1_X2,
                                               "owner": "team"}),
                 site("app-a", "plan-a", state="Stopped")))
    settings(monkeypatch, scale_down_sku="B1")
    service.run("dev-hours", trigger="timer", dry_run=False, now=utc(MON_EVENING))
    down = plan_read_back(clients, "plan-b")
    assert (down.sku.name, down.sku.capacity) == ("B1", 1)
    assert down.tags == {"Environment": "dev", "Owner": "team", RESTORE_TAG: RESTORE_S1_X2}
    assert plan_read_back(clients, "plan-a").tags["OPS-DEV-HOURS-RESTORE"] == RESTORE_S1_X2  # off: not yet

    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc(TUE_MORNING))
    restored = {a["target"].rsplit("/", 1)[-1]: a["status"] for a in report["actions"]
                if a["kind"] == "restore-plan"}
    assert restored == {"plan-a": "succeeded", "plan-b": "succeeded"}
    for name, tags in (("plan-b", {"Environment": "dev", "Owner": "team"}),
                       ("plan-a", {"Environment": "dev", "owner": "team"})):
        back = plan_read_back(clients, name)
        assert (back.sku.name, back.sku.capacity, back.tags) == ("S1", 2, tags), name


def test_plan_tags_merge_case_insensitively():
    current = {"Environment": "dev", "OPS-DEV-HOURS-RESTORE": "old", "owner": "team"}
    assert azure_io.plan_tags(current, {"ops-dev-hours-restore": "new"}, ()) == {
        "Environment": "dev", "owner": "team", "ops-dev-hours-restore": "new"}
    assert azure_io.plan_tags(current, {}, ["ops-dev-hours-restore"]) == {"Environment": "dev", "owner": "team"}


# -- plan writes: Azure's refusals --------------------------------------------------------------
def planned_scale_down(world, app_env, monkeypatch):
    """plan-a's scale-down to F1 as the job plans it, and the context to apply it in."""
    world(estate(plan("plan-a", tags={"environment": "dev"}), site("app-a", "plan-a")))
    settings(monkeypatch, scale_down_sku="F1")
    ctx = context(MON_EVENING)
    actions = JOB.plan(azure_io.observe(ctx), ctx)
    [action] = [a for a in actions if a.kind == "scale-down-plan"]
    assert action.params["sku"]["name"] == "F1"
    return action, ctx


def test_a_refused_downgrade_is_worded_with_app_services_own_message(world, app_env, clients, monkeypatch):
    """Always On turned on after the job looked: App Service refuses F1 (409, its PascalCase body)."""
    action, ctx = planned_scale_down(world, app_env, monkeypatch)
    clients.web(DEV).web_apps.update(RG, "app-a", {"properties": {"siteConfig": {"alwaysOn": True}}})
    before = len(logged(app_env))
    with pytest.raises(azure_io.AzureRefusal) as refused:
        azure_io.apply(action, ctx)
    assert str(refused.value) == (
        "refused by Azure: There was a conflict. AlwaysOn cannot be set for this site as the plan does not "
        "allow it. For more information on pricing and features, please see: "
        "https://aka.ms/appservicepricingdetails")
    assert [(e["method"], e["status"]) for e in logged(app_env)[before:]
            if e["operation"] == "Microsoft.Web/serverfarms/write"] == [("PATCH", 409)]
    kept = plan_read_back(clients, "plan-a")
    assert (kept.sku.name, kept.sku.capacity, kept.tags) == ("S1", 2, {"environment": "dev"})


def test_a_refusal_in_arms_error_shape_is_worded_with_its_message(world, app_env, monkeypatch):
    """The plan was deleted after the job looked: Resource Manager's 404 `{"error": ...}`."""
    action, ctx = planned_scale_down(world, app_env, monkeypatch)
    app_env.world.delete(action.target)
    with pytest.raises(azure_io.AzureRefusal) as refused:
        azure_io.apply(action, ctx)
    assert str(refused.value) == (
        "refused by Azure: The Resource 'Microsoft.Web/serverfarms/plan-a' under resource group 'rg-hours' "
        "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def test_throttling_is_not_a_refusal(world, app_env, monkeypatch):
    """429 on the PATCH (which the SDK does not retry): the error stays the SDK's, for the next run."""
    action, ctx = planned_scale_down(world, app_env, monkeypatch)
    app_env.sandbox.faults.configure({"rules": [
        {"operation": "Microsoft.Web/serverfarms/write", "rate_429": 1.0, "retry_after": 1}]})
    with pytest.raises(HttpResponseError) as err:
        azure_io.apply(action, ctx)
    assert not isinstance(err.value, azure_io.AzureRefusal) and err.value.status_code == 429
    assert azure_io.azure_refusal(err.value) is None
