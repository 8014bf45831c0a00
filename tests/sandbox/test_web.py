"""Microsoft.Web in the sandbox, through the real azure-mgmt-web client: sites,
slots and App Service plans, paging, LROs, refused downgrades, throttling and
the request log."""
import copy
import json
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from sandbox.stack import DEMO_WORLD
from sandbox.world import load_world_file

WEB_WORLD = Path(__file__).resolve().parents[2] / "sandbox" / "worlds" / "demo" / "web.json"
DEV = "00000000-0000-0000-0000-000000000001"
PROD = "00000000-0000-0000-0000-000000000002"


@pytest.fixture
def web(world, clients):
    """The Dev/Test subscription's client over the web world alone."""
    world(WEB_WORLD)
    return clients.web(DEV)


def operations(app_env, count):
    """The logged Microsoft.Web (operation, status) pairs, once `count` are there: the
    server logs a request just after answering it, so the last one may lag a moment."""
    deadline = time.monotonic() + 2
    while True:
        logged = [(e["operation"], e["status"]) for e in app_env.sandbox.request_log()
                  if e["operation"].startswith("Microsoft.Web/")]
        if len(logged) >= count or time.monotonic() > deadline:
            return logged
        time.sleep(0.01)


def refusal(err: HttpResponseError) -> dict:
    """App Service's own error body (PascalCase), as its validation errors come."""
    return json.loads(err.response.text())


# -- the world --------------------------------------------------------------------
def test_the_demo_world_includes_the_web_estate():
    ids = {r["id"].lower() for r in load_world_file(DEMO_WORLD)["resources"]}
    plan = f"/subscriptions/{DEV}/resourcegroups/rg-shopfront-dev/providers/microsoft.web/serverfarms/" \
           "plan-shopfront-dev"
    assert plan in ids


def test_the_world_file_is_consistent_as_stored():
    resources = load_world_file(WEB_WORLD)["resources"]
    ids = {r["id"].lower() for r in resources}
    for plan in (r for r in resources if r["type"] == "Microsoft.Web/serverfarms"):
        sites = [r for r in resources if r["type"] == "Microsoft.Web/sites"
                 and r["properties"]["serverFarmId"].lower() == plan["id"].lower()]
        assert plan["properties"]["numberOfSites"] == len(sites), plan["name"]
        assert plan["properties"]["numberOfWorkers"] == plan["sku"]["capacity"]
    for r in resources:
        if r["type"].startswith("Microsoft.Web/sites"):
            assert r["properties"]["serverFarmId"].lower() in ids, r["name"]
        assert "/".join(r["id"].split("/")[:5]).lower() in ids, r["name"]  # its resource group


def test_plans_count_the_sites_that_point_at_them(web, clients):
    for sub in (DEV, PROD):
        client = clients.web(sub)
        sites = list(client.web_apps.list())
        for plan in client.app_service_plans.list():
            on_plan = [s for s in sites if s.server_farm_id.lower() == plan.id.lower()]
            assert plan.number_of_sites == len(on_plan) > 0, plan.name
            assert plan.number_of_workers == plan.sku.capacity
            assert all(s.properties.sku == plan.sku.tier for s in on_plan)


# -- sites --------------------------------------------------------------------------
def test_lists_the_sites_of_a_subscription_across_pages(web, app_env):
    names = [s.name for s in web.web_apps.list()]
    assert len(names) == 8 > app_env.sandbox.page_size
    assert {"app-shopfront-dev", "app-shopfront-staging", "app-payments-dev"} <= set(names)
    assert "app-shopfront-prod" not in names  # another subscription
    assert operations(app_env, 2) == [("Microsoft.Web/sites/list", 200)] * 2


def test_lists_the_sites_of_a_resource_group(web, app_env):
    sites = list(web.web_apps.list_by_resource_group("rg-shopfront-staging"))
    assert sorted(s.name for s in sites) == ["app-shopfront-api-staging", "app-shopfront-staging"]
    with_slots = list(web.web_apps.list_by_resource_group("rg-shopfront-staging", include_slots=True))
    assert "app-shopfront-staging/preview" in {s.name for s in with_slots}
    assert operations(app_env, 2)[0] == ("Microsoft.Web/sites/listByResourceGroup", 200)


