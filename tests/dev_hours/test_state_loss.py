"""dev-hours when its memory goes (issue #11 item 5): the run store lost or replaced, or an
app's opt-in tag removed overnight. What the job stopped is also marked on the app itself
(tag ops-dev-hours-stopped, written before the stop, removed after the start), so the apps
it stopped come back at the next on; a run that finds its state missing says so; production
is never written, not even to remove a marker. Against the sandbox, through the real
azure-mgmt-web client, the runner and the run store on Azurite."""
from __future__ import annotations

import uuid

import pytest

from jobs import service
from tests.dev_hours.test_azure_io import (MON_EVENING, SCOPE, TUE_MORNING, estate, plan, settings, site,
                                           slot)
from tests.dev_hours.test_e2e import is_write, summary, utc

TUE_EVENING = "2026-12-01T19:15:00Z"
MARKER_TAG = "ops-dev-hours-stopped"  # as the README documents it


def site_id(name: str) -> str:
    return f"{SCOPE}/providers/Microsoft.Web/sites/{name}"


@pytest.fixture
def seeded(world, monkeypatch):
    """app-a (with slot staging) and app-b on plan-a, app-c stopped by hand, all opted in."""
    app_a = site("app-a", "plan-a")
    world(estate(plan("plan-a", "S1", 1), app_a, slot(app_a, "staging"), slot(app_a, "qa", "Stopped"),
                 site("app-b", "plan-a"), site("app-c", "plan-a", state="Stopped")))
    settings(monkeypatch)


def run(app_env, now: str) -> tuple[dict, dict]:
    """The report, and the app writes the run made ({'stop': [...], 'tag': [...]})."""
    before = len(app_env.sandbox.request_log())
    report = service.run("dev-hours", trigger="timer", dry_run=False, now=utc(now))
    return report, summary([e for e in app_env.sandbox.request_log()[before:] if is_write(e)])


def states(app_env) -> dict[str, str]:
    return {r["name"]: r["properties"]["state"] for r in app_env.world.snapshot()["resources"]
            if r["type"] in ("Microsoft.Web/sites", "Microsoft.Web/sites/slots")}


def tags(app_env, name: str) -> dict[str, str]:
    return dict(app_env.world.get(site_id(name))["tags"])


def lose_the_state(app_env, monkeypatch, how: str) -> None:
    if how == "new-storage":  # another runs container: no state, no earlier report
        monkeypatch.setenv("OPS_RUNS_CONTAINER", f"runs-{uuid.uuid4().hex[:12]}")
        service.reset()
    else:  # the state blob deleted, the reports kept
        service.environment().store._container.delete_blob("state/dev-hours/state.json")


def remove_tag(app_env, name: str, tag_name: str) -> None:
    resource = app_env.world.get(site_id(name))
    resource["tags"] = {k: v for k, v in resource["tags"].items() if k != tag_name}
    app_env.world.put(resource)


def test_the_marker_is_written_before_the_stop_and_removed_after_the_start(app_env, seeded):
    report, writes = run(app_env, MON_EVENING)
    assert writes == {"stop": ["app-a", "app-a/staging", "app-b"], "tag": ["app-a", "app-b"]}
    log = [e for e in app_env.sandbox.request_log() if is_write(e)]
    order = [(e["method"], e["path"].split("/sites/")[1].split("?")[0]) for e in log]
    assert order.index(("PATCH", "app-a")) < order.index(("POST", "app-a/stop"))
    assert order.index(("PATCH", "app-a")) < order.index(("POST", "app-a/slots/staging/stop"))
    assert tags(app_env, "app-a")[MARKER_TAG] == "2026-11-30T19:15:00Z;slots=staging"
    assert tags(app_env, "app-b")[MARKER_TAG] == "2026-11-30T19:15:00Z"
    assert tags(app_env, "app-a")["environment"] == "dev"  # the other tags are kept
    assert MARKER_TAG not in tags(app_env, "app-c")  # stopped by hand: not the job's

    report, writes = run(app_env, TUE_MORNING)
    assert writes == {"start": ["app-a", "app-a/staging", "app-b"], "tag": ["app-a", "app-b"]}
    assert MARKER_TAG not in tags(app_env, "app-a") and MARKER_TAG not in tags(app_env, "app-b")
    assert tags(app_env, "app-a")["ops-dev-hours"] == "default"


@pytest.mark.parametrize("how", ["new-storage", "state-blob-deleted"])
def test_with_the_state_lost_the_marked_apps_come_back_at_the_next_on(app_env, seeded, monkeypatch, how):
    run(app_env, MON_EVENING)
    lose_the_state(app_env, monkeypatch, how)

    # Mon 21:00: the run says the state is missing, and stops nothing more, starts nothing.
    report, writes = run(app_env, "2026-11-30T21:00:00Z")
    assert writes == {}
    [error] = report["errors"]
    assert "state" in error and "missing" in error and "app-a, app-b" in error
    # the reports are evidence too, where they survived
    assert ("a run that applied changes at 2026-" in error) == (how == "state-blob-deleted")
    assert report["status"] == "failed"

    # Tue 08:15: the apps it stopped are back (app-a with the slot it stopped, not qa); the
    # app stopped by hand stays stopped; the state is there again, so no more error.
    report, writes = run(app_env, TUE_MORNING)
    assert writes == {"start": ["app-a", "app-a/staging", "app-b"], "tag": ["app-a", "app-b"]}
    assert report["errors"] == []
    assert states(app_env) == {"app-a": "Running", "app-a/staging": "Running", "app-a/qa": "Stopped",
                               "app-b": "Running", "app-c": "Stopped"}


