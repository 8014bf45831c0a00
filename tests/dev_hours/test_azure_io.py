"""dev-hours observe/apply: which reads a run spends, how SDK models map onto
the planning dataclasses, and how a plan write and Azure's refusals are worded."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from jobs import service
from jobs.dev_hours import azure_io
from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.state import State
from tests.dev_hours.test_e2e import DEV, TEST, WORLD, Estate, configure, summary

NOW = datetime(2026, 11, 30, 19, 15, tzinfo=timezone.utc)  # Monday, after 19:00 London


# -- against the sandbox -----------------------------------------------------------------
def test_with_resource_groups_configured_the_listing_carries_the_slots(world, app_env, monkeypatch):
    world(WORLD)
    configure(monkeypatch, resource_groups="rg-web-dev,rg-shop-test")
    estate = Estate(app_env)
    report, log, writes = estate.run("2026-11-30T19:15:00Z")
    reads = sorted({e["operation"] for e in log if e["method"] == "GET"})
    assert reads == ["Microsoft.Web/serverfarms/list", "Microsoft.Web/sites/listByResourceGroup"]
    done = summary(writes)
    assert "app-web-dev/staging" in done["stop"] and "app-preview-dev/pr1" in done["stop"]
    assert not [n for n in done["stop"] if n.startswith(("app-report", "app-misc", "app-etl"))]  # rg-data-dev
    assert estate.plans()["plan-web-dev"] == "S1 x1"  # slots known: B1 refused before any write


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


# -- with a stand-in client: Always On is read only when a downgrade below Basic needs it --
def _site(name, plan, always_on=None, state="Running"):
    return SimpleNamespace(
        id=f"/subscriptions/{DEV}/resourceGroups/rg/providers/Microsoft.Web/sites/{name}", name=name,
        type="Microsoft.Web/sites", state=state, kind="app", resource_group="rg",
        server_farm_id=f"/subscriptions/{DEV}/resourceGroups/rg/providers/Microsoft.Web/serverfarms/{plan}",
        tags={"ops-dev-hours": "default"}, virtual_network_subnet_id=None,
        site_config=SimpleNamespace(always_on=always_on), host_name_ssl_states=[])


def _plan(name, sku="S1", tier="Standard", capacity=2, sites=1):
    return SimpleNamespace(
        id=f"/subscriptions/{DEV}/resourceGroups/rg/providers/Microsoft.Web/serverfarms/{name}", name=name,
        sku=SimpleNamespace(name=sku, tier=tier, size=sku, family=sku[0], capacity=capacity),
        tags={}, number_of_sites=sites)


class FakeWeb:
    def __init__(self, sites, plans, always_on):
        self.calls: list[str] = []
        self._always_on = always_on
        outer = self

        class WebApps:
            def list(self):
                outer.calls.append("sites/list")
                return iter(sites)

            def list_slots(self, rg, name):
                outer.calls.append(f"slots/list {name}")
                return iter([])

            def list_by_resource_group(self, rg, include_slots=None):
                outer.calls.append(f"sites/listByResourceGroup {rg}")
                return iter(sites)

            def get_configuration(self, rg, name):
                outer.calls.append(f"config/web {name}")
                return SimpleNamespace(always_on=outer._always_on[name])

        class Plans:
            def list(self):
                outer.calls.append("serverfarms/list")
                return iter(plans)

        self.web_apps, self.app_service_plans = WebApps(), Plans()


def _ctx(web, **config):
    class Clients:
        def web(self, sub):
            return web
    settings = SimpleNamespace(dev_hours=DevHoursSettings(**config), subscriptions=[DEV])
    return SimpleNamespace(settings=settings, clients=Clients(), now=NOW,
                           load_state=lambda key: ({}, None))


def test_always_on_is_read_only_for_a_downgrade_below_basic_and_blocks_it():
    sites = [_site("app-a", "plan-free"), _site("app-b", "plan-free"), _site("app-c", "plan-busy")]
    plans = [_plan("plan-free", sites=2), _plan("plan-busy")]
    web = FakeWeb(sites, plans, {"app-a": False, "app-b": True, "app-c": False})
    observed = azure_io.observe(_ctx(web, scale_down_sku="F1", timezone="Europe/London"))
    assert sorted(c for c in web.calls if c.startswith("config/web")) == [
        "config/web app-a", "config/web app-b", "config/web app-c"]
    always_on = {s.name: s.always_on for s in observed.sites}
    assert always_on == {"app-a": False, "app-b": True, "app-c": False}
    from jobs.dev_hours.plan import plan
    actions, _ = plan(observed.sites, observed.plans, State(), NOW, DevHoursSettings(scale_down_sku="F1"))
    scale = {a.target.rsplit("/", 1)[-1]: a for a in actions if a.kind == "scale-down-plan"}
    assert scale["plan-free"].params["sku"]["name"] == "S1"  # F1 refused: app-b uses Always On
    assert "app-b uses Always On" in scale["plan-free"].reason
    assert scale["plan-busy"].params["sku"]["name"] == "F1"


def test_without_a_downgrade_below_basic_no_configuration_is_read():
    sites = [_site("app-a", "plan-a")]
    web = FakeWeb(sites, [_plan("plan-a")], {})
    observed = azure_io.observe(_ctx(web, scale_down_sku="B1"))
    assert not [c for c in web.calls if c.startswith("config/web")]
    assert web.calls.count("slots/list app-a") == 1  # its off transition is due
    assert observed.sites[0].always_on is None  # not reported, not needed


def test_no_slot_is_read_when_nothing_is_due():
    sites = [_site("app-a", "plan-a", state="Stopped")]
    state = State.from_json({"sites": {sites[0].id: {"applied": "off@2026-11-30T19:00Z",
                                                     "stopped_by_job": True}},
                             "plans": {_plan("plan-a").id: {"period": "off@2026-11-30T19:00Z"}}})
    web = FakeWeb(sites, [_plan("plan-a")], {})
    ctx = _ctx(web)
    ctx.load_state = lambda key: (state.to_json(), "etag")
    azure_io.observe(ctx)
    assert sorted(web.calls) == ["serverfarms/list", "sites/list"]


# -- mapping and wording ---------------------------------------------------------------------
def test_site_mapping_reads_features_from_the_list_response():
    item = _site("app-a", "plan-a", always_on=True)
    item.virtual_network_subnet_id = "/subscriptions/x/.../subnets/apps"
    item.host_name_ssl_states = [SimpleNamespace(name="a.contoso.com", ssl_state="SniEnabled")]
    site = azure_io.site_from_model(item)
    assert (site.subscription, site.resource_group, site.always_on, site.vnet_integrated,
            site.custom_tls_domains) == (DEV, "rg", True, True, True)
    assert azure_io.site_from_model(_site("app-b", "plan-a")).custom_tls_domains is False


def test_plan_tags_merge_case_insensitively():
    current = {"Environment": "dev", "OPS-DEV-HOURS-RESTORE": "old", "owner": "team"}
    assert azure_io.plan_tags(current, {"ops-dev-hours-restore": "new"}, ()) == {
        "Environment": "dev", "owner": "team", "ops-dev-hours-restore": "new"}
    assert azure_io.plan_tags(current, {}, ["ops-dev-hours-restore"]) == {"Environment": "dev", "owner": "team"}


class _Response:
    def __init__(self, status, body):
        self.status_code, self._body = status, body

    def text(self):
        return json.dumps(self._body) if not isinstance(self._body, str) else self._body


class _Error(Exception):
    def __init__(self, status, body):
        super().__init__("Operation returned an invalid status 'Conflict'")
        self.response, self.status_code = _Response(status, body), status


def test_azure_refusals_are_worded_with_azures_own_message():
    app_service = {"Code": "Conflict", "Message": "Cannot complete the operation because the site will exceed "
                   "the number of slots allowed for the 'Basic' SKU.", "Details": []}
    assert azure_io.azure_refusal(_Error(409, app_service)) == app_service["Message"]
    arm = {"error": {"code": "BadRequest", "message": "The pricing tier 'X' is not valid."}}
    assert azure_io.azure_refusal(_Error(400, arm)) == "The pricing tier 'X' is not valid."
    assert azure_io.azure_refusal(_Error(500, app_service)) is None  # not a refusal: retried next run
    assert azure_io.azure_refusal(_Error(429, {})) is None
    assert azure_io.azure_refusal(ValueError("no response")) is None