def test_gets_a_site_as_arm_returns_it(web):
    site = web.web_apps.get("rg-shopfront-dev", "app-shopfront-api-dev")
    assert site.type == "Microsoft.Web/sites" and site.kind == "app"
    assert site.state == "Running" and site.enabled
    assert site.tags["ops-dev-hours"] == "Mon-Fri 07:30-18:00; tz=America/New_York"
    assert site.site_config.always_on is None  # named, not valued: config/web has it
    assert site.server_farm_id.endswith("/serverfarms/plan-shopfront-dev")
    assert site.default_host_name == "app-shopfront-api-dev.azurewebsites.net"


def test_sites_are_listed_and_got_with_site_config_values_null(web, app_env):
    # azure-rest-api-specs#12104: the names of siteConfig's properties, without their values
    listed = {s.name: s for s in web.web_apps.list()}
    got = web.web_apps.get("rg-shopfront-dev", "app-shopfront-api-dev")
    slot = web.web_apps.get_slot("rg-shopfront-staging", "app-shopfront-staging", "preview")
    for site in (listed["app-shopfront-api-dev"], listed["app-shopfront-dev"], got, slot):
        config = site.site_config
        assert (config.always_on, config.number_of_workers, config.min_tls_version) == (None, None, None)
        assert config.acr_use_managed_identity_creds is False
    raw = app_env.world.get(got.id)["properties"]["siteConfig"]
    assert raw["alwaysOn"] is True  # the world still has it, for config/web


def test_reads_a_sites_configuration(web, app_env):
    # WebApps_GetConfiguration, shaped as stable/2024-04-01/examples/GetSiteConfig.json
    config = web.web_apps.get_configuration("rg-shopfront-dev", "app-shopfront-api-dev")
    assert config.id.endswith("/sites/app-shopfront-api-dev/config/web")
    assert (config.name, config.type, config.kind) == ("web", "Microsoft.Web/sites/config", "app")
    assert (config.always_on, config.number_of_workers, config.net_framework_version,
            config.http20_enabled, config.ftps_state) == (True, 1, "v8.0", True, "Disabled")
    assert config.managed_pipeline_mode == "Integrated"  # the example's, where the world says nothing
    assert web.web_apps.get_configuration("rg-shopfront-dev", "app-shopfront-dev").always_on is False
    with pytest.raises(ResourceNotFoundError) as missing:
        web.web_apps.get_configuration("rg-shopfront-dev", "app-nope")
    assert missing.value.error.code == "ResourceNotFound"
    assert operations(app_env, 3) == [("Microsoft.Web/sites/config/read", 200)] * 2 + [
        ("Microsoft.Web/sites/config/read", 404)]


def test_a_configuration_read_follows_a_patch_of_site_config(web):
    patched = web.web_apps.update("rg-payments-dev", "app-payments-dev",
                                  {"properties": {"siteConfig": {"alwaysOn": True}}})
    assert patched.site_config.always_on is None
    assert web.web_apps.get_configuration("rg-payments-dev", "app-payments-dev").always_on is True


def test_unknown_site_and_resource_group_answer_arm_404s(web):
    with pytest.raises(ResourceNotFoundError) as missing:
        web.web_apps.get("rg-shopfront-dev", "app-nope")
    assert missing.value.error.code == "ResourceNotFound"
    assert "Microsoft.Web/sites/app-nope" in missing.value.error.message
    with pytest.raises(ResourceNotFoundError) as no_group:
        list(web.web_apps.list_by_resource_group("rg-nope"))
    assert no_group.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as no_plan:
        web.app_service_plans.get("rg-shopfront-dev", "plan-nope")
    assert no_plan.value.error.code == "ResourceNotFound"