def test_with_the_state_lost_a_person_s_start_in_the_night_is_respected(app_env, seeded, monkeypatch):
    run(app_env, MON_EVENING)
    lose_the_state(app_env, monkeypatch, "new-storage")
    app_b = app_env.world.get(site_id("app-b"))
    app_b["properties"]["state"] = "Running"  # someone needs it tonight
    app_env.world.put(app_b)
    report, writes = run(app_env, "2026-11-30T21:00:00Z")
    assert writes == {} and states(app_env)["app-b"] == "Running"


@pytest.mark.parametrize("state_lost", [False, True])
def test_an_app_whose_opt_in_tag_is_removed_overnight_comes_back_once(app_env, seeded, monkeypatch,
                                                                      state_lost):
    run(app_env, MON_EVENING)
    remove_tag(app_env, "app-b", "ops-dev-hours")
    if state_lost:
        lose_the_state(app_env, monkeypatch, "new-storage")
    report, writes = run(app_env, "2026-11-30T21:00:00Z")
    assert writes == {}
    [note] = [a for a in report["actions"] if a["target"] == site_id("app-b")]
    assert note["status"] == "skipped" and "no longer opted in" in note["reason"]

    report, writes = run(app_env, TUE_MORNING)
    assert writes == {"start": ["app-a", "app-a/staging", "app-b"], "tag": ["app-a", "app-b"]}
    assert states(app_env)["app-b"] == "Running" and MARKER_TAG not in tags(app_env, "app-b")

    # then left alone: not stopped in the evening, nor reported
    report, writes = run(app_env, TUE_EVENING)
    assert "app-b" not in writes.get("stop", []) and states(app_env)["app-b"] == "Running"
    assert not [a for a in report["actions"] if a["target"] == site_id("app-b")]


def test_a_marked_app_that_became_production_is_reported_never_written(app_env, seeded, monkeypatch):
    run(app_env, MON_EVENING)
    app_b = app_env.world.get(site_id("app-b"))
    app_b["tags"]["environment"] = "production"
    app_env.world.put(app_b)
    lose_the_state(app_env, monkeypatch, "new-storage")
    report, writes = run(app_env, TUE_MORNING)
    assert "app-b" not in writes.get("start", []) + writes.get("tag", [])
    assert states(app_env)["app-b"] == "Stopped" and MARKER_TAG in tags(app_env, "app-b")
    [failed] = [a for a in report["actions"] if a["target"] == site_id("app-b") and a["status"] == "failed"]
    assert "never written" in failed["reason"] and "by hand" in failed["reason"]


# -- the marker's value (pure) --------------------------------------------------------------------

def test_the_marker_names_the_slots_and_falls_back_to_all_when_they_do_not_fit():
    from jobs.dev_hours.state import ALL_SLOTS, marker_value, parse_marker
    now = utc("2026-11-30T19:15:00Z")
    assert marker_value(now, True, ["staging", "pr1"]) == "2026-11-30T19:15:00Z;slots=pr1,staging"
    assert parse_marker("2026-11-30T19:15:00Z;slots=pr1,staging") == (now, True, ("pr1", "staging"))
    assert parse_marker(marker_value(now, False, ["qa"])) == (now, False, ("qa",))
    many = [f"slot-{i:02d}-with-a-long-name" for i in range(12)]  # more than a tag value's 256 chars
    value = marker_value(now, True, many)
    assert len(value) <= 256 and parse_marker(value) == (now, True, (ALL_SLOTS,))
    assert parse_marker("by hand") == (None, True, ())  # unreadable: the app alone


def test_a_marker_without_its_record_starts_the_app_and_the_slots_it_names():
    from jobs.dev_hours.plan import Slot
    from tests.dev_hours.test_plan import kinds, make_site, run
    slots = (Slot("staging", "Stopped"), Slot("qa", "Stopped"))
    named = make_site(state="Stopped", slots=slots, tags={MARKER_TAG: "2026-11-27T18:05:00Z;slots=staging"})
    actions, _ = run([named], "2026-11-30T07:05")  # no state at all
    assert kinds(actions) == [("start-site", "web-dev", None), ("start-slot", "staging", None)]
    assert actions[-1].kind == "unmark-site" and actions[-1].after == tuple(a.key for a in actions[:-1])
    every = make_site(state="Stopped", slots=slots, tags={MARKER_TAG: "2026-11-27T18:05:00Z;slots=*"})
    actions, _ = run([every], "2026-11-30T07:05")
    assert kinds(actions) == [("start-site", "web-dev", None), ("start-slot", "staging", None),
                              ("start-slot", "qa", None)]
