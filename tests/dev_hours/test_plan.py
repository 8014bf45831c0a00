"""The dev-hours plan: which apps are stopped and started, which plans are
scaled down and restored, what is refused and why, with ``now`` injected and
every time converted in the app's own zone."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.explain import explain
from jobs.dev_hours.plan import Plan, Site, Slot, plan
from jobs.dev_hours.skus import Sku, estimate_savings, sku_from_name
from jobs.dev_hours.state import (RESTORE_TAG, PlanRecord, SiteRecord, State, restore_tag_value,
                                  settle)
from jobs.dev_hours.targets import parse_expiry
from jobs.model import Action, Outcome

SUB = "00000000-0000-0000-0000-0000000000aa"
OTHER_SUB = "00000000-0000-0000-0000-0000000000bb"
OPT_IN = "ops-dev-hours"

# Europe/Berlin in late November is UTC+1: the default Mon-Fri 08:00-19:00
# turns off on Fri 27 Nov at 18:00 UTC and on again on Mon 30 Nov at 07:00 UTC.
ORIGINAL = sku_from_name("P1v3", 2)  # a plan's SKU before a scale-down
FRI_OFF = "off@2026-11-27T18:00Z"
FRI_ON = "on@2026-11-27T07:00Z"
MON_ON = "on@2026-11-30T07:00Z"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def plan_id(name: str = "asp-dev") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-dev/providers/Microsoft.Web/serverfarms/{name}"


def site_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/{name}"


def make_site(name: str = "web-dev", state: str = "Running", schedule: str | None = "default",
              tags: dict | None = None, plan: str = "asp-dev", sub: str = SUB, **kw) -> Site:
    all_tags = ({OPT_IN: schedule} if schedule is not None else {}) | (tags or {})
    return Site(id=site_id(name), name=name, subscription=sub, resource_group="rg-dev",
                state=state, plan_id=plan_id(plan), tags=all_tags, **kw)


def make_plan(name: str = "asp-dev", sku: str = "P1v3", capacity: int = 1,
              tags: dict | None = None, **kw) -> Plan:
    return Plan(id=plan_id(name), name=name, subscription=SUB, resource_group="rg-dev",
                sku=sku_from_name(sku, capacity), tags=tags or {}, **kw)


def settings(**kw) -> DevHoursSettings:
    return DevHoursSettings(**({"timezone": "Europe/Berlin"} | kw))


def record(site: str, applied: str | None, stopped_by_job: bool = False, slots=()) -> dict:
    return {site_id(site).lower(): SiteRecord(applied, stopped_by_job, tuple(slots))}


def run(sites, now: str, state: State | None = None, plans=None, read_apps: bool = True, **config):
    """One planning pass; ``read_apps``: each plan's own app list (not given) is the sites on it."""
    plans = plans if plans is not None else [make_plan()]
    if read_apps:
        plans = [p if p.hosted is not None else
                 replace(p, hosted=tuple(s for s in sites if s.plan_id.lower() == p.id.lower()))
                 for p in plans]
    return plan(sites, plans, state or State(), utc(now), settings(**config))


def kinds(actions: list[Action]) -> list[tuple[str, str, str | None]]:
    """(kind, last part of the target, verdict) per action, but the marker writes before
    each stop and after each start (tests/dev_hours/test_state_loss.py covers them)."""
    return [(a.kind, a.target.rsplit("/", 1)[-1], a.verdict) for a in unmarked(actions)]


def unmarked(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind not in ("mark-site", "unmark-site")]


def all_succeed(previous: State, actions: list[Action], planned: State) -> State:
    return settle(previous, planned, [Outcome(a, "succeeded") for a in actions if not a.verdict])


def site_record(state: State, name: str) -> SiteRecord:
    return state.sites[site_id(name).lower()]


# -- stop and start, applied once ------------------------------------------------------

def test_off_stops_a_running_app_once_and_remembers_it_did():
    actions, planned = run([make_site()], "2026-11-27T18:05")
    assert kinds(actions) == [("stop-site", "web-dev", None)]
    assert unmarked(actions)[0].reason == "off at Fri 2026-11-27 19:00 Europe/Berlin (18:00 UTC)"
    assert site_record(planned, "web-dev") == SiteRecord(FRI_OFF, True, ())
    after = all_succeed(State(), actions, planned)
    again, _ = run([make_site(state="Stopped")], "2026-11-27T18:20", after)
    assert again == []


def test_a_person_starting_the_app_after_the_stop_is_respected_until_the_next_transition():
    state = State(sites=record("web-dev", FRI_OFF, stopped_by_job=True))
    saturday, planned = run([make_site(state="Running")], "2026-11-28T10:00", state)
    assert saturday == []
    monday, planned = run([make_site(state="Running")], "2026-11-30T07:05", state)
    assert monday == []  # already running: nothing to start, and it is no longer ours
    assert site_record(planned, "web-dev") == SiteRecord(MON_ON, False, ())
    evening, _ = run([make_site(state="Running")], "2026-11-30T18:05", planned)
    assert kinds(evening) == [("stop-site", "web-dev", None)]


def test_on_starts_only_an_app_this_job_stopped():
    ours = make_site("ours-dev", state="Stopped")
    theirs = make_site("theirs-dev", state="Stopped")
    state = State(sites=record("ours-dev", FRI_OFF, True) | record("theirs-dev", FRI_OFF, False))
    actions, planned = run([ours, theirs], "2026-11-30T07:05", state)
    assert kinds(actions) == [("start-site", "ours-dev", None), ("start-site", "theirs-dev", "skipped")]
    assert "stays stopped: it was stopped by hand" in actions[1].reason
    assert site_record(planned, "theirs-dev").applied == MON_ON  # reported once, not every run


