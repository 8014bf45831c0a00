"""Focused tests of what the crash suite found, without killing anything: each one sets up
the exact state a kill left and checks the next run, or the new write-ahead step itself.

1. dev-hours: killed after stopping apps, before saving its state, the job took the apps it
   had stopped for apps stopped by hand and never started them again.
2. dev-hours: killed after scaling a plan down, before saving its state, in any off period
   but the first, the job never restored the plan (its stale record hid the restore tag).
3. dev-hours: killed after restoring a plan, before saving its state, the next run said the
   plan "was changed by hand".
4. sla-snapshot: killed after writing a month's final report and before sending (or saving)
   its missed-objective alerts, those alerts were never sent; a failed one was never retried.
5. The run lock: a killed run blocked the job for 60 s, with a message that did not say so;
   ``OPS_LOCK_SECONDS`` (15-60) sets the lease.
"""
from __future__ import annotations


import pytest

from jobs.dev_hours.plan import Slot
from jobs.dev_hours.state import RESTORE_TAG, PlanRecord, SiteRecord, State, restore_tag_value, write_ahead
from jobs.model import Action, Outcome
from jobs.sla_snapshot import alerts
from tests.dev_hours.test_plan import (FRI_OFF, FRI_ON, MON_ON, ORIGINAL, all_succeed, kinds, make_plan,
                                       make_site, plan_id, record, run, site_id, site_record)
from tests.sla_snapshot.test_alerts import final

SMALL = ORIGINAL.__class__(**{**ORIGINAL.to_json(), "capacity": 1})  # P1v3 x1: instances only
TAGGED = {RESTORE_TAG: restore_tag_value(ORIGINAL, SMALL)}


# -- 1. dev-hours: which apps the job stopped survives a kill --------------------------------

def test_the_apps_a_run_is_about_to_stop_are_saved_as_stopped_by_the_job_first():
    before = State(sites=record("web-dev", FRI_ON))
    site = make_site(slots=(Slot("staging", "Running"), Slot("qa", "Stopped")))
    actions, _ = run([site], "2026-11-27T18:05", before)
    assert kinds(actions) == [("stop-site", "web-dev", None), ("stop-slot", "staging", None)]
    ahead = write_ahead(before, actions)
    # known as stopped by the job, the transition not marked applied: still planned after a crash
    assert site_record(ahead, "web-dev") == SiteRecord(FRI_ON, True, ("staging",))
    assert write_ahead(before, [a for a in actions if a.kind.startswith("start")]) is None
    assert write_ahead(before, [Action.skip(site_id("web-dev"), "denied", kind="stop-site")]) is None


def test_killed_after_its_stops_the_next_run_still_starts_the_apps_it_stopped():
    before = State(sites=record("web-dev", FRI_ON))
    site = make_site(slots=(Slot("staging", "Running"),))
    actions, _ = run([site], "2026-11-27T18:05", before)
    ahead = write_ahead(before, actions)  # saved; then the stops happen and the process dies
    stopped = make_site(state="Stopped", slots=(Slot("staging", "Stopped"),))
    again, planned = run([stopped], "2026-11-27T18:20", ahead)
    assert again == []  # nothing left to do, and no "stopped by hand" note
    assert site_record(planned, "web-dev") == SiteRecord(FRI_OFF, True, ("staging",))
    monday, _ = run([stopped], "2026-11-30T07:05", all_succeed(ahead, again, planned))
    assert kinds(monday) == [("start-site", "web-dev", None), ("start-slot", "staging", None)]


def test_without_the_write_ahead_the_apps_would_stay_stopped():
    """What the crash suite saw: the state of before the kill makes them someone else's."""
    stopped = make_site(state="Stopped")
    again, planned = run([stopped], "2026-11-27T18:20", State(sites=record("web-dev", FRI_ON)))
    assert "already stopped, not by this job" in again[0].reason
    monday, _ = run([stopped], "2026-11-30T07:05", all_succeed(State(), again, planned))
    assert kinds(monday) == [("start-site", "web-dev", "skipped")]


