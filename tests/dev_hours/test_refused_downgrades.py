"""dev-hours and a downgrade Azure refuses for a reason no read shows (issue #11 item 4):
refused once (a failed outcome), remembered in the job's state, and the plan scaled by
instances only on the same SKU instead of asking again every run; asked again once the
plan's SKU changes or after a week. Against the sandbox, through the real azure-mgmt-web
client and the runner."""
from __future__ import annotations

import pytest

from jobs import service
from jobs.dev_hours.state import State
from tests.dev_hours.test_azure_io import DEV, MON_EVENING, RG, estate, plan, settings, site
from tests.dev_hours.test_e2e import utc

REFUSAL = {"tier": "Standard", "status": 409, "code": "Conflict",
           "message": "The 'Basic' pricing tier does not support the hybrid connections some apps use."}
PLAN_ID = f"/subscriptions/{DEV}/resourceGroups/{RG}/providers/Microsoft.Web/serverfarms/plan-a"


def seeded(world, monkeypatch, capacity: int = 2):
    """plan-a (S1) hosting app-a, using a feature Basic lacks that no read shows."""
    plan_a = plan("plan-a", "S1", capacity) | {"_sandbox": {"refuse_below": REFUSAL}}
    world(estate(plan_a, site("app-a", "plan-a")))
    settings(monkeypatch, scale_down_sku="B1")


def run(app_env, now: str) -> tuple[dict, list[tuple[str, int]]]:
    """The report, and the plan writes (method, status) the run made."""
    before = len(app_env.sandbox.request_log())
    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc(now))
    writes = [(e["method"], e["status"]) for e in app_env.sandbox.request_log()[before:]
              if e["operation"] == "Microsoft.Web/serverfarms/write"]
    return report, writes


def scale(report: dict) -> dict:
    [action] = [a for a in report["actions"] if a["kind"] == "scale-down-plan"]
    return action


def sku(app_env) -> str:
    found = app_env.world.get(PLAN_ID)["sku"]
    return f"{found['name']} x{found['capacity']}"


def stored_state() -> State:
    env = service.environment()
    data, _ = env.store.load_state("dev-hours", "state")
    return State.from_json(data)


def test_a_refused_downgrade_fails_once_then_the_plan_sheds_instances_on_its_own_sku(world, app_env,
                                                                                    monkeypatch):
    seeded(world, monkeypatch)

    # Mon 19:15: B1 refused (409, ARM's error body): a failed outcome, remembered.
    report, writes = run(app_env, MON_EVENING)
    assert report["status"] == "failed" and writes == [("PATCH", 409)]
    assert scale(report)["status"] == "failed"
    assert "hybrid connections" in scale(report)["error"]
    assert sku(app_env) == "S1 x2"
    refused = stored_state().plans[PLAN_ID.lower()].refused
    assert (refused.sku, refused.code, refused.plan_sku) == ("B1", "Conflict", "S1")

    # Mon 19:30: not asked again; S1 with fewer instances instead, and the run is green.
    report, writes = run(app_env, "2026-11-30T19:30:00Z")
    assert report["status"] == "succeeded" and writes == [("PATCH", 200)]
    assert scale(report)["status"] == "succeeded"
    assert "B1 refused by Azure at 2026-11-30T19:15:00Z (Conflict" in scale(report)["reason"]
    assert "instances only" in scale(report)["reason"]
    assert sku(app_env) == "S1 x1"

    # Mon 19:45: nothing more to do, nothing reported as failed.
    report, writes = run(app_env, "2026-11-30T19:45:00Z")
    assert report["status"] == "succeeded" and writes == []

    # Tue 08:15 restored; Tue 19:15 straight to fewer instances: no refused write, green.
    report, writes = run(app_env, "2026-12-01T08:15:00Z")
    assert writes == [("PATCH", 200)] and sku(app_env) == "S1 x2"
    report, writes = run(app_env, "2026-12-01T19:15:00Z")
    assert report["status"] == "succeeded" and writes == [("PATCH", 200)] and sku(app_env) == "S1 x1"

    # A week after the refusal B1 is asked again (the plan may have been fixed): refused once more.
    run(app_env, "2026-12-07T08:15:00Z")
    report, writes = run(app_env, "2026-12-07T19:15:00Z")
    assert writes == [("PATCH", 409)] and scale(report)["status"] == "failed"


def test_without_instances_to_shed_the_remembered_refusal_is_a_skip_not_a_failure(world, app_env,
                                                                                 monkeypatch):
    seeded(world, monkeypatch, capacity=1)
    report, writes = run(app_env, MON_EVENING)
    assert writes == [("PATCH", 409)] and report["status"] == "failed"
    report, writes = run(app_env, "2026-11-30T19:30:00Z")
    assert writes == [] and report["status"] == "succeeded"
    assert scale(report)["status"] == "skipped"
    assert "B1 refused by Azure" in scale(report)["reason"] and "apps stay stopped" in scale(report)["reason"]
    assert "no instance to shed" in scale(report)["reason"]
    report, writes = run(app_env, "2026-11-30T19:45:00Z")
    assert writes == [] and report["status"] == "succeeded"


@pytest.mark.parametrize("change", ["plan-sku", "config"])
def test_a_changed_plan_or_setting_is_asked_again(world, app_env, monkeypatch, change):
    seeded(world, monkeypatch)
    run(app_env, MON_EVENING)
    if change == "plan-sku":  # someone moves the plan to S2 (and removes the feature)
        plan_a = app_env.world.get(PLAN_ID)
        plan_a["sku"] = {**plan_a["sku"], "name": "S2", "size": "S2"}
        plan_a.pop("_sandbox")
        app_env.world.put(plan_a)
    else:  # the scale-down SKU is changed to one Azure accepts
        settings(monkeypatch, scale_down_sku="S1", scale_down_capacity=1)
    report, writes = run(app_env, "2026-11-30T19:30:00Z")
    assert writes == [("PATCH", 200)] and report["status"] == "succeeded"
    assert "refused" not in scale(report)["reason"]
    assert sku(app_env) == ("B1 x1" if change == "plan-sku" else "S1 x1")
    kept = stored_state().plans[PLAN_ID.lower()].refused
    assert (kept is None) == (change == "plan-sku")  # forgotten with the SKU it was refused on