def test_an_app_stopped_by_hand_before_the_off_time_stays_stopped_at_the_next_on():
    state = State(sites=record("web-dev", FRI_ON, stopped_by_job=False))
    friday, planned = run([make_site(state="Stopped")], "2026-11-27T18:05", state)
    assert kinds(friday) == [("stop-site", "web-dev", "skipped")]
    assert "already stopped, not by this job" in friday[0].reason
    assert site_record(planned, "web-dev") == SiteRecord(FRI_OFF, False, ())
    monday, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", planned)
    assert [a for a in monday if a.verdict is None] == []


@pytest.mark.parametrize("now, applied, state_, expected, late", [
    pytest.param("2026-11-27T18:10", FRI_ON, "Running", [("stop-site", "web-dev", None)], None,
                 id="on-time-run"),
    pytest.param("2026-11-27T23:40", FRI_ON, "Running", [("stop-site", "web-dev", None)], "5.7 h",
                 id="missed-evening-runs-catch-up"),
    pytest.param("2026-11-28T09:00", FRI_ON, "Running", [("stop-site", "web-dev", None)], "15.0 h",
                 id="down-all-night-still-stops-next-morning"),
    pytest.param("2026-11-30T09:00", FRI_ON, "Running", [], None,
                 id="down-all-weekend-only-the-latest-transition-counts"),
    pytest.param("2026-11-30T09:00", FRI_OFF, "Stopped", [], None,
                 id="down-all-weekend-does-not-start-an-app-stopped-by-hand"),
])
def test_a_missed_run_catches_up_with_the_latest_transition_only(now, applied, state_, expected, late):
    actions, _ = run([make_site(state=state_)], now, State(sites=record("web-dev", applied)))
    assert kinds([a for a in actions if a.verdict is None]) == expected
    if late:
        assert f"catch-up from a missed run ({late} late)" in actions[0].reason
    elif expected:
        assert "catch-up" not in actions[0].reason


def test_slots_stop_and_start_with_their_app_and_a_slot_stopped_by_hand_stays_stopped():
    site = make_site(slots=(Slot("staging", "Running"), Slot("qa", "Stopped")))
    actions, planned = run([site], "2026-11-27T18:05")
    assert kinds(actions) == [("stop-site", "web-dev", None), ("stop-slot", "staging", None)]
    assert unmarked(actions)[1].target == site_id("web-dev") + "/slots/staging"
    assert unmarked(actions)[1].params["slot"] == "staging"
    state = all_succeed(State(), actions, planned)
    assert site_record(state, "web-dev").slots_stopped == ("staging",)
    stopped = make_site(state="Stopped", slots=(Slot("staging", "Stopped"), Slot("qa", "Stopped")))
    monday, _ = run([stopped], "2026-11-30T07:05", state)
    assert kinds(monday) == [("start-site", "web-dev", None), ("start-slot", "staging", None)]


def test_a_partly_failed_stop_is_retried_and_the_stopped_app_is_still_started_later():
    site = make_site(slots=(Slot("staging", "Running"),))
    actions, planned = run([site], "2026-11-27T18:05")
    mark, stop, stop_slot = actions
    outcomes = [Outcome(mark, "succeeded"), Outcome(stop, "succeeded"),
                Outcome(stop_slot, "failed", "HTTP 500")]
    state = settle(State(), planned, outcomes)
    assert site_record(state, "web-dev") == SiteRecord(None, True, ())  # not applied yet, but ours
    half = make_site(state="Stopped", slots=(Slot("staging", "Running"),))
    retry, planned = run([half], "2026-11-27T18:20", state)
    assert kinds(retry) == [("stop-slot", "staging", None)]
    state = all_succeed(state, retry, planned)
    down = make_site(state="Stopped", slots=(Slot("staging", "Stopped"),))
    monday, _ = run([down], "2026-11-30T07:05", state)
    assert kinds(monday) == [("start-site", "web-dev", None), ("start-slot", "staging", None)]


def test_a_dry_run_style_outcome_records_nothing_as_applied():
    actions, planned = run([make_site()], "2026-11-27T18:05")
    state = settle(State(), planned, [Outcome(a, "planned") for a in actions])
    assert site_record(state, "web-dev") == SiteRecord(None, False, ())


def test_an_app_in_an_unknown_state_is_left_for_the_next_run():
    actions, planned = run([make_site(state="Unknown")], "2026-11-27T18:05")
    assert kinds(actions) == [("stop-site", "web-dev", "skipped")]
    assert "neither Running nor Stopped" in actions[0].reason
    assert site_id("web-dev").lower() not in planned.sites


# -- time zones and DST, for real ---------------------------------------------------------