def test_unknown_subscription_is_404(world, clients):
    world(WEB_WORLD)
    with pytest.raises(ResourceNotFoundError) as err:
        list(clients.web("00000000-0000-0000-0000-00000000ffff").web_apps.list())
    assert err.value.error.code == "SubscriptionNotFound"


def test_stops_and_starts_a_site(web, app_env):
    web.web_apps.stop("rg-shopfront-dev", "app-shopfront-dev")
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev").state == "Stopped"
    web.web_apps.start("rg-shopfront-dev", "app-shopfront-dev")
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev").state == "Running"
    assert [op for op, _ in operations(app_env, 4)] == [
        "Microsoft.Web/sites/stop", "Microsoft.Web/sites/read",
        "Microsoft.Web/sites/start", "Microsoft.Web/sites/read"]


def test_a_site_stopped_by_hand_is_seen_stopped(web):
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-worker-dev").state == "Stopped"


def test_updates_a_sites_tags_with_patch(web, app_env):
    site = web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev")
    tags = {**site.tags, "ops-keep-on-until": "2030-01-01T00:00:00Z"}
    updated = web.web_apps.update("rg-shopfront-dev", "app-shopfront-dev", {"tags": tags})
    assert updated.tags == tags
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev").tags == tags
    assert ("Microsoft.Web/sites/write", 200) in operations(app_env, 3)


def test_always_on_cannot_be_set_on_a_plan_without_it(world, clients):
    data = copy.deepcopy(load_world_file(WEB_WORLD))
    plan = next(r for r in data["resources"] if r["name"] == "plan-payments-dev")
    plan["sku"] = {"name": "F1", "tier": "Free", "size": "F1", "family": "F", "capacity": 1}
    world(data)
    with pytest.raises(HttpResponseError) as err:
        clients.web(DEV).web_apps.update("rg-payments-dev", "app-payments-dev",
                                         {"properties": {"siteConfig": {"alwaysOn": True}}})
    assert err.value.status_code == 409
    assert "AlwaysOn cannot be set" in refusal(err.value)["Message"]


# -- deployment slots -----------------------------------------------------------------
def test_lists_gets_stops_and_starts_a_slot(web, app_env):
    slots = list(web.web_apps.list_slots("rg-shopfront-staging", "app-shopfront-staging"))
    assert [s.name for s in slots] == ["app-shopfront-staging/preview"]
    assert slots[0].type == "Microsoft.Web/sites/slots"
    web.web_apps.stop_slot("rg-shopfront-staging", "app-shopfront-staging", "preview")
    assert web.web_apps.get_slot("rg-shopfront-staging", "app-shopfront-staging", "preview").state == "Stopped"
    assert web.web_apps.get("rg-shopfront-staging", "app-shopfront-staging").state == "Running"
    web.web_apps.start_slot("rg-shopfront-staging", "app-shopfront-staging", "preview")
    assert web.web_apps.get_slot("rg-shopfront-staging", "app-shopfront-staging", "preview").state == "Running"
    with pytest.raises(ResourceNotFoundError):
        web.web_apps.get_slot("rg-shopfront-staging", "app-shopfront-staging", "nope")
    assert [op for op, _ in operations(app_env, 3)][:3] == [
        "Microsoft.Web/sites/slots/list", "Microsoft.Web/sites/slots/stop", "Microsoft.Web/sites/slots/read"]


# -- App Service plans --------------------------------------------------------------------
def test_lists_and_gets_plans(web, app_env):
    assert sorted(p.name for p in web.app_service_plans.list()) == [
        "plan-payments-dev", "plan-shopfront-dev", "plan-shopfront-staging"]
    [plan] = web.app_service_plans.list_by_resource_group("rg-shopfront-dev")
    assert plan.sku.as_dict() == {"name": "S1", "tier": "Standard", "size": "S1", "family": "S", "capacity": 2}
    got = web.app_service_plans.get("rg-shopfront-staging", "plan-shopfront-staging")
    assert (got.sku.name, got.sku.tier, got.maximum_number_of_workers) == ("P1v3", "PremiumV3", 30)
    assert [op for op, _ in operations(app_env, 3)] == [
        "Microsoft.Web/serverfarms/list", "Microsoft.Web/serverfarms/listByResourceGroup",
        "Microsoft.Web/serverfarms/read"]