def test_the_runner_saves_the_write_ahead_before_the_first_change_and_not_in_a_dry_run(app_env):
    from jobs.runner import Job, run_job
    from jobs.store import RunStore
    from tests.foundation.test_runner import NOW
    order: list[str] = []

    class Prepared(Job):
        name = "dev-hours"

        def plan(self, observed, ctx):
            return [Action("stop", "a", "r"), Action.skip("b", "denied")]

        def before_apply(self, observed, actions, ctx):
            order.append(f"before:{len(actions)}")

        def apply(self, action, ctx):
            order.append(f"apply:{action.target}")

    from jobs.clients import Clients
    from jobs.settings import load_settings
    store = RunStore(Clients(load_settings()).blob_service, "ops-runs-write-ahead")
    run_job("dev-hours", trigger="cli", dry_run=True, settings=None, clients=None, store=store,
            now=NOW, job=Prepared())
    assert order == []
    run_job("dev-hours", trigger="cli", dry_run=False, settings=None, clients=None, store=store,
            now=NOW, job=Prepared())
    assert order == ["before:2", "apply:a"]


def test_when_the_write_ahead_fails_nothing_is_changed_and_the_run_fails(app_env):
    from jobs.runner import Job, run_job
    from jobs.store import RunStore
    from tests.foundation.test_runner import NOW
    applied: list[str] = []

    class Unprepared(Job):
        name = "dev-hours"

        def plan(self, observed, ctx):
            return [Action("stop", "a", "r"), Action.fail("c", "bad tag")]

        def before_apply(self, observed, actions, ctx):
            raise RuntimeError("storage unavailable")

        def apply(self, action, ctx):
            applied.append(action.target)

    from jobs.clients import Clients
    from jobs.settings import load_settings
    store = RunStore(Clients(load_settings()).blob_service, "ops-runs-write-ahead")
    report = run_job("dev-hours", trigger="cli", dry_run=False, settings=None, clients=None,
                     store=store, now=NOW, job=Unprepared())
    assert applied == []
    assert report.status == "failed"
    assert report.errors == ["could not record what it was about to do, so changed nothing: "
                             "RuntimeError: storage unavailable"]
    assert [(o.status, o.error) for o in report.outcomes] == [
        ("skipped", "not done: the run could not record what it was about to do, so changed nothing: "
                    "RuntimeError: storage unavailable"),
        ("failed", "bad tag")]


# -- 2. dev-hours: a plan scaled down by a killed run is restored ----------------------------

def test_a_scale_down_whose_state_was_lost_is_adopted_from_its_tag_and_restored_later():
    # Thursday's off period was handled (scaled down, restored Friday morning: record cleared);
    # Friday's run scaled the plan down again and was killed before saving its state.
    earlier = PlanRecord("off@2026-11-26T18:00Z", None, None)
    state = State(sites=record("web-dev", FRI_ON, True), plans={plan_id().lower(): earlier})
    plan = make_plan(capacity=1, tags=TAGGED)
    actions, planned = run([make_site(state="Stopped")], "2026-11-27T18:20", state, plans=[plan])
    assert [a for a in actions if "plan" in a.kind] == []  # no second PATCH
    assert planned.plans[plan_id().lower()] == PlanRecord(FRI_OFF, ORIGINAL, SMALL)  # as if saved
    after = all_succeed(state, actions, planned)
    monday, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", after, plans=[plan])
    assert kinds(monday) == [("restore-plan", "asp-dev", None), ("start-site", "web-dev", None)]
    assert monday[0].params["sku"] == ORIGINAL.to_json()


def test_a_stale_cleared_record_no_longer_hides_the_restore_tag():
    earlier = PlanRecord("off@2026-11-26T18:00Z", None, None)
    state = State(sites=record("web-dev", FRI_OFF, True), plans={plan_id().lower(): earlier})
    monday, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", state,
                    plans=[make_plan(capacity=1, tags=TAGGED)])
    assert kinds(monday) == [("restore-plan", "asp-dev", None), ("start-site", "web-dev", None)]


def test_a_lost_scale_down_record_is_not_adopted_while_the_plan_is_being_restored():
    earlier = PlanRecord("off@2026-11-26T18:00Z", None, None)
    state = State(sites=record("web-dev", FRI_OFF, True) | record("api-dev", FRI_OFF, True),
                  plans={plan_id().lower(): earlier})
    sites = [make_site(state="Stopped"), make_site("api-dev")]  # someone started api-dev again
    actions, planned = run(sites, "2026-11-27T18:30", state, plans=[make_plan(capacity=1, tags=TAGGED)])
    assert kinds(actions) == [("restore-plan", "asp-dev", None)]
    assert planned.plans[plan_id().lower()] == PlanRecord(earlier.period, None, None)


# -- 3. dev-hours: a plan restored by a killed run is not "changed by hand" ---------------------