@pytest.mark.parametrize("schedule, now, expected", [
    pytest.param("Mon-Fri 08:00-19:00; tz=America/New_York", "2026-03-09T11:05", [],
                 id="new-york-after-spring-forward-08:00-is-not-13:00-utc-any-more"),
    pytest.param("Mon-Fri 08:00-19:00; tz=America/New_York", "2026-03-09T12:05",
                 [("start-site", "web-dev", None)], id="new-york-08:00-edt-is-12:00-utc"),
    pytest.param("Mon-Fri 08:00-19:00; tz=Europe/Berlin", "2026-03-30T06:05",
                 [("start-site", "web-dev", None)], id="berlin-08:00-cest-is-06:00-utc"),
    pytest.param("Mon-Fri 08:00-17:00; tz=Pacific/Auckland", "2026-11-29T19:05",
                 [("start-site", "web-dev", None)], id="auckland-monday-starts-on-sunday-utc"),
    pytest.param("Mon-Fri 08:00-17:00; tz=Pacific/Auckland", "2026-11-30T07:05",
                 [], id="monday-utc-morning-is-already-monday-evening-in-auckland"),
])
def test_transitions_happen_at_the_right_utc_instant(schedule, now, expected):
    actions, _ = run([make_site(state="Stopped", schedule=schedule)], now,
                     State(sites=record("web-dev", "off@2026-01-01T00:00Z", stopped_by_job=True)))
    assert kinds(actions) == expected


def test_the_reason_shows_the_local_day_when_it_differs_from_utc():
    actions, _ = run([make_site(state="Stopped", schedule="Mon-Fri 08:00-17:00; tz=Pacific/Auckland")],
                     "2026-11-29T19:05", State(sites=record("web-dev", "off@x", True)))
    assert actions[0].reason == ("on at Mon 2026-11-30 08:00 Pacific/Auckland "
                                 "(Sun 2026-11-29 19:00 UTC)")


def test_a_holiday_keeps_the_app_off():
    state = State(sites=record("web-dev", "off@2026-12-24T18:00Z", stopped_by_job=True))
    stopped = make_site(state="Stopped")
    on_christmas, _ = run([stopped], "2026-12-25T08:00", state, holiday_country="DE")
    assert on_christmas == []
    on_an_explicit_day, _ = run([stopped], "2026-12-28T08:00", state, holiday_country="DE",
                                holiday_dates="2026-12-28")
    assert on_an_explicit_day == []
    back, _ = run([stopped], "2026-12-28T08:00", state, holiday_country="DE")
    assert kinds(back) == [("start-site", "web-dev", None)]


# -- production and other exclusions -----------------------------------------------------

@pytest.mark.parametrize("site_kw, plan_kw, config, rule", [
    pytest.param({"tags": {"Environment": "Production"}}, {}, {}, "Environment=Production",
                 id="environment-tag"),
    pytest.param({"tags": {"ENV": " prd "}}, {}, {}, "ENV= prd ", id="env-tag-any-case-spaces"),
    pytest.param({"tags": {"environment": "prod", "ops-keep-on-until": "2030-01-01"}}, {}, {},
                 "environment=prod", id="no-override-tag-unlocks-production"),
    pytest.param({"name": "shop-prod"}, {}, {}, "built-in production pattern", id="name-prod"),
    pytest.param({"name": "api.production.eu"}, {}, {}, "built-in production pattern",
                 id="name-production"),
    pytest.param({"name": "billing_prd2"}, {}, {}, "built-in production pattern", id="name-prd2"),
    pytest.param({"slots": (Slot("prod", "Running"),)}, {}, {}, "slot name 'prod'",
                 id="a-production-slot"),
    pytest.param({"plan": "asp-prod-01"}, {"name": "asp-prod-01"}, {}, "plan name 'asp-prod-01'",
                 id="hosted-on-a-production-plan"),
    pytest.param({}, {"tags": {"env": "production"}}, {}, "its plan 'asp-dev' has tag env=production",
                 id="plan-tagged-production"),
    pytest.param({"sub": OTHER_SUB}, {}, {"deny_subscriptions": OTHER_SUB},
                 "OPS_DEV_HOURS__DENY_SUBSCRIPTIONS", id="denied-subscription"),
    pytest.param({"name": "legacy-web"}, {}, {"deny_name_pattern": "^legacy-"},
                 "OPS_DEV_HOURS__DENY_NAME_PATTERN", id="extra-name-pattern"),
    pytest.param({"tags": {"env": "Live"}}, {}, {"deny_tag_values": "live,uat"},
                 "OPS_DEV_HOURS__DENY_TAG_VALUES", id="extra-tag-value"),
])
def test_production_is_denied_whatever_the_tags_say(site_kw, plan_kw, config, rule):
    site = make_site(**site_kw)
    actions, planned = run([site], "2026-11-27T18:05", plans=[make_plan(**plan_kw)], **config)
    assert kinds(actions) == [("deny", site.name, "skipped")]
    assert rule in actions[0].reason
    assert planned.sites == {} and planned.plans == {}


@pytest.mark.parametrize("name", ["product-catalog-dev", "preprod-web", "reproducer", "prods"])
def test_names_that_merely_contain_prod_are_not_denied(name):
    actions, _ = run([make_site(name)], "2026-11-27T18:05")
    assert kinds(actions) == [("stop-site", name, None)]


@pytest.mark.parametrize("site", [
    make_site(schedule=None),
    make_site(schedule=None, tags={"ops-keep-off-until": "2030-01-01"}),
], ids=["no-opt-in-tag", "override-without-opt-in"])
def test_apps_without_the_opt_in_tag_are_not_touched_or_reported(site):
    actions, planned = run([site], "2026-11-27T18:05")
    assert actions == [] and planned.sites == {}


@pytest.mark.parametrize("config, touched", [
    ({"resource_groups": "rg-dev"}, True),
    ({"resource_groups": "rg-other"}, False),
    ({"subscriptions": SUB}, True),
    ({"subscriptions": OTHER_SUB}, False),
])
def test_scope_settings_limit_the_targets(config, touched):
    actions, _ = run([make_site()], "2026-11-27T18:05", **config)
    assert bool(actions) is touched