def test_lists_the_apps_of_a_plan_from_every_resource_group_without_slots(web, app_env):
    # AppServicePlans_ListWebApps: the apps whose serverFarmId is the plan, paged, slots not among them
    plan_id = web.app_service_plans.get("rg-shopfront-staging", "plan-shopfront-staging").id
    site = app_env.world.get(web.web_apps.get("rg-shopfront-staging", "app-shopfront-api-staging").id)
    moved = {**copy.deepcopy(site), "name": "app-other-rg", "tags": {"environment": "production"},
             "id": f"/subscriptions/{DEV}/resourceGroups/rg-payments-dev/providers/Microsoft.Web/sites/"
                   "app-other-rg"}
    moved["properties"]["resourceGroup"] = "rg-payments-dev"
    app_env.world.put(moved)
    apps = list(web.app_service_plans.list_web_apps("rg-shopfront-staging", "plan-shopfront-staging"))
    assert sorted((a.name, a.resource_group, a.type) for a in apps) == [
        ("app-other-rg", "rg-payments-dev", "Microsoft.Web/sites"),
        ("app-shopfront-api-staging", "rg-shopfront-staging", "Microsoft.Web/sites"),
        ("app-shopfront-staging", "rg-shopfront-staging", "Microsoft.Web/sites")]
    assert all(a.server_farm_id.lower() == plan_id.lower() for a in apps)
    assert next(a for a in apps if a.name == "app-other-rg").tags == {"environment": "production"}
    many = list(web.app_service_plans.list_web_apps("rg-shopfront-dev", "plan-shopfront-dev"))
    assert len(many) == 5
    with pytest.raises(ResourceNotFoundError):
        list(web.app_service_plans.list_web_apps("rg-shopfront-dev", "plan-nope"))
    assert ("Microsoft.Web/serverfarms/sites/read", 200) in operations(app_env, 2)


@pytest.mark.parametrize("denied, allowed, refused", [
    pytest.param({"scope": f"/subscriptions/{DEV}"}, [], ["plans", "sites", "plan apps"], id="a-subscription"),
    pytest.param({"scope": f"/subscriptions/{DEV}/resourceGroups/RG-SHOPFRONT-DEV",
                  "actions": ["Microsoft.Web/serverfarms/sites/read"]}, ["plans", "sites"], ["plan apps"],
                 id="one-action-on-a-group"),
])
def test_a_permission_the_identity_lacks_is_arms_403(web, app_env, denied, allowed, refused):
    app_env.world.sections["denied"] = [denied]
    calls = {"plans": lambda: list(web.app_service_plans.list()), "sites": lambda: list(web.web_apps.list()),
             "plan apps": lambda: list(web.app_service_plans.list_web_apps("rg-shopfront-dev", "plan-shopfront-dev"))}
    for name in allowed:
        assert calls[name]()
    for name in refused:
        with pytest.raises(HttpResponseError) as err:
            calls[name]()
        assert err.value.status_code == 403
        error = json.loads(err.value.response.text())["error"]
        assert error["code"] == "AuthorizationFailed"
        assert "does not have authorization to perform action 'Microsoft.Web/" in error["message"]
    if "plan apps" in refused:
        assert "action 'Microsoft.Web/serverfarms/sites/read' over scope '/subscriptions/" in error["message"]


