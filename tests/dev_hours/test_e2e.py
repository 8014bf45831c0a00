"""dev-hours end to end against the sandbox: a week of runs over an estate of 24
apps in 3 subscriptions (one of them denied as production), through the real
azure-mgmt-web client, the runner, the run store on Azurite and the CLI.

Every run asserts the state of every app, slot and plan, and exactly which
Resource Manager writes it made (from the sandbox's request log)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from jobs import service

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "sandbox" / "worlds" / "devhours_week.json"
DEV, TEST, PROD = ("0d000000-0000-0000-0000-000000000001", "0d000000-0000-0000-0000-000000000002",
                   "0d000000-0000-0000-0000-000000000003")
PRICES = "S1=0.1,S2=0.2,P1v3=0.169,B1=0.018"

# Apps and plans no run may ever write: production by tag, by name, by plan tag, by
# subscription, and the plans that host them.
PRODUCTION = ("app-checkout-prod", "app-billing-test", "app-api-test", "plan-api-test",
              "plan-checkout-test", "plan-billing-test", "app-store", "app-store-api", "plan-store")

APPS = {  # as seeded: app (or app/slot) -> state
    "app-web-dev": "Running", "app-web-dev/staging": "Running", "app-api-dev": "Running",
    "app-admin-dev": "Stopped",  # stopped by hand before the job ever ran
    "app-jobs-dev": "Running", "app-worker-dev": "Running", "app-cron-dev": "Running",
    "app-docs-dev": "Running", "app-wiki-dev": "Running",
    "app-preview-dev": "Running", "app-preview-dev/pr1": "Running", "app-preview-dev/pr2": "Stopped",
    "app-etl-dev": "Running", "app-report-dev": "Running", "app-bad-dev": "Running",
    "app-misc-dev": "Running", "app-override-dev": "Running",
    "app-shop-test": "Running", "app-cart-test": "Running", "app-search-test": "Running",
    "app-checkout-prod": "Running", "app-billing-test": "Running", "app-api-test": "Running",
    "app-blue-test": "Running", "app-green-test": "Running",
    "app-store": "Running", "app-store-api": "Running",
}
PLANS = {  # as seeded: plan -> "SKU xcapacity"
    "plan-web-dev": "S1 x2", "plan-jobs-dev": "P1v3 x2", "plan-shared-dev": "S1 x1",
    "plan-preview-dev": "P1v3 x1", "plan-data-dev": "S2 x3", "plan-misc-dev": "B1 x2",
    "plan-override-dev": "B1 x2", "plan-shop-test": "S1 x2", "plan-checkout-test": "S1 x1",
    "plan-billing-test": "S1 x1", "plan-api-test": "S1 x2", "plan-blue-test": "P1v3 x1",
    "plan-store": "S1 x2",
}
# Apps on the default schedule (Mon-Fri 08:00-19:00 Europe/London, UTC in winter)
# that this job stops and starts; app-admin-dev (stopped by hand), app-wiki-dev (not
# opted in), app-bad-dev (malformed tag), app-etl-dev (New York hours) and the
# production apps are not among them.
DAILY = ("app-web-dev", "app-web-dev/staging", "app-api-dev", "app-jobs-dev", "app-worker-dev",
         "app-cron-dev", "app-docs-dev", "app-preview-dev", "app-preview-dev/pr1", "app-report-dev",
         "app-misc-dev", "app-shop-test", "app-cart-test", "app-search-test", "app-blue-test",
         "app-green-test")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Estate:
    """Drives the job against the seeded world and reads back what it did."""

    def __init__(self, app_env):
        self.env = app_env
        self.all_writes: list[dict] = []

    def run(self, now: str, dry_run: bool = False):
        before = len(self.env.sandbox.request_log())
        report = service.run("dev-hours", trigger="timer", dry_run=dry_run, now=utc(now))
        log = self.env.sandbox.request_log()[before:]
        writes = [e for e in log if is_write(e)]
        self.all_writes += writes
        return report, log, writes

    def apps(self) -> dict[str, str]:
        snapshot = self.env.world.snapshot()
        return {r["name"]: r["properties"]["state"] for r in snapshot["resources"]
                if r["type"] in ("Microsoft.Web/sites", "Microsoft.Web/sites/slots")}

    def plans(self) -> dict[str, str]:
        snapshot = self.env.world.snapshot()
        return {r["name"]: f"{r['sku']['name']} x{r['sku']['capacity']}" for r in snapshot["resources"]
                if r["type"] == "Microsoft.Web/serverfarms"}

    def plan_tags(self, name: str) -> dict[str, str]:
        return next(r["tags"] for r in self.env.world.snapshot()["resources"]
                    if r["type"] == "Microsoft.Web/serverfarms" and r["name"] == name)


def is_write(entry: dict) -> bool:
    if not entry["operation"].startswith("Microsoft.Web/"):
        return False
    return entry["method"] in ("PUT", "PATCH", "DELETE") or (
        entry["method"] == "POST" and entry["path"].rstrip("/").rsplit("/", 1)[-1] in ("start", "stop"))


def written(entry: dict) -> tuple[str, str]:
    """('stop', 'app-web-dev/staging'), ('plan', 'plan-web-dev'), ('tag', 'app-web-dev')
    (a PATCH of the app's tags: its marker written or removed)..."""
    parts = entry["path"].split("?")[0].split("/providers/Microsoft.Web/", 1)[1].split("/")
    if parts[0] == "serverfarms":
        return "plan", parts[1]
    name = parts[1] + (f"/{parts[3]}" if len(parts) > 3 and parts[2] == "slots" else "")
    return (parts[-1] if parts[-1] in ("start", "stop") else "tag"), name


def sites_of(names) -> list[str]:
    """The apps of apps and slots: those whose marker a run writes or removes."""
    return sorted({n.split("/")[0] for n in names})


def summary(writes: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for verb, name in map(written, writes):
        out.setdefault(verb, []).append(name)
    return {k: sorted(v) for k, v in out.items()}


def configure(monkeypatch, **dev_hours):
    monkeypatch.setenv("OPS_SUBSCRIPTIONS", f"{DEV},{TEST},{PROD}")
    monkeypatch.setenv("OPS_DEV_HOURS__DENY_SUBSCRIPTIONS", PROD)
    monkeypatch.setenv("OPS_DEV_HOURS__SCALE_DOWN_SKU", "B1")
    monkeypatch.setenv("OPS_DEV_HOURS__PRICES", PRICES)
    for key, value in dev_hours.items():
        monkeypatch.setenv(f"OPS_DEV_HOURS__{key.upper()}", str(value))
    service.reset()


@pytest.fixture
def estate(world, app_env, monkeypatch):
    world(WORLD)
    configure(monkeypatch)
    return Estate(app_env)


def by_kind(report: dict, kind: str) -> dict[str, dict]:
    return {a["target"].split("/providers/Microsoft.Web/")[1].split("/", 1)[1].replace("/slots/", "/"): a
            for a in report["actions"] if a["kind"] == kind}


def only_failure_is_the_malformed_tag(report: dict) -> None:
    failed = [a for a in report["actions"] if a["status"] == "failed"]
    assert [(a["kind"], a["target"].rsplit("/", 1)[-1]) for a in failed] == [("invalid", "app-bad-dev")]
    assert "'8' is not a time" in failed[0]["error"]
    assert report["errors"] == [] and report["status"] == "failed"


def test_a_week_of_runs(estate, app_env):
    apps, plans = dict(APPS), dict(PLANS)
    assert estate.apps() == apps and estate.plans() == plans
    real = [n for n in apps if not n.endswith("/staging") and "/pr" not in n]
    assert len(real) == 24 and len([n for n in real if n not in ("app-store", "app-store-api")]) >= 20

    # Mon 09:00 - first run, in working hours: only the New York app is off (04:00 there).
    report, log, writes = estate.run("2026-11-30T09:00:00Z")
    assert summary(writes) == {"stop": ["app-etl-dev"], "tag": ["app-etl-dev"]}
    apps["app-etl-dev"] = "Stopped"
    assert estate.apps() == apps and estate.plans() == plans
    only_failure_is_the_malformed_tag(report)
    deny = by_kind(report, "deny")
    assert set(deny) == {"app-checkout-prod", "app-billing-test", "app-api-test", "app-store", "app-store-api"}
    assert all(a["status"] == "skipped" for a in deny.values())
    assert "production pattern" in deny["app-checkout-prod"]["reason"]
    assert "environment=production" in deny["app-billing-test"]["reason"]
    assert "plan 'plan-api-test' has tag environment=prod" in deny["app-api-test"]["reason"]
    assert "OPS_DEV_HOURS__DENY_SUBSCRIPTIONS" in deny["app-store"]["reason"]
    assert "stopped by hand" in by_kind(report, "start-site")["app-admin-dev"]["reason"]
    assert "catch-up" in by_kind(report, "stop-site")["app-etl-dev"]["reason"]

    # Mon 19:15 - a dry run shows every action with its reason and writes nothing.
    report, log, writes = estate.run("2026-11-30T19:15:00Z", dry_run=True)
    assert writes == [] and estate.apps() == apps and estate.plans() == plans
    planned = [a for a in report["actions"] if a["status"] == "planned"]
    assert len(planned) == 21 + 15 and all(a["reason"] for a in planned)  # 15 marker writes
    assert report["details"]["done"]["scale-down-plan"] == 4

    # Mon 19:15 - off: stop the apps and their slots, scale down the plans whose apps are all off.
    report, log, writes = estate.run("2026-11-30T19:15:00Z")
    assert summary(writes) == {
        "stop": sorted(DAILY), "start": ["app-etl-dev"],  # 14:15 in New York: its day started
        "plan": ["plan-blue-test", "plan-jobs-dev", "plan-shop-test", "plan-web-dev"],
        "tag": sites_of(DAILY + ("app-etl-dev",))}
    apps.update({n: "Stopped" for n in DAILY} | {"app-etl-dev": "Running"})
    plans.update({"plan-web-dev": "S1 x1",  # B1 refused up front: app-web-dev has a slot
                  "plan-jobs-dev": "B1 x1", "plan-shop-test": "B1 x1", "plan-blue-test": "B1 x1"})
    assert estate.apps() == apps and estate.plans() == plans
    assert estate.plan_tags("plan-jobs-dev") == {
        "environment": "dev", "ops-dev-hours-restore":
            "name=P1v3;tier=PremiumV3;size=P1v3;family=Pv3;capacity=2;to=B1;to_capacity=1"}
    only_failure_is_the_malformed_tag(report)
    skipped = {k: a["reason"] for k, a in by_kind(report, "scale-down-plan").items() if a["status"] == "skipped"}
    assert "B1 (Basic) refused: app-preview-dev has deployment slots (pr1, pr2)" in skipped["plan-preview-dev"]
    assert "'app-wiki-dev' which is not a dev-hours target" in skipped["plan-shared-dev"]
    assert "'app-bad-dev' whose tags are invalid" in skipped["plan-misc-dev"]
    assert "already stopped, not by this job" in by_kind(report, "stop-site")["app-admin-dev"]["reason"]
    assert_scale_downs_after_stops(log)
    savings = {s["name"]: s for s in report["details"]["savings"]}
    assert {n: (s["from"], s["to"], s["hours_off"], s["saving"]) for n, s in savings.items()} == {
        "plan-blue-test": ("P1v3 x1", "B1 x1", 12.75, pytest.approx(0.151 * 12.75, abs=1e-3)),
        "plan-jobs-dev": ("P1v3 x2", "B1 x1", 12.75, pytest.approx(0.320 * 12.75, abs=1e-3)),
        "plan-shop-test": ("S1 x2", "B1 x1", 12.75, pytest.approx(0.182 * 12.75, abs=1e-3)),
        "plan-web-dev": ("S1 x2", "S1 x1", 12.75, pytest.approx(0.100 * 12.75, abs=1e-3))}
    assert report["details"]["estimated_saving"] == pytest.approx(9.6, abs=0.01)
    [table] = report["details"]["tables"]
    assert table["rows"][-1][0] == "total" and len(table["rows"]) == 5

    # Mon 19:15 again: everything is done; a second run writes nothing and reads only the lists.
    report, log, writes = estate.run("2026-11-30T19:15:00Z")
    assert writes == [] and estate.apps() == apps and estate.plans() == plans
    steady_reads = sorted(e["operation"] for e in log if e["operation"].startswith("Microsoft.Web/"))
    assert steady_reads == ["Microsoft.Web/serverfarms/list"] * 4 + ["Microsoft.Web/sites/list"] * 6  # pages of 5

    # Someone starts app-api-dev by hand at 20:40: respected, and its plan gets its instances back.
    estate.env.world.get(f"/subscriptions/{DEV}/resourceGroups/rg-web-dev/providers/Microsoft.Web/sites/"
                         "app-api-dev")["properties"]["state"] = "Running"
    report, log, writes = estate.run("2026-11-30T21:00:00Z")
    assert summary(writes) == {"plan": ["plan-web-dev"]}
    apps["app-api-dev"] = "Running"
    plans["plan-web-dev"] = "S1 x2"
    assert estate.apps() == apps and estate.plans() == plans
    assert "'app-api-dev' is running (started by hand)" in by_kind(report, "restore-plan")["plan-web-dev"]["reason"]
    assert "ops-dev-hours-restore" not in estate.plan_tags("plan-web-dev")

    # Mon 22:30: app-override-dev's keep-on override expired at 22:00: now it goes off.
    report, log, writes = estate.run("2026-11-30T22:30:00Z")
    assert summary(writes) == {"stop": ["app-override-dev"], "plan": ["plan-override-dev"],
                               "tag": ["app-override-dev"]}
    apps["app-override-dev"] = "Stopped"
    plans["plan-override-dev"] = "B1 x1"
    assert estate.apps() == apps and estate.plans() == plans

    # Tue 10:30, the runs since 22:30 missed: catch up. Restore each plan before its apps
    # start; the app stopped by hand and the slot nobody asked for stay stopped.
    report, log, writes = estate.run("2026-12-01T10:30:00Z")
    back = [n for n in DAILY if n != "app-api-dev"] + ["app-override-dev"]
    assert summary(writes) == {
        "start": sorted(back), "stop": ["app-etl-dev"],  # 00:00 UTC was 19:00 in New York
        "plan": ["plan-blue-test", "plan-jobs-dev", "plan-override-dev", "plan-shop-test"],
        # app-api-dev, started by hand, loses its marker too
        "tag": sites_of(back + ["app-api-dev", "app-etl-dev"])}
    apps.update({n: "Running" for n in back} | {"app-etl-dev": "Stopped"})
    plans.update({n: PLANS[n] for n in ("plan-blue-test", "plan-jobs-dev", "plan-override-dev",
                                         "plan-shop-test")})
    assert estate.apps() == apps and estate.plans() == plans
    assert apps["app-admin-dev"] == apps["app-preview-dev/pr2"] == "Stopped"
    assert all("catch-up from a missed run (2.5 h late)" in a["reason"]
               for a in by_kind(report, "start-site").values() if a["status"] == "succeeded")
    assert_restores_before_starts(log)
    assert estate.plan_tags("plan-jobs-dev") == {"environment": "dev"}

    # Tue 10:45: nothing to do.
    report, log, writes = estate.run("2026-12-01T10:45:00Z")
    assert writes == [] and estate.apps() == apps and estate.plans() == plans

    # Fri 19:30: the weekend starts (the runs of Tue-Fri are not needed to get here).
    report, log, writes = estate.run("2026-12-04T19:30:00Z")
    assert summary(writes) == {
        "stop": sorted(DAILY + ("app-override-dev",)), "start": ["app-etl-dev"],
        "plan": ["plan-blue-test", "plan-jobs-dev", "plan-override-dev", "plan-shop-test", "plan-web-dev"],
        "tag": sites_of(DAILY + ("app-override-dev", "app-etl-dev"))}
    apps.update({n: "Stopped" for n in DAILY + ("app-override-dev",)} | {"app-etl-dev": "Running"})
    plans.update({"plan-web-dev": "S1 x1", "plan-jobs-dev": "B1 x1", "plan-shop-test": "B1 x1",
                  "plan-blue-test": "B1 x1", "plan-override-dev": "B1 x1"})
    assert estate.apps() == apps and estate.plans() == plans
    assert_scale_downs_after_stops(log)

    # Sat 12:00: New York's Friday ended at 00:00 UTC; now plan-data-dev's apps are all off.
    report, log, writes = estate.run("2026-12-05T12:00:00Z")
    assert summary(writes) == {"stop": ["app-etl-dev"], "plan": ["plan-data-dev"], "tag": ["app-etl-dev"]}
    apps["app-etl-dev"] = "Stopped"
    plans["plan-data-dev"] = "B1 x1"
    assert estate.apps() == apps and estate.plans() == plans
    assert_scale_downs_after_stops(log)
    [data] = report["details"]["savings"]
    assert (data["name"], data["hours_off"]) == ("plan-data-dev", 44.0)  # until Mon 08:00 London

    # Mon 09:00: everything back except the New York app (04:00 there).
    report, log, writes = estate.run("2026-12-07T09:00:00Z")
    assert summary(writes) == {
        "start": sorted(DAILY + ("app-override-dev",)),
        "plan": ["plan-blue-test", "plan-data-dev", "plan-jobs-dev", "plan-override-dev",
                 "plan-shop-test", "plan-web-dev"],
        "tag": sites_of(DAILY + ("app-override-dev",))}
    apps.update({n: "Running" for n in DAILY + ("app-override-dev",)})
    plans = dict(PLANS)
    assert estate.apps() == apps and estate.plans() == plans
    assert_restores_before_starts(log)

    # Mon 13:30: New York's Monday began at 13:00 UTC.
    report, log, writes = estate.run("2026-12-07T13:30:00Z")
    assert summary(writes) == {"start": ["app-etl-dev"], "tag": ["app-etl-dev"]}
    apps["app-etl-dev"] = "Running"
    assert estate.apps() == apps == {**APPS, "app-etl-dev": "Running"} and estate.plans() == PLANS
    assert apps["app-admin-dev"] == "Stopped"  # the app stopped by hand was never started

    # Over the whole week: no production resource was ever written, and no write failed.
    touched = {name.split("/")[0] for _, name in map(written, estate.all_writes)}
    assert not touched & set(PRODUCTION)
    assert not any(f"/subscriptions/{PROD}" in e["path"] for e in estate.all_writes)
    assert all(e["status"] == 200 for e in estate.all_writes)


def assert_scale_downs_after_stops(log: list[dict]) -> None:
    """Each plan is scaled down only after every stop of its apps answered."""
    writes = [written(e) for e in log if is_write(e)]
    on_plan = plan_of()
    for i, (verb, name) in enumerate(writes):
        if verb == "plan":
            later = [n for v, n in writes[i + 1:] if v == "stop" and on_plan.get(n.split("/")[0]) == name]
            assert not later, f"{name} scaled down before {later} stopped"


def assert_restores_before_starts(log: list[dict]) -> None:
    writes = [written(e) for e in log if is_write(e)]
    on_plan = plan_of()
    for i, (verb, name) in enumerate(writes):
        if verb == "start":
            plan = on_plan[name.split("/")[0]]
            later = [n for v, n in writes[i + 1:] if v == "plan" and n == plan]
            assert not later, f"{name} started before its plan {plan} was restored"


def plan_of() -> dict[str, str]:
    from sandbox.world import load_world_file
    return {r["name"]: r["properties"]["serverFarmId"].rsplit("/", 1)[-1]
            for r in load_world_file(WORLD)["resources"] if r["type"] == "Microsoft.Web/sites"}


def test_the_cap_spreads_the_evening_over_several_runs(world, app_env, monkeypatch):
    world(WORLD)
    configure(monkeypatch, max_actions_per_run=5)
    estate = Estate(app_env)
    estate.run("2026-11-30T09:00:00Z")
    first = len(estate.all_writes)
    runs = []
    for _ in range(10):
        report, log, writes = estate.run("2026-11-30T19:15:00Z")
        runs.append(len(writes))
        assert len([w for w in writes if written(w)[0] != "tag"]) <= 5  # marker tags are not counted
        held = [a for a in report["actions"] if "cap of 5 actions per run" in a["reason"]]
        assert all(a["status"] == "skipped" for a in held)
        if not writes:
            break
    assert runs[-1] == 0 and sum(runs) == 36 and len(runs) >= 5  # 21 changes, 15 marker writes
    # at most one write of each kind per changed resource, whatever the number of runs
    names = [written(e) for e in estate.all_writes[first:]]
    assert len(names) == len(set(names)) == 36
    assert estate.plans()["plan-jobs-dev"] == "B1 x1" and estate.apps()["app-web-dev/staging"] == "Stopped"


def test_a_downgrade_azure_refuses_is_a_failed_outcome_and_the_apps_stay_stopped(estate, app_env,
                                                                                 monkeypatch):
    """Someone adds a deployment slot to app-shop-test after the job looked and before it
    scales plan-shop-test down to B1: App Service refuses, the run says so."""
    from jobs.dev_hours.job import JOB
    estate.run("2026-11-30T09:00:00Z")
    site_id = f"/subscriptions/{TEST}/resourceGroups/rg-shop-test/providers/Microsoft.Web/sites/app-shop-test"
    planned = JOB.plan

    def plan_then_add_a_slot(observed, ctx):
        actions = planned(observed, ctx)
        site = app_env.world.get(site_id)
        app_env.world.put({**site, "id": f"{site_id}/slots/hotfix", "name": "app-shop-test/hotfix",
                           "type": "Microsoft.Web/sites/slots",
                           "properties": {**site["properties"], "state": "Stopped"}})
        return actions

    monkeypatch.setattr(JOB, "plan", plan_then_add_a_slot)
    report, log, writes = estate.run("2026-11-30T19:15:00Z")
    refused = by_kind(report, "scale-down-plan")["plan-shop-test"]
    assert refused["status"] == "failed"
    assert ("refused by Azure: Cannot complete the operation because the site will exceed the number of "
            "slots allowed for the 'Basic' SKU.") in refused["error"]
    assert [(e["method"], e["status"]) for e in writes if written(e) == ("plan", "plan-shop-test")] == [
        ("PATCH", 409)]
    assert estate.plans()["plan-shop-test"] == "S1 x2"
    assert "ops-dev-hours-restore" not in estate.plan_tags("plan-shop-test")
    apps = estate.apps()
    assert [apps[n] for n in ("app-shop-test", "app-cart-test", "app-search-test")] == ["Stopped"] * 3
    assert [s["status"] for s in report["details"]["savings"] if s["name"] == "plan-shop-test"] == ["failed"]

    # The next run sees the slot and checks before it writes: instances only, no refused write.
    monkeypatch.setattr(JOB, "plan", planned)
    report, log, writes = estate.run("2026-11-30T19:30:00Z")
    assert summary(writes) == {"plan": ["plan-shop-test"]}
    assert estate.plans()["plan-shop-test"] == "S1 x1"
    assert "B1 (Basic) refused: app-shop-test has deployment slots (hotfix)" in \
        by_kind(report, "scale-down-plan")["plan-shop-test"]["reason"]


def test_the_cli_explains_the_next_transitions_in_local_time_and_utc(estate, app_env):
    estate.run("2026-11-30T09:00:00Z")
    before = len(app_env.sandbox.request_log())
    result = subprocess.run([sys.executable, "-m", "jobs", "plan", "dev-hours", "--days", "2",
                             "--now", "2026-11-30T15:00:00Z"],
                            cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 1, result.stderr  # the malformed tag is a failed outcome
    assert "dry run) at 2026-11-30T15:00:00Z" in out.splitlines()[0]
    lines = out.splitlines()
    etl = lines.index(next(line for line in lines if line.startswith("app-etl-dev")))
    block = "\n".join(lines[etl:etl + 9])
    assert "Mon-Fri 08:00-19:00; tz=America/New_York [America/New_York]" in block
    assert "off  Mon 2026-11-30 19:00 America/New_York (UTC-05:00)  =  Tue 2026-12-01 00:00 UTC" in block
    assert "on   Tue 2026-12-01 08:00 America/New_York (UTC-05:00)  =  Tue 2026-12-01 13:00 UTC" in block
    assert "a run now would start-site: on at Mon 2026-11-30 08:00 America/New_York (13:00 UTC)" in block
    assert "off  Mon 2026-11-30 19:00 Europe/London (UTC+00:00)  =  Mon 2026-11-30 19:00 UTC" in out
    assert "app-checkout-prod (rg-shop-test): DENIED" in out
    assert "app-bad-dev (rg-data-dev): INVALID" in out
    plans = out[out.index("\nPlans\n"):]
    assert "plan-jobs-dev: P1v3 x2 (PremiumV3)\n    26 h with every app off; scaled to B1 x1: saves about 8.32" \
        in plans  # 0.32/h from Mon 19:00 to Tue 08:00 and Tue 19:00 to Wed 08:00 (until Wed 15:00)
    assert "plan-web-dev: S1 x2 (Standard)\n    26 h with every app off; scaled to S1 x1" in plans
    assert "B1 (Basic) refused: app-web-dev has deployment slots (staging)" in plans
    assert not [e for e in app_env.sandbox.request_log()[before:] if is_write(e)]  # a dry run