# -- malformed tags ------------------------------------------------------------------------

@pytest.mark.parametrize("tags, fault", [
    ({OPT_IN: "Mon-Fri 8-19"}, f"tag {OPT_IN}='Mon-Fri 8-19': '8' is not a time"),
    ({OPT_IN: ""}, f"tag {OPT_IN}='': empty schedule"),
    ({OPT_IN: "default", "ops-keep-on-until": ""}, "tag ops-keep-on-until='': no expiry"),
    ({OPT_IN: "default", "ops-keep-on-until": "tomorrow"}, "not an ISO-8601 time"),
    ({OPT_IN: "default", "ops-keep-off-until": "2026-11-28T22:00"}, "has no UTC offset"),
    ({OPT_IN: "default", "ops-keep-off-until": "2026-02-30"}, "'2026-02-30' is not a valid date"),
    ({OPT_IN: "default", "ops-keep-on-until": "2026-12-01", "ops-keep-off-until": "2026-12-01"},
     "both ops-keep-on-until and ops-keep-off-until are in force"),
])
def test_a_malformed_tag_fails_naming_the_app_while_the_others_are_planned(tags, fault):
    bad = make_site("bad-dev", schedule=None, tags=tags)
    actions, planned = run([bad, make_site("good-dev")], "2026-11-27T18:05")
    assert kinds(actions) == [("invalid", "bad-dev", "failed"), ("stop-site", "good-dev", None)]
    assert actions[0].error.startswith("app 'bad-dev': ")
    assert fault in actions[0].error
    assert site_id("bad-dev").lower() not in planned.sites


# -- overrides -----------------------------------------------------------------------------

def test_keep_on_holds_the_app_on_past_the_off_time_then_the_schedule_resumes():
    site = make_site(tags={"ops-keep-on-until": "2026-11-27T23:00+01:00"})
    state = State(sites=record("web-dev", FRI_ON))
    evening, planned = run([site], "2026-11-27T18:05", state)
    assert evening == []
    assert site_record(planned, "web-dev").applied == "ops-keep-on-until@2026-11-27T22:00:00Z"
    later, _ = run([site], "2026-11-27T22:05", planned)
    assert kinds(later) == [("stop-site", "web-dev", None)]
    assert later[0].reason.startswith("off at Fri 2026-11-27 19:00 Europe/Berlin (18:00 UTC); catch-up")


def test_keep_on_starts_an_app_the_job_stopped_until_the_end_of_the_given_local_day():
    site = make_site(state="Stopped", tags={"ops-keep-on-until": "2026-11-28"})
    actions, planned = run([site], "2026-11-27T20:00",
                           State(sites=record("web-dev", FRI_OFF, stopped_by_job=True)))
    assert kinds(actions) == [("start-site", "web-dev", None)]
    assert "until Sun 2026-11-29 00:00 Europe/Berlin (23:00 UTC)" in actions[0].reason
    assert site_record(planned, "web-dev").applied == "ops-keep-on-until@2026-11-28T23:00:00Z"


def test_keep_off_stops_the_app_in_working_hours_and_it_comes_back_when_it_expires():
    site = make_site(tags={"ops-keep-off-until": "2026-11-30T15:00+01:00"})
    state = State(sites=record("web-dev", MON_ON))
    morning, planned = run([site], "2026-11-30T10:00", state)
    assert kinds(morning) == [("stop-site", "web-dev", None)]
    state = all_succeed(state, morning, planned)
    stopped = replace(site, state="Stopped")
    back, _ = run([stopped], "2026-11-30T14:05", state)
    assert kinds(back) == [("start-site", "web-dev", None)]  # the schedule's Monday on, again


def test_an_expired_override_is_ignored():
    site = make_site(tags={"ops-keep-on-until": "2026-11-27T12:00Z"})
    actions, _ = run([site], "2026-11-27T18:05", State(sites=record("web-dev", FRI_ON)))
    assert kinds(actions) == [("stop-site", "web-dev", None)]


@pytest.mark.parametrize("value, zone, expected", [
    ("2026-11-30", "Pacific/Auckland", "2026-11-30T11:00"),  # end of the local day, NZDT
    ("2026-11-30", "America/New_York", "2026-12-01T05:00"),
    ("2026-03-28", "Europe/Berlin", "2026-03-28T23:00"),  # the night the clocks go forward
    ("2026-11-30T22:00:00+13:00", "Europe/Berlin", "2026-11-30T09:00"),
    ("2026-11-30T09:00Z", "Europe/Berlin", "2026-11-30T09:00"),
])
def test_override_expiry_is_an_instant_or_the_end_of_a_local_day(value, zone, expected):
    assert parse_expiry(value, zone) == utc(expected)


# -- the cap ---------------------------------------------------------------------------------

def test_beyond_the_cap_actions_wait_for_the_next_run_and_are_not_recorded():
    sites = [make_site(f"app{i}-dev") for i in range(3)]
    actions, planned = run(sites, "2026-11-27T18:05", max_actions_per_run=2)  # markers do not count
    assert kinds(actions) == [("stop-site", "app0-dev", None), ("stop-site", "app1-dev", None),
                              ("stop-site", "app2-dev", "skipped")]
    assert unmarked(actions)[2].reason.startswith("cap of 2 actions per run reached")
    assert [a.kind for a in actions if a.target == site_id("app2-dev")] == ["stop-site"]  # not marked either
    state = all_succeed(State(), actions, planned)
    assert site_id("app2-dev").lower() not in state.sites
    sites = [replace(s, state="Stopped") for s in sites[:2]] + [sites[2]]
    next_run, _ = run(sites, "2026-11-27T18:20", state, max_actions_per_run=2)
    assert kinds(next_run) == [("stop-site", "app2-dev", None)]