def test_scales_a_plan_down_and_restores_it_with_the_long_running_put(web, app_env):
    before = web.app_service_plans.get("rg-shopfront-dev", "plan-shopfront-dev")
    down = web.app_service_plans.begin_create_or_update(
        "rg-shopfront-dev", "plan-shopfront-dev",
        {"location": before.location, "tags": before.tags, "sku": {"name": "B1", "capacity": 1}}).result()
    assert (down.sku.tier, down.sku.capacity, down.number_of_workers) == ("Basic", 1, 1)
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev").properties.sku == "Basic"
    restored = web.app_service_plans.begin_create_or_update(
        "rg-shopfront-dev", "plan-shopfront-dev",
        {"location": before.location, "tags": before.tags, "sku": before.sku.as_dict()}).result()
    assert restored.sku.as_dict() == before.sku.as_dict() and restored.tags == before.tags
    log = app_env.sandbox.request_log()
    writes = [e for e in log if e["operation"] == "Microsoft.Web/serverfarms/write"]
    assert [(e["method"], e["status"]) for e in writes] == [("PUT", 202)] * 2
    polls = [e for e in log if e["operation"] == "Microsoft.Web/serverfarms/operationresults/read"]
    assert polls and all("/serverfarms/plan-shopfront-dev/operationresults/" in e["path"] for e in polls)


def test_patches_a_plans_sku_and_tags(web, app_env):
    plan = web.app_service_plans.update("rg-shopfront-dev", "plan-shopfront-dev",
                                        {"sku": {"name": "S1", "capacity": 1}, "tags": {"environment": "dev"}})
    assert (plan.sku.capacity, plan.tags) == (1, {"environment": "dev"})
    assert web.app_service_plans.get("rg-shopfront-dev", "plan-shopfront-dev").sku.capacity == 1
    assert ("Microsoft.Web/serverfarms/write", 200) in operations(app_env, 2)


def test_creates_a_plan(web):
    plan = web.app_service_plans.begin_create_or_update(
        "rg-payments-dev", "plan-payments-batch-dev",
        {"location": "West Europe", "kind": "app", "sku": {"name": "P1v3"}}).result()
    assert plan.sku.as_dict() == {"name": "P1v3", "tier": "PremiumV3", "size": "P1v3", "family": "Pv3",
                                  "capacity": 1}
    assert plan.number_of_sites == 0


def test_refuses_a_downgrade_the_slots_forbid_and_keeps_the_plan(web):
    with pytest.raises(HttpResponseError) as err:
        web.app_service_plans.update("rg-shopfront-staging", "plan-shopfront-staging",
                                     {"sku": {"name": "B1", "capacity": 1}})
    assert err.value.status_code == 409
    body = refusal(err.value)
    assert body["Code"] == "Conflict"
    assert body["Message"] == ("Cannot complete the operation because the site will exceed the number "
                               "of slots allowed for the 'Basic' SKU.")
    assert "slots allowed" in str(err.value)  # what a caller logs
    assert web.app_service_plans.get("rg-shopfront-staging", "plan-shopfront-staging").sku.name == "P1v3"


def test_refuses_a_downgrade_through_the_long_running_put_too(web):
    with pytest.raises(HttpResponseError) as err:
        web.app_service_plans.begin_create_or_update(
            "rg-shopfront-dev", "plan-shopfront-dev", {"location": "West Europe", "sku": {"name": "F1", "capacity": 1}})
    assert err.value.status_code == 409
    assert "AlwaysOn cannot be set" in refusal(err.value)["Message"]  # app-shopfront-api-dev


def _one_app_world(**site_properties):
    """A Standard plan with one app carrying the given features."""
    data = copy.deepcopy(load_world_file(WEB_WORLD))
    data["resources"] = [r for r in data["resources"] if "/resourceGroups/rg-payments-dev" in r["id"]]
    site = next(r for r in data["resources"] if r["name"] == "app-payments-dev")
    site["properties"].update(site_properties)
    return data