def test_a_plan_restored_by_a_killed_run_is_reported_as_restored_already():
    state = State(sites=record("web-dev", FRI_OFF, True),
                  plans={plan_id().lower(): PlanRecord(FRI_OFF, ORIGINAL, SMALL)})
    actions, planned = run([make_site(state="Stopped")], "2026-11-30T07:05", state,
                           plans=[make_plan(capacity=2)])  # restored, tag removed: one PATCH
    assert kinds(actions) == [("restore-plan", "asp-dev", "skipped"), ("start-site", "web-dev", None)]
    assert "is back to P1v3 x2 (PremiumV3) already" in actions[0].reason
    assert "changed by hand" not in actions[0].reason
    assert planned.plans[plan_id().lower()] == PlanRecord(FRI_OFF, None, None)
    assert site_record(planned, "web-dev") == SiteRecord(MON_ON, False, ())


# -- 4. sla-snapshot: missed-objective alerts survive a kill and a failed send -----------------

def _notices(actions):
    return sorted(a.target for a in actions if a.kind == "notify")


def test_missed_objective_notices_are_saved_pending_before_the_report_is_written():
    actions, planned = alerts.plan_alerts([], [final(availability="missed")], None)
    assert _notices(actions) == ["missed:shop:2026-10:availability"]
    ahead = alerts.write_ahead(None, planned, actions)
    assert list(ahead["pending"]) == ["missed:shop:2026-10:availability"]
    assert ahead["missed"] == {}
    assert ahead["pending"]["missed:shop:2026-10:availability"]["title"] == actions[0].params["title"]
    assert alerts.write_ahead(None, planned, []) is None  # nothing to send: no extra write


def test_killed_after_the_report_the_next_run_sends_the_pending_notice_once():
    actions, planned = alerts.plan_alerts([], [final(availability="missed")], None)
    ahead = alerts.write_ahead(None, planned, actions)  # saved; report written; process killed
    again, replanned = alerts.plan_alerts([], [], ahead)  # the report exists: no final this run
    assert _notices(again) == ["missed:shop:2026-10:availability"]
    assert again[0].params == actions[0].params  # the very message
    settled = alerts.settle_alerts(ahead, replanned, [Outcome(again[0], "succeeded")])
    assert "pending" not in settled and list(settled["missed"]) == ["missed:shop:2026-10:availability"]
    assert alerts.plan_alerts([], [], settled)[0] == []  # and never again


def test_a_failed_missed_objective_notice_stays_pending_and_is_sent_by_the_next_run():
    actions, planned = alerts.plan_alerts([], [final(availability="missed", error_budget="missed")], None)
    outcomes = [Outcome(actions[0], "succeeded"), Outcome(actions[1], "failed", "HTTP 500")]
    settled = alerts.settle_alerts(None, planned, outcomes)
    assert list(settled["missed"]) == [actions[0].target]
    assert list(settled["pending"]) == [actions[1].target]
    again, _ = alerts.plan_alerts([], [], settled)
    assert _notices(again) == [actions[1].target]


def test_a_state_without_pending_notices_keeps_its_old_shape():
    actions, planned = alerts.plan_alerts([], [final(availability="missed")], None)
    settled = alerts.settle_alerts(None, planned, [Outcome(actions[0], "succeeded")])
    assert set(settled) == {"version", "firing", "missed"}


# -- 5. the run lock ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, error", [("14", "greater than or equal to 15"),
                                          ("61", "less than or equal to 60"),
                                          ("soon", "valid integer")])
def test_the_lock_duration_is_a_lease_azure_accepts(monkeypatch, value, error):
    from jobs.settings import SettingsError, load_settings
    monkeypatch.setenv("OPS_LOCK_SECONDS", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "OPS_LOCK_SECONDS" in str(err.value) and error in str(err.value)


def test_the_run_store_takes_its_lease_duration_from_the_setting(app_env, monkeypatch):
    from jobs import service
    from jobs.store import LOCK_SECONDS
    assert LOCK_SECONDS == 60
    service.reset()
    assert service.environment().store.lock_seconds == 60
    monkeypatch.setenv("OPS_LOCK_SECONDS", "15")
    service.reset()
    store = service.environment().store
    assert store.lock_seconds == 15
    with store.lock("dev-hours"):
        from jobs.store import AlreadyRunning
        with pytest.raises(AlreadyRunning) as held:
            with store.lock("dev-hours"):
                pass
    assert str(held.value) == ("dev-hours is already running (lock locks/dev-hours is leased); if no run "
                               "is going on (one was killed), the lock frees itself within 15 s")