def test_an_app_and_its_slots_fit_under_the_cap_together_or_wait_together():
    sites = [make_site("a-dev"), make_site("b-dev", slots=(Slot("s1", "Running"), Slot("s2", "Running")))]
    actions, _ = run(sites, "2026-11-27T18:05", max_actions_per_run=2)
    assert kinds(actions) == [("stop-site", "a-dev", None), ("stop-site", "b-dev", "skipped"),
                              ("stop-slot", "s1", "skipped"), ("stop-slot", "s2", "skipped")]


# -- plan scale-down and restore ------------------------------------------------------------------

def scaled_state(original: Sku, scaled_to: Sku, sites: dict) -> State:
    return State(sites=sites, plans={plan_id().lower(): PlanRecord(FRI_OFF, original, scaled_to)})


def test_when_every_app_is_off_the_plan_is_scaled_down_after_the_stops():
    sites = [make_site("web-dev"), make_site("api-dev", state="Stopped")]
    actions, planned = run(sites, "2026-11-27T18:05", State(sites=record("api-dev", FRI_ON)),
                           plans=[make_plan(capacity=2)], scale_down_sku="B1",
                           prices="P1v3=0.169,B1=0.018")
    assert kinds(actions) == [("stop-site", "api-dev", "skipped"), ("stop-site", "web-dev", None),
                              ("scale-down-plan", "asp-dev", None)]
    scale = actions[-1]
    assert scale.after == (f"mark-site:{site_id('web-dev')}", f"stop-site:{site_id('web-dev')}")
    assert scale.params["sku"] == {"name": "B1", "tier": "Basic", "size": "B1", "family": "B",
                                   "capacity": 1}
    assert scale.params["original"] == {"name": "P1v3", "tier": "PremiumV3", "size": "P1v3",
                                        "family": "Pv3", "capacity": 2}
    assert scale.params["tags"] == {RESTORE_TAG: restore_tag_value(ORIGINAL, sku_from_name("B1"))}
    # P1v3 x2 = 0.338/h -> B1 = 0.018/h, off from Fri 18:05 until Mon 07:00 UTC (60.92 h)
    assert scale.params["estimate"]["hourly_saving"] == pytest.approx(0.32)
    assert scale.params["estimate"]["hours_off"] == pytest.approx(60.92)
    assert "about 19.49 over 60.9 h off" in scale.reason
    json.dumps([a.params for a in actions])  # params are JSON, for the report and apply
    assert planned.plans[plan_id().lower()] == PlanRecord(FRI_OFF, ORIGINAL, sku_from_name("B1"))


def test_the_plan_is_restored_before_any_app_starts():
    original, small = ORIGINAL, sku_from_name("B1")
    state = scaled_state(original, small, record("web-dev", FRI_OFF, True) | record("api-dev", FRI_OFF, True))
    sites = [make_site("web-dev", state="Stopped"), make_site("api-dev", state="Stopped")]
    actions, planned = run(sites, "2026-11-30T07:05", state, plans=[make_plan(sku="B1", capacity=1)],
                           scale_down_sku="B1")
    assert kinds(actions) == [("restore-plan", "asp-dev", None), ("start-site", "api-dev", None),
                              ("start-site", "web-dev", None)]
    restore = actions[0]
    assert restore.params["sku"] == original.to_json()
    assert restore.params["remove_tags"] == [RESTORE_TAG]
    assert all(a.after == (restore.key,) for a in actions[1:])
    assert planned.plans[plan_id().lower()].original is None


def test_the_runner_applies_restore_first_and_skips_the_starts_when_it_fails():
    from jobs.runner import Job, RunContext, apply_all
    state = scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True))
    actions, planned = run([make_site(state="Stopped")], "2026-11-30T07:05", state,
                           plans=[make_plan(sku="B1", capacity=1)], scale_down_sku="B1")
    done: list[str] = []

    class Fake(Job):
        concurrency = 4

        def __init__(self, fail: bool):
            self.fail = fail

        def apply(self, action, ctx):
            if action.kind == "restore-plan" and self.fail:
                raise RuntimeError("Conflict: the plan cannot be scaled now")
            done.append(action.kind)

    ctx = RunContext("dev-hours", "r1", utc("2026-11-30T07:05"), False, None, None, None)
    outcomes = apply_all(Fake(False), actions, ctx)
    assert done == ["restore-plan", "start-site"]
    done.clear()
    outcomes = apply_all(Fake(True), actions, ctx)
    assert done == [] and [o.status for o in outcomes] == ["failed", "skipped"]
    kept = settle(state, planned, outcomes)
    assert kept.plans[plan_id().lower()].original == ORIGINAL  # restore is tried again
    assert site_record(kept, "web-dev") == SiteRecord(FRI_OFF, True, ())  # and the start after it


def test_a_plan_is_scaled_down_once_per_off_period():
    state = State(sites=record("web-dev", FRI_OFF, True),
                  plans={plan_id().lower(): PlanRecord(FRI_OFF, None, None)})
    # someone scaled it back up by hand in the evening: it stays as they left it
    actions, _ = run([make_site(state="Stopped")], "2026-11-27T21:00", state, scale_down_sku="B1")
    assert actions == []


