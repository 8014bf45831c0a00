"""Fault suite, dev-hours (issue #8): the evening run of the 24-app estate
(sandbox/worlds/devhours_week.json: 21 stops and scale-downs) with faults
injected, then a clean run, compared with a run that never saw a fault, and
again after the next morning's catch-up run (which shows whether the job still
knows what it stopped)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jobs import service
from sandbox.world import load_world_file
from tests.resilience.harness import (AZURITE_TIMEOUT, OUTAGES, Findings, Scenario, Seen,
                                      after_first_write, answered, own_azurite, production_name,
                                      reference, resource, run_with_azurite_stopped, run_with_faults,
                                      seeds)

pytestmark = pytest.mark.faults
_ = own_azurite  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "sandbox" / "worlds" / "devhours_week.json"
DEV, TEST, PROD = ("0d000000-0000-0000-0000-000000000001", "0d000000-0000-0000-0000-000000000002",
                   "0d000000-0000-0000-0000-000000000003")
PROD_TAG_VALUES = ("prod", "production", "prd")
# The production apps and plans of the world, as tests/dev_hours/test_e2e.py lists them:
# the oracle computed below must find at least these.
KNOWN_PRODUCTION = {"app-checkout-prod", "app-billing-test", "app-api-test", "plan-api-test",
                    "plan-checkout-test", "plan-billing-test", "app-store", "app-store-api", "plan-store"}
SITE_WRITES = {"stop-site": ("stop", "Stopped"), "start-site": ("start", "Running"),
               "stop-slot": ("stop", "Stopped"), "start-slot": ("start", "Running")}
RESTORE_TAG = "ops-dev-hours-restore"
MARKER_TAG = "ops-dev-hours-stopped"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class DevHours(Scenario):
    job = "dev-hours"
    expected_failures = ("invalid",)  # app-bad-dev's malformed tag: a failed outcome every run

    def seed_world(self) -> None:
        self.stack.world.reset(load_world_file(WORLD))
        self.setenv(OPS_SUBSCRIPTIONS=f"{DEV},{TEST},{PROD}", OPS_DEV_HOURS__DENY_SUBSCRIPTIONS=PROD,
                    OPS_DEV_HOURS__SCALE_DOWN_SKU="B1",
                    OPS_DEV_HOURS__PRICES="S1=0.1,S2=0.2,P1v3=0.169,B1=0.018")

    def history(self) -> None:
        self.run(utc("2026-11-30T09:00:00Z"))  # Monday morning: state and a run record

    def target_run(self) -> dict[str, Any]:
        return self.run(utc("2026-11-30T19:15:00Z"))  # Monday evening: every stop and scale-down

    def later_runs(self):
        return [("Tuesday's 10:30 catch-up run", lambda: self.run(utc("2026-12-01T10:30:00Z")))]

    # -- compared ---------------------------------------------------------------------------
    def end_state(self) -> dict[str, Any]:
        world = self.stack.world.snapshot()
        sites = {r["name"]: r["properties"]["state"] for r in world["resources"]
                 if r["type"] in ("Microsoft.Web/sites", "Microsoft.Web/sites/slots")}
        plans = {r["name"]: {"sku": r["sku"], "tags": r.get("tags") or {}} for r in world["resources"]
                 if r["type"] == "Microsoft.Web/serverfarms"}
        state, _ = service.environment().store.load_state(self.job, "state")
        return {"sites": sites, "plans": plans, "job state": state}

    # -- checked ----------------------------------------------------------------------------
    def evidence(self, action: dict[str, Any], seen: Seen) -> str | None:
        kind, target = action["kind"], action["target"]
        found = resource(seen.world, target)
        if found is None:
            return "the resource does not exist"
        if kind in SITE_WRITES:
            verb, state = SITE_WRITES[kind]
            if not answered(seen.log, "POST", f"{target}/{verb}"):
                return f"no answered POST {verb} on it in the request log"
            if found["properties"]["state"] != state:
                return f"it is {found['properties']['state']}"
            return None
        if kind in ("mark-site", "unmark-site"):
            if not answered(seen.log, "PATCH", target):
                return "no answered PATCH of the app in the request log"
            marked = MARKER_TAG in (found.get("tags") or {})
            if marked != (kind == "mark-site"):
                return f"its marker is {'there' if marked else 'missing'}"
            return None
        if kind in ("scale-down-plan", "restore-plan"):
            if not (answered(seen.log, "PATCH", target) or answered(seen.log, "PUT", target)):
                return "no answered PATCH of the plan in the request log"
            sku = f"{found['sku']['name']} x{found['sku']['capacity']}"
            if action.get("detail") != sku:
                return f"the plan is {sku}, the report says {action.get('detail')}"
            tagged = RESTORE_TAG in (found.get("tags") or {})
            if tagged != (kind == "scale-down-plan"):
                return f"its restore tag is {'there' if tagged else 'missing'}"
            return None
        return super().evidence(action, seen)

    def check_saved(self, report: dict[str, Any], f: Findings, stage: str) -> None:
        state, _ = service.environment().store.load_state(self.job, "state")
        if not report["errors"] and state.get("last_run") != report["now"]:
            f.add(f"{stage}: the run reports no error, but its state was not saved "
                  f"(last_run {state.get('last_run')})")

    def production_ids(self) -> set[str]:
        world = load_world_file(WORLD)
        resources = world["resources"]

        def prod(r: dict[str, Any]) -> bool:
            tags = {k.lower(): str(v).lower() for k, v in (r.get("tags") or {}).items()}
            return (tags.get("environment") in PROD_TAG_VALUES or tags.get("env") in PROD_TAG_VALUES
                    or any(production_name(part) for part in r["name"].split("/"))
                    or r["id"].split("/")[2] == PROD)

        plans = {r["id"].lower(): r for r in resources if r["type"] == "Microsoft.Web/serverfarms"}
        sites = [r for r in resources if r["type"] == "Microsoft.Web/sites"]
        slots = [r for r in resources if r["type"] == "Microsoft.Web/sites/slots"]
        denied_sites = {s["id"].lower() for s in sites
                        if prod(s) or prod(plans.get(s["properties"].get("serverFarmId", "").lower(), s))
                        or any(prod(x) for x in slots if x["id"].lower().startswith(s["id"].lower() + "/"))}
        denied_plans = {p for p, r in plans.items() if prod(r)} | {
            s["properties"]["serverFarmId"].lower() for s in sites if s["id"].lower() in denied_sites}
        ids = denied_sites | denied_plans
        names = {i.rsplit("/", 1)[-1] for i in ids}
        assert KNOWN_PRODUCTION <= names, f"the production oracle misses {KNOWN_PRODUCTION - names}"
        return ids

    def allowed_write(self, entry: dict[str, Any]) -> bool:
        op, method = entry["operation"], entry["method"]
        return ((method == "POST" and op in ("Microsoft.Web/sites/start", "Microsoft.Web/sites/stop",
                                             "Microsoft.Web/sites/slots/start",
                                             "Microsoft.Web/sites/slots/stop"))
                or (method in ("PATCH", "PUT") and op == "Microsoft.Web/serverfarms/write")
                or (method == "PATCH" and op == "Microsoft.Web/sites/write"))  # the app's marker


@pytest.mark.parametrize("seed", seeds())
def test_faults_dev_hours(app_env, monkeypatch, seed):
    scenario = DevHours(app_env, monkeypatch)
    findings = run_with_faults(scenario, seed, reference(scenario))
    findings.check(f"OPS_FAULT_SEEDS={seed} .venv/bin/python -m pytest {__file__}::test_faults_dev_hours")


@pytest.mark.timeout(AZURITE_TIMEOUT)
@pytest.mark.parametrize("outage", OUTAGES, ids=lambda o: f"back-after-{o:g}s")
def test_azurite_stopped_dev_hours(app_env, monkeypatch, own_azurite, outage):
    scenario = DevHours(app_env, monkeypatch)
    ref = reference(scenario)
    scenario.azurite = own_azurite
    findings = run_with_azurite_stopped(scenario, ref, when="after the first write",
                                        trigger=after_first_write, outage=outage)
    findings.check(("OPS_FAULT_RUNS=full " if outage > OUTAGES[0] else "")
                   + f".venv/bin/python -m pytest {__file__}::test_azurite_stopped_dev_hours")