@pytest.mark.parametrize("features, target, status, message", [
    ({}, "F1", None, None),
    ({"siteConfig": {"alwaysOn": True}}, "D1", 409, "AlwaysOn cannot be set for this site"),
    ({"siteConfig": {"alwaysOn": True}}, "B1", None, None),
    ({"virtualNetworkSubnetId": "/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/"
                                "virtualNetworks/v/subnets/s"}, "F1", 409, "Regional VNET integration"),
    ({"hostNameSslStates": [{"name": "pay.contoso.com", "hostType": "Standard", "sslState": "SniEnabled"}]},
     "D1", 400, "hostname 'pay.contoso.com' because its current SSL configuration 'SNI enabled'"),
    ({"hostNameSslStates": [{"name": "pay.contoso.com", "hostType": "Standard", "sslState": "IpBasedEnabled"}]},
     "B1", None, None),
])
def test_feature_floors_of_a_downgrade(world, clients, features, target, status, message):
    world(_one_app_world(**features))
    plans = clients.web(DEV).app_service_plans
    if status is None:
        assert plans.update("rg-payments-dev", "plan-payments-dev", {"sku": {"name": target}}).sku.name == target
        return
    with pytest.raises(HttpResponseError) as err:
        plans.update("rg-payments-dev", "plan-payments-dev", {"sku": {"name": target}})
    assert err.value.status_code == status
    assert message in refusal(err.value)["Message"]
    assert plans.get("rg-payments-dev", "plan-payments-dev").sku.name == "B1"


@pytest.mark.parametrize("sku, capacity, allowed", [
    ("B1", 3, True), ("B1", 4, False), ("S1", 10, True), ("S1", 11, False),
    ("P1v3", 30, True), ("P1v3", 31, False), ("F1", 2, False)])
def test_capacity_is_capped_by_tier(world, clients, sku, capacity, allowed):
    world(_one_app_world())
    plans = clients.web(DEV).app_service_plans
    if allowed:
        assert plans.update("rg-payments-dev", "plan-payments-dev",
                            {"sku": {"name": sku, "capacity": capacity}}).sku.capacity == capacity
        return
    with pytest.raises(HttpResponseError) as err:
        plans.update("rg-payments-dev", "plan-payments-dev", {"sku": {"name": sku, "capacity": capacity}})
    assert err.value.status_code == 400
    assert "allows at most" in refusal(err.value)["Message"]


def test_a_feature_no_read_shows_refuses_lower_tiers_in_arms_error_shape(world, clients):
    """A plan's `_sandbox.refuse_below` (hybrid connections, backups...): ARM's {"error": ...}."""
    data = _one_app_world()
    plan = next(r for r in data["resources"] if r["name"] == "plan-payments-dev")
    plan["_sandbox"] = {"refuse_below": {"tier": "Basic", "status": 409, "code": "Conflict",
                                         "message": "Hybrid connections need the Basic tier or above."}}
    world(data)
    plans = clients.web(DEV).app_service_plans
    with pytest.raises(HttpResponseError) as err:
        plans.update("rg-payments-dev", "plan-payments-dev", {"sku": {"name": "F1"}})
    assert err.value.status_code == 409 and err.value.error.code == "Conflict"
    assert json.loads(err.value.response.text()) == {
        "error": {"code": "Conflict", "message": "Hybrid connections need the Basic tier or above."}}
    assert plans.update("rg-payments-dev", "plan-payments-dev",
                        {"sku": {"name": "B1", "capacity": 2}}).sku.capacity == 2  # same tier: fine
    assert "_sandbox" not in json.dumps(plans.get("rg-payments-dev", "plan-payments-dev").as_dict())


# -- throttling -----------------------------------------------------------------------------
def test_a_throttled_read_is_retried_by_the_client(web, app_env):
    # Seed 1 draws 0.134 then 0.847: the first request is throttled, the retry is not.
    app_env.sandbox.faults.configure({"seed": 1, "rules": [
        {"operation": "Microsoft.Web/sites/read", "rate_429": 0.5, "retry_after": 1}]})
    assert web.web_apps.get("rg-shopfront-dev", "app-shopfront-dev").name == "app-shopfront-dev"
    assert operations(app_env, 2) == [("Microsoft.Web/sites/read", 429), ("Microsoft.Web/sites/read", 200)]