def test_a_scale_down_held_back_or_failed_is_tried_again_next_run():
    actions, planned = run([make_site()], "2026-11-27T18:05", scale_down_sku="B1")
    outcomes = [Outcome(a, "failed", "429") if a.kind == "scale-down-plan" else Outcome(a, "succeeded")
                for a in actions]
    state = settle(State(), planned, outcomes)
    retry, _ = run([make_site(state="Stopped")], "2026-11-27T18:20", state, scale_down_sku="B1")
    assert kinds(retry) == [("scale-down-plan", "asp-dev", None)]


@pytest.mark.parametrize("features, current, capacity, target, expected", [
    pytest.param({"slots": (Slot("staging", "Stopped"),)}, "S1", 1, "B1",
                 "B1 (Basic) refused: web-dev has deployment slots (staging), which need Standard",
                 id="slots-need-standard"),
    pytest.param({"always_on": True}, "B1", 1, "F1", "web-dev uses Always On, which needs Basic",
                 id="always-on-needs-basic"),
    pytest.param({"vnet_integrated": True}, "B2", 1, "D1", "web-dev uses VNet integration",
                 id="vnet-needs-basic"),
    pytest.param({"custom_tls_domains": True}, "S1", 1, "F1",
                 "web-dev has custom domains with TLS, which need Basic", id="tls-needs-basic"),
    pytest.param({}, "B1", 1, "S1", "keeps B1: S1 is not cheaper", id="never-an-upgrade"),
])
def test_a_refused_downgrade_is_reported_and_the_apps_stay_stopped(features, current, capacity,
                                                                    target, expected):
    actions, planned = run([make_site(**features)], "2026-11-27T18:05",
                           plans=[make_plan(sku=current, capacity=capacity)], scale_down_sku=target)
    assert kinds(actions) == ([("stop-site", "web-dev", None)]
                              + [("stop-slot", s.name, None) for s in features.get("slots", ())
                                 if s.state == "Running"]
                              + [("scale-down-plan", "asp-dev", "skipped")])
    assert expected in actions[-1].reason and "apps stay stopped" in actions[-1].reason
    assert planned.plans[plan_id().lower()].original is None  # nothing to restore later


def test_a_refused_sku_still_sheds_instances():
    site = make_site(slots=(Slot("staging", "Stopped"),))
    actions, _ = run([site], "2026-11-27T18:05", plans=[make_plan(sku="S1", capacity=3)],
                     scale_down_sku="B1")
    scale = actions[-1]
    assert scale.kind == "scale-down-plan" and scale.verdict is None
    assert scale.params["sku"]["name"] == "S1" and scale.params["sku"]["capacity"] == 1
    assert "B1 (Basic) refused" in scale.reason and "instances only" in scale.reason


def test_nothing_to_scale_when_the_plan_is_already_as_small_as_configured():
    actions, _ = run([make_site()], "2026-11-27T18:05", plans=[make_plan(sku="B1", capacity=1)])
    assert kinds(actions) == [("stop-site", "web-dev", None)]


@pytest.mark.parametrize("other, why", [
    pytest.param(make_site("shared-tool", state="Stopped", schedule=None),
                 "hosts app 'shared-tool' which is not a dev-hours target", id="not-opted-in"),
    pytest.param(make_site("shop-prod", state="Stopped"), "hosts denied app 'shop-prod'",
                 id="denied-app"),
    pytest.param(make_site("broken-dev", state="Stopped", schedule="Mon-Fri 8-19"),
                 "hosts app 'broken-dev' whose tags are invalid", id="invalid-app"),
])
def test_a_plan_hosting_any_app_that_is_not_a_target_is_never_scaled(other, why):
    actions, _ = run([make_site(), other], "2026-11-27T18:05", scale_down_sku="B1")
    scale = [a for a in actions if a.kind == "scale-down-plan"]
    assert len(scale) == 1 and scale[0].verdict == "skipped"
    assert why in scale[0].reason
    assert ("stop-site", "web-dev", None) in kinds(actions)


def test_a_plan_with_more_apps_than_seen_is_never_scaled():
    actions, _ = run([make_site()], "2026-11-27T18:05", plans=[make_plan(number_of_sites=2)],
                     scale_down_sku="B1")
    assert actions[-1].verdict == "skipped" and "hosts 2 apps but only 1 were seen" in actions[-1].reason


def test_a_plan_whose_own_app_list_names_an_app_this_run_does_not_see_is_never_scaled():
    # a production app outside OPS_DEV_HOURS__RESOURCE_GROUPS, and a slot that made the
    # count of sites and slots seen match numberOfSites
    web = make_site(slots=(Slot("staging", "Running"),))
    unseen = replace(make_site("payments", schedule=None, tags={"environment": "Production-EU"}),
                     resource_group="rg-payments")
    actions, planned = run([web], "2026-11-27T18:05",
                           plans=[make_plan(capacity=2, number_of_sites=2, hosted=(web, unseen))],
                           scale_down_sku="B1")
    scale = [a for a in actions if a.kind == "scale-down-plan"]
    assert [a.verdict for a in scale] == ["skipped"]
    assert "hosts 2 apps but only 1 were seen" in scale[0].reason
    assert "hosts denied app 'payments' (rg-payments)" in scale[0].reason
    assert planned.plans[plan_id().lower()].original is None


