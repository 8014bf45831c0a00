"""dev-hours never writes production, against the sandbox through the real
azure-mgmt-web client: restore tags on denied plans, production apps on a plan
that the configured scope does not show, and subscriptions given twice."""
from __future__ import annotations

import pytest

from jobs import service
from jobs.dev_hours.skus import sku_from_name
from jobs.dev_hours.state import RESTORE_TAG, restore_tag_value
from tests.dev_hours.test_e2e import is_write, summary, utc, written

DEV, PROD = "0d000000-0000-0000-0000-00000000000a", "0d000000-0000-0000-0000-00000000000b"
FRI_OFF, MON_ON = "2026-11-27T19:05:00Z", "2026-11-30T08:05:00Z"  # Europe/London = UTC in winter
B1_FROM_S1x2 = restore_tag_value(sku_from_name("S1", 2), sku_from_name("B1"))


def plan(sub: str, rg: str, name: str, sku: str, capacity: int, tags: dict | None = None) -> dict:
    s = sku_from_name(sku, capacity).to_json()
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/serverfarms/{name}",
            "name": name, "type": "Microsoft.Web/serverfarms", "kind": "app", "location": "West Europe",
            "tags": tags or {}, "sku": s,
            "properties": {"status": "Ready", "geoRegion": "West Europe", "reserved": False,
                           "resourceGroup": rg, "provisioningState": "Succeeded"}}


def site(sub: str, rg: str, name: str, plan_: dict, state: str = "Running", tags: dict | None = None) -> dict:
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}",
            "name": name, "type": "Microsoft.Web/sites", "kind": "app", "location": "West Europe",
            "tags": {"ops-dev-hours": "default", **(tags or {})},
            "properties": {"state": state, "enabled": True, "resourceGroup": rg, "serverFarmId": plan_["id"],
                           "hostNames": [f"{name}.azurewebsites.net"], "reserved": False,
                           "siteConfig": {"alwaysOn": False}}}


def slot(parent: dict, name: str, state: str = "Running") -> dict:
    return {**parent, "id": f"{parent['id']}/slots/{name}", "name": f"{parent['name']}/{name}",
            "type": "Microsoft.Web/sites/slots", "tags": {},
            "properties": {**parent["properties"], "state": state}}


def estate(*resources: dict) -> dict:
    return {"subscriptions": {DEV: {"displayName": "Dev"}, PROD: {"displayName": "Production"}},
            "resources": list(resources)}


def run(app_env, now: str) -> tuple[dict, list[dict]]:
    before = len(app_env.sandbox.request_log())
    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc(now))
    return report, [e for e in app_env.sandbox.request_log()[before:] if is_write(e)]


def changes(writes: list[dict]) -> dict[str, list[str]]:
    """Stops, starts and plan writes (other writes, such as tags on apps, left out)."""
    return {k: v for k, v in summary(writes).items() if k in ("stop", "start", "plan")}


def plans_now(app_env) -> dict[str, tuple[str, dict]]:
    return {r["name"]: (f"{r['sku']['name']} x{r['sku']['capacity']}", r["tags"])
            for r in app_env.world.snapshot()["resources"] if r["type"] == "Microsoft.Web/serverfarms"}


def outcome(report: dict, kind: str, name: str) -> list[dict]:
    return [a for a in report["actions"] if a["kind"] == kind and a["target"].rsplit("/", 1)[-1] == name]


@pytest.fixture
def configure(monkeypatch):
    def setup(subscriptions: str = f"{DEV},{PROD}", **dev_hours):
        monkeypatch.setenv("OPS_SUBSCRIPTIONS", subscriptions)
        monkeypatch.setenv("OPS_DEV_HOURS__DENY_SUBSCRIPTIONS", PROD)
        for key, value in dev_hours.items():
            monkeypatch.setenv(f"OPS_DEV_HOURS__{key.upper()}", str(value))
        service.reset()
    return setup


def test_a_restore_tag_on_a_denied_plan_is_a_failed_outcome_never_a_write(world, app_env, configure):
    """Three plans carry a restore tag and sit at the tag's scaled-to SKU, and the job's state
    knows none of them: one tagged production, one in a denied subscription, one plain dev plan."""
    tagged = {RESTORE_TAG: B1_FROM_S1x2}
    eu = plan(DEV, "rg-api", "plan-api", "B1", 1, {**tagged, "env": "Production-EU"})
    store = plan(PROD, "rg-store", "plan-store", "B1", 1, tagged)
    web = plan(DEV, "rg-web-dev", "plan-web-dev", "B1", 1, tagged)
    world(estate(eu, store, web, site(DEV, "rg-api", "app-api", eu, "Stopped"),
                 site(PROD, "rg-store", "app-store", store, "Stopped"),
                 site(DEV, "rg-web-dev", "app-web-dev", web, "Stopped")))
    configure()
    report, writes = run(app_env, MON_ON)
    for name, why in (("plan-api", "plan has tag env=Production-EU"),
                      ("plan-store", f"subscription {PROD} is in OPS_DEV_HOURS__DENY_SUBSCRIPTIONS")):
        [failed] = outcome(report, "restore-plan", name)
        assert failed["status"] == "failed"
        assert f"plan '{name}'" in failed["error"] and why in failed["error"]
        assert plans_now(app_env)[name][0] == "B1 x1"
    assert changes(writes) == {"plan": ["plan-web-dev"]}  # the dev plan's tag still rebuilds its record
    now = plans_now(app_env)
    assert now["plan-web-dev"] == ("S1 x2", {})
    assert now["plan-api"][1][RESTORE_TAG] == now["plan-store"][1][RESTORE_TAG] == B1_FROM_S1x2
    assert report["status"] == "failed"


