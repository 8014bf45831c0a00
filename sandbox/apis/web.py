"""Microsoft.Web (App Service): web apps, their deployment slots and App Service
plans (serverfarms), as azure-mgmt-web 11.x calls them (api-version 2025-05-01).

Serves: list/get sites (by subscription and resource group), start/stop,
PATCH (tags and properties), GET config/web, restart and Key Vault reference
refresh (answered, nothing else changes); list/get/start/stop slots;
list/get plans and the apps on a plan, PUT (a long-running operation, 202 as in
the spec examples) and PATCH, changing SKU, capacity and tags. A plan change that the plan's apps' features forbid is
refused as App Service refuses it: App Service's own error body (`Code`,
`Message`, `Details`, PascalCase, not ARM's `{"error": ...}`), 409 or 400. A plan's
private `_sandbox.refuse_below` stands for a feature no read shows (backups, hybrid
connections...): SKUs below its tier are refused in ARM's `{"error": {"code", "message"}}`.

Feature floors (tier rank: Free < Shared < Basic < Standard < Premium*):
deployment slots need Standard; Always On, regional VNet integration (site
`properties.virtualNetworkSubnetId`) and TLS bindings on custom domains
(`hostNameSslStates[].sslState` SniEnabled/IpBasedEnabled) need Basic. VNet
integration once needed Standard on older scale units; Basic is today's rule.
Instances per tier: Free/Shared 1, Basic 3, Standard 10, Premium* 30.

Consistency: a plan's `numberOfSites`, `numberOfWorkers` and
`maximumNumberOfWorkers` and a site's `properties.sku` are derived when
answering, from the sites' `serverFarmId` and the plan's SKU, so they cannot
drift. A site's `siteConfig` is stored in the world but, as Resource Manager
does, answered only by config/web: site lists and gets carry `siteConfig` with
its property names and null values (azure-rest-api-specs#12104).
Wire shapes follow azure-rest-api-specs, under
specification/web/resource-manager/Microsoft.Web/: AppService/examples/2025-05-01/
(cited per handler as examples/<file>) or, where 2025-05-01 has no such example,
stable/2024-04-01/examples/<file>. Never reaches the network.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from typing import Any, Callable

from sandbox.apis.operations import accepted, operation_status
from sandbox.server import ApiError, Request, Response, paged, route
from sandbox.world import World, public

WEB = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web"
SITE = WEB + "/sites/{name}"
SLOT = SITE + "/slots/{slot}"
PLAN = WEB + "/serverfarms/{name}"
SITE_TYPE, SLOT_TYPE, PLAN_TYPE = "Microsoft.Web/sites", "Microsoft.Web/sites/slots", "Microsoft.Web/serverfarms"

# tier -> (rank, most instances); rank 2 = Basic, 3 = Standard
TIERS = {"Free": (0, 1), "Shared": (1, 1), "Basic": (2, 3), "Standard": (3, 10), "Premium": (4, 30),
         "PremiumV2": (4, 30), "PremiumV3": (4, 30), "PremiumMV3": (4, 30), "ElasticPremium": (4, 30),
         "Isolated": (5, 100), "IsolatedV2": (5, 100)}
# SKU names: family letters, size digits, generation suffix (F1, B2, S1, P1v3, P1mv3, EP1, I1v2)
SKU_NAME = re.compile(r"^(EP|[FDBSPI])(\d+)(m?v\d)?$", re.IGNORECASE)
SKU_TIERS = {"F": "Free", "D": "Shared", "B": "Basic", "S": "Standard", "P": "Premium", "Pv2": "PremiumV2",
             "Pv3": "PremiumV3", "Pmv3": "PremiumMV3", "EP": "ElasticPremium", "I": "Isolated", "Iv2": "IsolatedV2"}
TLS_STATES = {"SniEnabled": "SNI enabled", "IpBasedEnabled": "IP based enabled"}
READ_ONLY_SITE = {"state", "hostNames", "enabledHostNames", "defaultHostName", "resourceGroup", "sku",
                  "usageState", "availabilityState", "repositorySiteName", "lastModifiedTimeUtc"}
# The siteConfig names a site GET or list answers, with null values (see _render_site).
LISTED_SITE_CONFIG = ("numberOfWorkers", "defaultDocuments", "netFrameworkVersion", "linuxFxVersion",
                      "alwaysOn", "http20Enabled", "minTlsVersion", "ftpsState", "vnetRouteAllEnabled",
                      "healthCheckPath", "appSettings", "connectionStrings")
# config/web's values where the world's siteConfig says nothing: those of
# stable/2024-04-01/examples/GetSiteConfig.json (Always On is off unless turned on).
SITE_CONFIG_DEFAULTS = {
    "numberOfWorkers": 1, "netFrameworkVersion": "v4.0", "phpVersion": "5.6", "pythonVersion": "",
    "nodeVersion": "", "powerShellVersion": "", "linuxFxVersion": "", "requestTracingEnabled": False,
    "remoteDebuggingEnabled": False, "httpLoggingEnabled": False, "acrUseManagedIdentityCreds": False,
    "logsDirectorySizeLimit": 35, "detailedErrorLoggingEnabled": False, "use32BitWorkerProcess": True,
    "webSocketsEnabled": False, "alwaysOn": False, "appCommandLine": "", "managedPipelineMode": "Integrated",
    "loadBalancing": "LeastRequests", "autoHealEnabled": False, "vnetName": "", "vnetRouteAllEnabled": False,
    "vnetPrivatePortsCount": 0, "http20Enabled": False, "minTlsVersion": "1.2", "scmMinTlsVersion": "1.2",
    "ftpsState": "AllAllowed", "functionAppScaleLimit": 0, "functionsRuntimeScaleMonitoringEnabled": False,
    "minimumElasticInstanceCount": 0, "azureStorageAccounts": {}}
READ_ONLY_PLAN = {"status", "numberOfSites", "numberOfWorkers", "maximumNumberOfWorkers", "geoRegion",
                  "resourceGroup", "subscription", "provisioningState"}


class AppServiceError(ApiError):
    """App Service's own error body, as its 400/409 validation errors come (e.g.
    terraform-provider-azurerm#6796, HealthBotContainerSample#51: `{"Code": "Conflict",
    "Message": ..., "Target": null, "Details": [...], "Innererror": null}`)."""

    def __init__(self, status: int, code: str, message: str, entity: dict[str, Any] | None = None):
        super().__init__(status, code, message)
        self.entity = entity or {}

    def response(self) -> Response:
        entity = {**self.entity, "Code": self.code, "Message": self.message}
        return Response(self.status, {
            "Code": self.code, "Message": self.message, "Target": None,
            "Details": [{"Message": self.message}, {"Code": self.code}, {"ErrorEntity": entity}],
            "Innererror": None})


# -- lookups (ARM answers for the resource group before the resource) ---------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def _require_subscription(world: World, sub: str) -> None:
    with world.lock:
        named = set(world.sections.get("subscriptions", {}))
    known = {s.lower() for s in set(world.subscriptions()) | named}
    if sub.lower() not in known:
        raise ApiError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def _require_group(world: World, sub: str, rg: str) -> str:
    scope = _group_id(sub, rg).lower()
    with world.lock:
        if not any(key == scope or key.startswith(scope + "/") for key in world.resources):
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return _group_id(sub, rg)


def _find(world: World, sub: str, rg: str, rtype: str, path: str, name: str) -> dict[str, Any]:
    resource = world.get(f"{_require_group(world, sub, rg)}/providers/{path}")
    if resource is None or resource.get("type", "").lower() != rtype.lower():
        raise ApiError(404, "ResourceNotFound",
                       f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. "
                       "For more details please go to https://aka.ms/ARMResourceNotFoundFix")
    return resource


def _site(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    return _find(world, sub, rg, SITE_TYPE, f"Microsoft.Web/sites/{name}", name)


def _slot(world: World, sub: str, rg: str, name: str, slot: str) -> dict[str, Any]:
    _site(world, sub, rg, name)
    return _find(world, sub, rg, SLOT_TYPE, f"Microsoft.Web/sites/{name}/slots/{slot}", f"{name}/{slot}")


def _plan(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    return _find(world, sub, rg, PLAN_TYPE, f"Microsoft.Web/serverfarms/{name}", name)


def _sites_on(world: World, plan_id: str, rtype: str = SITE_TYPE) -> list[dict[str, Any]]:
    sub_scope = "/".join(plan_id.split("/")[:3])
    return [s for s in world.of_type(rtype, sub_scope)
            if s.get("properties", {}).get("serverFarmId", "").lower() == plan_id.lower()]


# -- rendering: derived fields are computed, never stored twice ---------------------
def _render_site(world: World, site: dict[str, Any]) -> dict[str, Any]:
    body = public(site)
    plan = world.get(site.get("properties", {}).get("serverFarmId", ""))
    if plan is not None:
        body["properties"]["sku"] = plan["sku"]["tier"]
    # azure-rest-api-specs#12104 (open): a site GET carries siteConfig's property names with
    # null values (alwaysOn among them; acrUseManagedIdentityCreds false); lists do the same
    # (azure-cli#21548: "by design", an extra call per app is needed). The values: config/web.
    stored = body["properties"].get("siteConfig") or {}
    body["properties"]["siteConfig"] = {**{k: None for k in (*LISTED_SITE_CONFIG, *stored)},
                                        "acrUseManagedIdentityCreds": False}
    return body


def _render_plan(world: World, plan: dict[str, Any]) -> dict[str, Any]:
    body = public(plan)
    props = body.setdefault("properties", {})
    props["numberOfSites"] = len(_sites_on(world, plan["id"]))
    props["numberOfWorkers"] = body["sku"]["capacity"]
    props["maximumNumberOfWorkers"] = TIERS.get(body["sku"]["tier"], (0, 1))[1]
    return body


def _list(req: Request, world: World, items: list[dict[str, Any]], render: Callable) -> dict[str, Any]:
    return paged(req, [render(world, r) for r in items], req.page_size)


# -- SKUs and the features a plan's tier must allow -------------------------------------
def _sku(requested: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The full SKU Azure stores for a requested one: tier, size and family follow the name."""
    name = requested.get("name") or (current or {}).get("name") or ""
    capacity = requested.get("capacity", (current or {}).get("capacity", 1))
    match = SKU_NAME.match(name)
    family = match and match[1].upper() + (match[3] or "").lower()  # P1v3 -> Pv3
    if not match or family not in SKU_TIERS or not isinstance(capacity, int) or capacity < 1:
        raise AppServiceError(400, "BadRequest", f"The pricing tier '{name}' with capacity {capacity} "
                                                 "is not valid for an App Service plan.")
    name, tier = match[1].upper() + match[2] + (match[3] or "").lower(), SKU_TIERS[family]
    return {"name": name, "tier": tier, "size": name, "family": family, "capacity": capacity}


def _refusal(world: World, plan_name: str, sku: dict[str, Any], sites: list[dict[str, Any]]) -> ApiError | None:
    """Why App Service would refuse to put these sites on this SKU, or None."""
    rank, most = TIERS[sku["tier"]]
    if sku["capacity"] > most:
        # No published message found for this one; worded after App Service's others.
        return AppServiceError(400, "BadRequest",
                               f"Cannot scale App Service plan '{plan_name}' to {sku['capacity']} instances: "
                               f"the '{sku['tier']}' tier allows at most {most}.")
    for site in sites:
        props = site.get("properties", {})
        if rank < 3 and site["type"] == SITE_TYPE and world.of_type(SLOT_TYPE, site["id"]):
            # vscode-azureappservice#520 (Conflict)
            return AppServiceError(409, "Conflict", "Cannot complete the operation because the site will exceed "
                                                    f"the number of slots allowed for the '{sku['tier']}' SKU.")
        if rank < 2 and props.get("virtualNetworkSubnetId"):
            # Azure/bicep#6725
            return AppServiceError(409, "Conflict", "The new SKU does not support Regional VNET integration which "
                                                    "some apps are still using. Please disconnect apps from "
                                                    "Regional VNET integration and try again")
        for binding in props.get("hostNameSslStates", []) if rank < 2 else []:
            if binding.get("sslState") in TLS_STATES:
                # jraps20/jrap-AzureVerticalScaling#1 (BadRequest)
                return AppServiceError(400, "BadRequest",
                                       f"Cannot update the site with hostname '{binding['name']}' because its "
                                       f"current SSL configuration '{TLS_STATES[binding['sslState']]}' is not "
                                       "allowed in the target compute mode. Allowed SSL configuration is 'Disabled'.")
        if rank < 2 and props.get("siteConfig", {}).get("alwaysOn"):
            return _always_on_conflict()
    return None


def _always_on_conflict() -> AppServiceError:
    # terraform-provider-azurerm#6796, HealthBotContainerSample#51 (ExtendedCode 01020)
    message = ("AlwaysOn cannot be set for this site as the plan does not allow it. For more information on "
               "pricing and features, please see: https://aka.ms/appservicepricingdetails")
    return AppServiceError(409, "Conflict", f"There was a conflict. {message}",
                           {"ExtendedCode": "01020", "MessageTemplate": "There was a conflict. {0}",
                            "Parameters": [message]})


def _unseen_refusal(plan: dict[str, Any], sku: dict[str, Any]) -> ApiError | None:
    """A refusal for a feature in use that Resource Manager does not show on the plan or its
    apps (backups, hybrid connections, autoscale...), so a client cannot foresee it: the
    world's `_sandbox.refuse_below` {"tier", "status", "code", "message"} refuses every SKU
    ranked below `tier` (a capacity change on the same tier passes), in ARM's error shape."""
    rule = (plan.get("_sandbox") or {}).get("refuse_below")
    if not rule or TIERS[sku["tier"]][0] >= TIERS[rule["tier"]][0]:
        return None
    message = rule.get("message") or (f"The App Service plan '{plan['name']}' uses features that the "
                                      f"'{sku['tier']}' pricing tier does not support.")
    return ApiError(int(rule.get("status", 409)), rule.get("code", "Conflict"), message)


def _sites_and_slots_on(world: World, plan_id: str) -> list[dict[str, Any]]:
    return _sites_on(world, plan_id) + _sites_on(world, plan_id, SLOT_TYPE)


def _change_plan(world: World, plan: dict[str, Any], body: dict[str, Any], *, replace: bool) -> None:
    """Apply a PUT (replace) or PATCH body to a stored plan, refusing what Azure refuses."""
    sku = _sku(body.get("sku") or {}, plan.get("sku"))
    refusal = (_unseen_refusal(plan, sku)
               or _refusal(world, plan["name"], sku, _sites_and_slots_on(world, plan["id"])))
    if refusal:
        raise refusal
    plan["sku"] = sku
    if "tags" in body or replace:
        plan["tags"] = dict(body.get("tags") or {})
    if body.get("kind"):
        plan["kind"] = body["kind"]
    writable = {k: v for k, v in (body.get("properties") or {}).items() if k not in READ_ONLY_PLAN}
    plan.setdefault("properties", {}).update(writable)
    world.put(plan)


# -- sites ----------------------------------------------------------------------------
@route("GET", "/subscriptions/{sub}/providers/Microsoft.Web/sites", "Microsoft.Web/sites/list")
def list_sites(req: Request, world: World, sub: str):
    # examples/ListWebApps.json
    _require_subscription(world, sub)
    return _list(req, world, world.of_type(SITE_TYPE, f"/subscriptions/{sub}"), _render_site)


@route("GET", WEB + "/sites", "Microsoft.Web/sites/listByResourceGroup")
def list_sites_in_group(req: Request, world: World, sub: str, rg: str):
    # examples/ListWebAppsByResourceGroup.json; includeSlots=true adds the slots
    scope = _require_group(world, sub, rg)
    items = world.of_type(SITE_TYPE, scope)
    if req.query.get("includeSlots", "").lower() == "true":
        items = sorted(items + world.of_type(SLOT_TYPE, scope), key=lambda r: r["id"].lower())
    return _list(req, world, items, _render_site)


@route("GET", SITE, "Microsoft.Web/sites/read")
def get_site(req: Request, world: World, sub: str, rg: str, name: str):
    # examples/GetWebApp.json
    return _render_site(world, _site(world, sub, rg, name))


def _set_state(world: World, resource: dict[str, Any], state: str) -> Response:
    # WebApps_Start/Stop(Slot): 200, no body (the spec has no example; azure-mgmt-web accepts only 200)
    with world.lock:
        resource["properties"]["state"] = state
        resource["properties"]["lastModifiedTimeUtc"] = _now()
        world.put(resource)
    return Response(200)


@route("POST", SITE + "/start", "Microsoft.Web/sites/start")
def start_site(req: Request, world: World, sub: str, rg: str, name: str):
    return _set_state(world, _site(world, sub, rg, name), "Running")


@route("POST", SITE + "/stop", "Microsoft.Web/sites/stop")
def stop_site(req: Request, world: World, sub: str, rg: str, name: str):
    return _set_state(world, _site(world, sub, rg, name), "Stopped")


@route("PATCH", SITE, "Microsoft.Web/sites/write")
def patch_site(req: Request, world: World, sub: str, rg: str, name: str):
    # WebApps_Update (200, the site). `tags` replace all tags, as in ARM PATCH; properties merge.
    body = req.json() or {}
    with world.lock:
        site = _site(world, sub, rg, name)
        props = dict(body.get("properties") or {})
        new_plan_id = props.get("serverFarmId", site["properties"]["serverFarmId"])
        plan = world.get(new_plan_id)
        if plan is None:
            raise ApiError(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/serverfarms/"
                                                   f"{new_plan_id.split('/')[-1]}' was not found.")
        config = {**site["properties"].get("siteConfig", {}), **(props.pop("siteConfig", None) or {})}
        candidate = {**site, "properties": {**site["properties"], "siteConfig": config,
                                            **{k: v for k, v in props.items() if k not in READ_ONLY_SITE}}}
        refusal = _refusal(world, plan["name"], plan["sku"], [candidate])
        if refusal:
            raise refusal
        if "tags" in body:
            candidate["tags"] = dict(body["tags"] or {})
        candidate["properties"]["lastModifiedTimeUtc"] = _now()
        site.clear()
        site.update(candidate)
        world.put(site)
        return _render_site(world, site)


@route("GET", SITE + "/config/web", "Microsoft.Web/sites/config/read")
def get_site_config(req: Request, world: World, sub: str, rg: str, name: str):
    # WebApps_GetConfiguration, stable/2024-04-01/examples/GetSiteConfig.json (2025-05-01 has no
    # such example): 200, the configuration resource {site}/config/web named "web", its
    # properties the site's siteConfig (the values a site's list and get leave null).
    with world.lock:
        site = _site(world, sub, rg, name)
        stored = copy.deepcopy(site["properties"].get("siteConfig") or {})
        return {"id": f"{site['id']}/config/web", "name": "web", "type": "Microsoft.Web/sites/config",
                "kind": site.get("kind", "app"),
                "properties": {**copy.deepcopy(SITE_CONFIG_DEFAULTS), **stored}}


@route("POST", SITE + "/restart", "Microsoft.Web/sites/restart")
def restart_site(req: Request, world: World, sub: str, rg: str, name: str):
    # WebApps_Restart: 200, no body (softRestart/synchronous are accepted and change nothing here)
    with world.lock:
        _site(world, sub, rg, name)
    return Response(200)


@route("POST", SITE + "/config/configreferences/appsettings/refresh",
       "Microsoft.Web/sites/config/configreferences/appsettings/refresh")
def refresh_key_vault_references(req: Request, world: World, sub: str, rg: str, name: str):
    # learn.microsoft.com, "Use Key Vault references as app settings", Rotation: a POST here
    # makes App Service fetch the app's Key Vault references again. 200, no body.
    with world.lock:
        _site(world, sub, rg, name)
    return Response(200)


# -- deployment slots -----------------------------------------------------------------
@route("GET", SITE + "/slots", "Microsoft.Web/sites/slots/list")
def list_slots(req: Request, world: World, sub: str, rg: str, name: str):
    # examples/ListWebAppSlots.json
    site = _site(world, sub, rg, name)
    return _list(req, world, world.of_type(SLOT_TYPE, site["id"]), _render_site)


@route("GET", SLOT, "Microsoft.Web/sites/slots/read")
def get_slot(req: Request, world: World, sub: str, rg: str, name: str, slot: str):
    # examples/GetWebAppSlot.json
    return _render_site(world, _slot(world, sub, rg, name, slot))


@route("POST", SLOT + "/start", "Microsoft.Web/sites/slots/start")
def start_slot(req: Request, world: World, sub: str, rg: str, name: str, slot: str):
    return _set_state(world, _slot(world, sub, rg, name, slot), "Running")


@route("POST", SLOT + "/stop", "Microsoft.Web/sites/slots/stop")
def stop_slot(req: Request, world: World, sub: str, rg: str, name: str, slot: str):
    return _set_state(world, _slot(world, sub, rg, name, slot), "Stopped")


# -- App Service plans ------------------------------------------------------------------
@route("GET", "/subscriptions/{sub}/providers/Microsoft.Web/serverfarms", "Microsoft.Web/serverfarms/list")
def list_plans(req: Request, world: World, sub: str):
    # examples/ListAppServicePlans.json
    _require_subscription(world, sub)
    return _list(req, world, world.of_type(PLAN_TYPE, f"/subscriptions/{sub}"), _render_plan)


@route("GET", WEB + "/serverfarms", "Microsoft.Web/serverfarms/listByResourceGroup")
def list_plans_in_group(req: Request, world: World, sub: str, rg: str):
    # examples/ListAppServicePlansByResourceGroup.json
    return _list(req, world, world.of_type(PLAN_TYPE, _require_group(world, sub, rg)), _render_plan)


@route("GET", PLAN, "Microsoft.Web/serverfarms/read")
def get_plan(req: Request, world: World, sub: str, rg: str, name: str):
    # stable/2024-04-01/examples/GetAppServicePlan.json (numberOfWorkers here follows sku.capacity)
    return _render_plan(world, _plan(world, sub, rg, name))


@route("GET", PLAN + "/sites", "Microsoft.Web/serverfarms/sites/read")
def list_plan_sites(req: Request, world: World, sub: str, rg: str, name: str):
    # AppServicePlans_ListWebApps (the specs have no example for it): a WebAppCollection, shaped as
    # stable/2024-04-01/examples/AppServiceEnvironments_ListWebApps.json, of every app whose
    # serverFarmId is the plan, whatever its resource group; slots are not apps of the plan.
    plan = _plan(world, sub, rg, name)
    items = _sites_on(world, plan["id"])
    if req.query.get("$filter", "").replace(" ", "").lower() == "stateeqrunning":  # the one filter it takes
        items = [s for s in items if s.get("properties", {}).get("state") == "Running"]
    return _list(req, world, items, _render_site)


@route("PUT", PLAN, "Microsoft.Web/serverfarms/write")
def put_plan(req: Request, world: World, sub: str, rg: str, name: str):
    # stable/2024-04-01/examples/CreateOrUpdateAppServicePlan.json: 202 with the plan as body and
    # Location and Azure-AsyncOperation both at {plan}/operationresults/{id}.
    body = req.json() or {}
    with world.lock:
        scope = _require_group(world, sub, rg)
        plan = world.get(f"{scope}/providers/{PLAN_TYPE}/{name}")
        if plan is None:
            if not body.get("location"):
                raise ApiError(400, "LocationRequired", "The location property is required for this definition.")
            plan = {"id": f"{scope}/providers/{PLAN_TYPE}/{name}", "name": name, "type": PLAN_TYPE,
                    "kind": "app", "location": body["location"],
                    "properties": {"status": "Ready", "geoRegion": body["location"], "isSpot": False,
                                   "reserved": False, "targetWorkerCount": 0, "targetWorkerSizeId": 0,
                                   "resourceGroup": rg, "provisioningState": "Succeeded"}}
        _change_plan(world, plan, body, replace=True)
        result = _render_plan(world, plan)
    region = plan["location"].replace(" ", "").lower()
    response = accepted(req, world, subscription=sub, provider="Microsoft.Web", location=region, result=result)
    op_id = response.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[-1]
    status_url = req.url(f"{req.path.rstrip('/')}/operationresults/{op_id}",
                         **{"api-version": req.query["api-version"]})
    response.headers.update({"Azure-AsyncOperation": status_url, "Location": status_url})
    response.body = result
    return response


@route("GET", PLAN + "/operationresults/{op}", "Microsoft.Web/serverfarms/operationresults/read")
def plan_operation(req: Request, world: World, sub: str, rg: str, name: str, op: str):
    return operation_status(req, world, sub, "Microsoft.Web", "", op)


@route("PATCH", PLAN, "Microsoft.Web/serverfarms/write")
def patch_plan(req: Request, world: World, sub: str, rg: str, name: str):
    # stable/2024-04-01/examples/PatchAppServicePlan.json: 200 with the plan. `sku` is not in the
    # spec's patch model but azure-mgmt-web sends what it is given, and App Service applies it.
    body = req.json() or {}
    with world.lock:
        plan = _plan(world, sub, rg, name)
        _change_plan(world, plan, body, replace=False)
        return _render_plan(world, plan)