@pytest.mark.parametrize("hosted, why", [
    pytest.param((make_site(), make_site("tool", schedule=None)),
                 "hosts app 'tool' (rg-dev) which this run does not see", id="outside-the-scope"),
    pytest.param(None, "its own app list was not read", id="list-not-read"),
])
def test_a_plan_is_scaled_only_when_its_own_app_list_holds_only_apps_this_run_stops(hosted, why):
    actions, _ = run([make_site()], "2026-11-27T18:05", plans=[make_plan(hosted=hosted)],
                     read_apps=False, scale_down_sku="B1")
    assert sorted(kinds(actions)) == [("scale-down-plan", "asp-dev", "skipped"), ("stop-site", "web-dev", None)]
    assert why in next(a.reason for a in actions if a.kind == "scale-down-plan")


def test_a_plan_is_not_scaled_while_an_app_on_it_still_runs():
    early = make_site("early-dev")
    late = make_site("late-dev", schedule="Mon-Fri 08:00-21:00")
    actions, _ = run([early, late], "2026-11-27T18:05", scale_down_sku="B1")
    assert kinds(actions) == [("stop-site", "early-dev", None)]


def test_a_scaled_down_plan_is_restored_when_someone_starts_an_app_by_hand():
    state = scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True))
    actions, _ = run([make_site(state="Running")], "2026-11-28T10:00", state,
                     plans=[make_plan(sku="B1", capacity=1)], scale_down_sku="B1")
    assert kinds(actions) == [("restore-plan", "asp-dev", None)]
    assert "'web-dev' is running (started by hand)" in actions[0].reason


def test_a_scaled_down_plan_is_restored_when_it_stops_being_eligible():
    state = scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True))
    other = make_site("tool", state="Stopped", schedule=None)
    actions, _ = run([make_site(state="Stopped"), other], "2026-11-28T10:00", state,
                     plans=[make_plan(sku="B1", capacity=1)])
    assert kinds(actions) == [("restore-plan", "asp-dev", None)]
    assert "plan no longer eligible: hosts app 'tool' which is not a dev-hours target" in actions[0].reason


B1_TAG = {RESTORE_TAG: restore_tag_value(ORIGINAL, sku_from_name("B1"))}


@pytest.mark.parametrize("sites, plan_, state, config, why", [
    pytest.param([make_site(state="Stopped", tags={"environment": "prod"})],
                 make_plan(sku="B1", capacity=1, tags=B1_TAG), State(), {},
                 "hosts denied app 'web-dev'", id="tag-on-a-plan-hosting-production"),
    pytest.param([], make_plan(sku="B1", capacity=1, tags={**B1_TAG, "env": "Production-EU"}), State(), {},
                 "denied: plan has tag env=Production-EU", id="tag-on-a-production-plan"),
    pytest.param([], make_plan(sku="B1", capacity=1, tags=B1_TAG), State(), {"deny_subscriptions": SUB},
                 f"denied: subscription {SUB} is in OPS_DEV_HOURS__DENY_SUBSCRIPTIONS",
                 id="tag-in-a-denied-subscription"),
    pytest.param([make_site(state="Stopped", tags={"stage": "prd"})], make_plan(sku="B1", capacity=1),
                 scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True)), {},
                 "hosts denied app 'web-dev'", id="recorded-plan-now-hosting-production"),
    pytest.param([make_site(state="Stopped")], make_plan("asp-prod", sku="B1", capacity=1),
                 State(plans={plan_id("asp-prod").lower(): PlanRecord(FRI_OFF, ORIGINAL, sku_from_name("B1"))}),
                 {}, "denied: plan name 'asp-prod'", id="recorded-plan-now-production"),
])
def test_a_denied_plan_is_never_restored_only_reported_failed(sites, plan_, state, config, why):
    sites = [replace(s, plan_id=plan_.id) for s in sites]
    actions, planned = run(sites, "2026-11-30T07:05", state, plans=[plan_], **config)
    plan_actions = [a for a in actions if a.target == plan_.id]
    assert [(a.kind, a.verdict) for a in plan_actions] == [("restore-plan", "failed")]
    assert f"plan '{plan_.name}'" in plan_actions[0].error and why in plan_actions[0].error
    assert "restore it by hand" in plan_actions[0].error
    assert planned.plans.get(plan_.id.lower()) == state.plans.get(plan_.id.lower())  # kept as it was


def test_the_record_not_the_tag_says_what_to_restore():
    small = sku_from_name("B1")
    forged = {RESTORE_TAG: restore_tag_value(sku_from_name("P3v3", 30), small)}
    state = scaled_state(ORIGINAL, small, record("web-dev", FRI_OFF, True))
    actions, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", state,
                     plans=[make_plan(sku="B1", capacity=1, tags=forged)])
    assert kinds(actions)[0] == ("restore-plan", "asp-dev", None)
    assert actions[0].params["sku"] == ORIGINAL.to_json()


def test_a_restore_tag_on_a_plan_not_at_the_tags_scaled_size_is_not_followed():
    tagged = make_plan(sku="S1", capacity=1, tags=B1_TAG)
    actions, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", State(), plans=[tagged])
    assert [a for a in actions if a.kind == "restore-plan" and not a.verdict] == []