def test_a_plan_hosting_a_production_app_outside_the_configured_groups_is_never_scaled(world, app_env,
                                                                                      configure):
    """plan-shared hosts app-web-dev (rg-web-dev, with a slot) and app-payments (rg-payments,
    production, Running); the job is scoped to rg-web-dev, so it sees one app and one slot
    against numberOfSites 2. Only the plan's own app list shows app-payments."""
    shared = plan(DEV, "rg-web-dev", "plan-shared", "S1", 2)
    web = site(DEV, "rg-web-dev", "app-web-dev", shared)
    payments = site(DEV, "rg-payments", "app-payments", shared, tags={"environment": "Production-EU"})
    del payments["tags"]["ops-dev-hours"]
    world(estate(shared, web, slot(web, "staging"), payments))
    configure(resource_groups="rg-web-dev")
    report, writes = run(app_env, FRI_OFF)
    assert changes(writes) == {"stop": ["app-web-dev", "app-web-dev/staging"]}
    [skipped] = outcome(report, "scale-down-plan", "plan-shared")
    assert skipped["status"] == "skipped"
    assert "hosts denied app 'app-payments' (rg-payments)" in skipped["reason"]
    assert plans_now(app_env)["plan-shared"] == ("S1 x2", {})
    reads = [e for e in app_env.sandbox.request_log() if e["operation"] == "Microsoft.Web/serverfarms/sites/read"]
    assert [(e["path"].rsplit("/", 2)[-2], e["status"]) for e in reads] == [("plan-shared", 200)]


def test_a_plan_whose_apps_are_all_stopped_by_the_job_is_scaled_after_reading_its_app_list(world, app_env,
                                                                                         configure):
    shared = plan(DEV, "rg-web-dev", "plan-shared", "S1", 2)
    world(estate(shared, site(DEV, "rg-web-dev", "app-web-dev", shared),
                 site(DEV, "rg-web-dev", "app-api-dev", shared)))
    configure(resource_groups="rg-web-dev")
    report, writes = run(app_env, FRI_OFF)
    assert changes(writes) == {"plan": ["plan-shared"], "stop": ["app-api-dev", "app-web-dev"]}
    assert plans_now(app_env)["plan-shared"][0] == "S1 x1"


@pytest.mark.parametrize("scope", [
    pytest.param({"subscriptions": f"{DEV},{DEV.upper()},{PROD}"}, id="subscription-twice"),
    pytest.param({"subscriptions": DEV, "resource_groups": "rg-web-dev,RG-Web-Dev"}, id="group-twice"),
])
def test_a_scope_given_twice_in_other_casing_is_read_and_written_once(world, app_env, configure, scope):
    shared = plan(DEV, "rg-web-dev", "plan-shared", "S1", 2)
    world(estate(shared, site(DEV, "rg-web-dev", "app-web-dev", shared)))
    configure(**scope)
    report, writes = run(app_env, FRI_OFF)
    assert changes(writes) == {"plan": ["plan-shared"], "stop": ["app-web-dev"]}
    assert [a["status"] for a in outcome(report, "stop-site", "app-web-dev")] == ["succeeded"]
    assert len({written(e) for e in writes}) == len(writes)  # no resource written twice
    assert (report["details"]["sites"], report["details"]["plans"]) == (1, 1)


def test_a_plan_whose_own_app_list_cannot_be_read_is_never_scaled(world, app_env, configure):
    """The identity may read plans but lacks Microsoft.Web/serverfarms/sites/read on this one:
    what else the plan hosts cannot be seen, so it stays as it is and the run says why."""
    shared = plan(DEV, "rg-web-dev", "plan-shared", "S1", 2)
    data = estate(shared, site(DEV, "rg-web-dev", "app-web-dev", shared))
    data["denied"] = [{"scope": shared["id"], "actions": ["Microsoft.Web/serverfarms/sites/read"]}]
    world(data)
    configure()
    report, writes = run(app_env, FRI_OFF)
    assert changes(writes) == {"stop": ["app-web-dev"]}
    [skipped] = outcome(report, "scale-down-plan", "plan-shared")
    assert skipped["status"] == "skipped" and "its own app list was not read" in skipped["reason"]
    assert [e for e in report["errors"] if "plan plan-shared: could not list its apps" in e
            and "AuthorizationFailed" in e]
    assert report["status"] == "failed"
    assert plans_now(app_env)["plan-shared"] == ("S1 x2", {})


def test_a_subscription_the_identity_may_not_read_is_reported_and_the_others_still_run(world, app_env,
                                                                                     configure):
    shared = plan(DEV, "rg-web-dev", "plan-shared", "S1", 2)
    other = "0d000000-0000-0000-0000-00000000000c"
    data = estate(shared, site(DEV, "rg-web-dev", "app-web-dev", shared))
    data["subscriptions"][other] = {"displayName": "Someone else's"}
    data["denied"] = [{"scope": f"/subscriptions/{other}"}]
    world(data)
    configure(subscriptions=f"{DEV},{other}")
    report, writes = run(app_env, FRI_OFF)
    assert changes(writes) == {"plan": ["plan-shared"], "stop": ["app-web-dev"]}
    [error] = report["errors"]
    assert f"subscription {other}: could not list sites and plans" in error and "AuthorizationFailed" in error
    assert report["status"] == "failed"