def test_an_app_the_job_stopped_that_became_production_is_never_written():
    state = scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True))
    prod_now = make_site(state="Stopped", tags={"environment": "prod"})
    actions, _ = run([prod_now], "2026-11-28T10:00", state, plans=[make_plan(sku="B1", capacity=1)])
    assert kinds(actions) == [("deny", "web-dev", "skipped"), ("start-site", "web-dev", "failed"),
                              ("restore-plan", "asp-dev", "failed")]
    assert "stopped by this job" in actions[1].reason and "never written" in actions[1].reason
    assert "hosts denied app 'web-dev'" in actions[2].error


def test_a_plan_changed_by_hand_after_the_scale_down_is_not_restored():
    state = scaled_state(ORIGINAL, sku_from_name("B1"), record("web-dev", FRI_OFF, True))
    actions, planned = run([make_site(state="Stopped")], "2026-11-30T07:05", state,
                           plans=[make_plan(sku="P2v3", capacity=1)])
    assert kinds(actions) == [("restore-plan", "asp-dev", "skipped"), ("start-site", "web-dev", None)]
    assert "changed by hand since the scale-down" in actions[0].reason
    assert actions[1].after == ()
    assert planned.plans[plan_id().lower()].original is None


def test_the_restore_tag_rebuilds_a_lost_state():
    tagged = make_plan(sku="B1", capacity=1,
                       tags={RESTORE_TAG: restore_tag_value(ORIGINAL, sku_from_name("B1"))})
    actions, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", State(), plans=[tagged])
    assert kinds(actions)[0] == ("restore-plan", "asp-dev", None)
    assert actions[0].params["sku"] == ORIGINAL.to_json()


def test_a_malformed_restore_tag_is_a_failure_naming_the_plan():
    tagged = make_plan(sku="B1", capacity=1, tags={RESTORE_TAG: "name=P1v3"})
    actions, _ = run([make_site(state="Stopped")], "2026-11-30T07:05", State(), plans=[tagged])
    fail = [a for a in actions if a.verdict == "failed"]
    assert len(fail) == 1 and "plan 'asp-dev': tag ops-dev-hours-restore='name=P1v3'" in fail[0].error


def test_the_cap_holds_starts_back_when_their_plan_restore_does_not_fit():
    state = scaled_state(ORIGINAL, sku_from_name("B1"),
                         record("web-dev", FRI_OFF, True) | record("other-dev", FRI_OFF, True))
    other = make_site("other-dev", plan="asp-aaa", state="Stopped")
    actions, planned = run([other, make_site(state="Stopped")], "2026-11-30T07:05", state,
                           plans=[make_plan(sku="B1", capacity=1), make_plan("asp-aaa")],
                           max_actions_per_run=1)
    assert kinds(actions) == [("start-site", "other-dev", None), ("restore-plan", "asp-dev", "skipped"),
                              ("start-site", "web-dev", "skipped")]
    assert "waits for the plan's restore" in actions[2].reason
    assert site_record(planned, "web-dev").applied == FRI_OFF  # the start is still due next run
    assert planned.plans[plan_id().lower()].original == ORIGINAL  # and so is the restore


# -- savings, state, explain -------------------------------------------------------------------

@pytest.mark.parametrize("prices, saving, text", [
    ({"P1v3": 0.169, "B1": 0.018}, 0.32 * 10, "about 3.20 over 10.0 h off"),
    ({"p1V3": 0.169}, None, "saving unknown: no price for B1"),
    ({}, None, "no price for P1v3 and B1"),
])
def test_savings_are_estimated_from_configured_prices_only(prices, saving, text):
    s = estimate_savings(sku_from_name("P1v3", 2), sku_from_name("B1"), prices, hours_off=10)
    assert s.saving == (pytest.approx(saving) if saving is not None else None)
    assert text in s.describe()


def test_state_survives_a_json_round_trip():
    state = State(sites=record("web-dev", FRI_OFF, True, ("staging",)),
                  plans={plan_id().lower(): PlanRecord(FRI_OFF, ORIGINAL, sku_from_name("B1"))},
                  last_run=utc("2026-11-27T18:05"))
    text = json.dumps(state.to_json())
    assert State.from_json(json.loads(text)) == state
    assert State.from_json({}) == State()


def test_explain_lists_next_transitions_in_local_time_and_utc_and_what_a_run_would_do():
    sites = [make_site("web-dev", schedule="Mon-Fri 08:00-19:00; tz=America/New_York"),
             make_site("shop-prod"), make_site("bad-dev", schedule="weekdays 9-5")]
    ex = explain(sites, [make_plan()], State(), utc("2026-11-28T00:05"), settings(), days=3)
    by_name = {t.name: t for t in ex.targets}
    web = by_name["web-dev"]
    assert web.next[0] == {"kind": "on", "local": "2026-11-30T08:00:00-05:00",
                           "utc": "2026-11-30T13:00:00Z", "scheduled": "Mon 2026-11-30 08:00"}
    assert [a["kind"] for a in web.actions] == ["mark-site", "stop-site"]
    assert by_name["shop-prod"].status == "denied" and by_name["bad-dev"].status == "invalid"
    assert "'9' is not a time" in by_name["bad-dev"].reason
    json.dumps(ex.to_json())


def test_a_cheaper_tier_never_gets_more_instances_than_it_allows():
    actions, _ = run([make_site()], "2026-11-27T18:05", plans=[make_plan(capacity=8)],
                     scale_down_sku="B1", scale_down_capacity=5)
    assert actions[-1].params["sku"] == {"name": "B1", "tier": "Basic", "size": "B1", "family": "B",
                                         "capacity": 3}
