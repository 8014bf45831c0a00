"""Malformed tags on resources (issue #8): a failed outcome naming each malformed
resource and its fault, and every other target still handled.

- dev-hours: an estate of apps where a subset, chosen by hypothesis, carries a
  malformed ``ops-dev-hours`` schedule or ``ops-keep-on-until``/``ops-keep-off-until``
  override; every other app still gets its stop (dry runs, plus one real run).
- secret-rotation: a vault where a subset of secrets carries a malformed
  ``rotation-*`` tag set; every other due secret is still planned (dry runs) or
  rotated (one real run).
- the grammars themselves: any text at all is a schedule, an expiry or a tag set
  that parses, or one that fails with the grammar's own error (never another
  exception, which would stop the whole run).
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import service
from jobs.dev_hours.schedule import ScheduleError, latest_transition, next_transitions, parse_schedule
from jobs.dev_hours.targets import parse_expiry
from jobs.secret_rotation import tags as T
from tests.resilience.test_bad_input_http import writes

SUB = "0e000000-0000-0000-0000-0000000000b1"
RG = "rg-bad-tags-dev"
SCOPE = f"/subscriptions/{SUB}/resourceGroups/{RG}"
NOW = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)  # a Tuesday night: every schedule below is off
APPS = 12

WORLD_SETTINGS = settings(max_examples=60, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- dev-hours ----------------------------------------------------------------------------------

def plan_resource(name: str) -> dict:
    return {"id": f"{SCOPE}/providers/Microsoft.Web/serverfarms/{name}", "name": name,
            "type": "Microsoft.Web/serverfarms", "kind": "app", "location": "West Europe",
            "tags": {"environment": "dev"},
            # one instance, no scale-down SKU: nothing to scale, so each app's action is its stop
            "sku": {"name": "B1", "tier": "Basic", "size": "B1", "family": "B", "capacity": 1},
            "properties": {"status": "Ready", "geoRegion": "West Europe", "reserved": False,
                           "resourceGroup": RG, "provisioningState": "Succeeded"}}


def site_resource(name: str, tags: dict[str, str]) -> dict:
    return {"id": f"{SCOPE}/providers/Microsoft.Web/sites/{name}", "name": name,
            "type": "Microsoft.Web/sites", "kind": "app", "location": "West Europe",
            "tags": {"environment": "dev", **tags},
            "properties": {"state": "Running", "enabled": True, "resourceGroup": RG,
                           "defaultHostName": f"{name}.azurewebsites.net",
                           "hostNameSslStates": [{"name": f"{name}.azurewebsites.net", "hostType": "Standard",
                                                  "sslState": "Disabled"}],
                           "serverFarmId": f"{SCOPE}/providers/Microsoft.Web/serverfarms/plan-{name}",
                           "siteConfig": {"alwaysOn": False, "numberOfWorkers": 1}}}


def estate(app_tags: list[dict[str, str]]) -> dict:
    group = {"id": SCOPE, "name": RG, "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
             "tags": {"environment": "dev"}, "properties": {"provisioningState": "Succeeded"}}
    resources = [group]
    for i, tags in enumerate(app_tags):
        resources += [plan_resource(f"plan-app{i:02d}-dev"), site_resource(f"app{i:02d}-dev", tags)]
    return {"subscriptions": {SUB: {"displayName": "Bad Tags Dev"}}, "resources": resources}


# Opted in, and off at NOW: each gets a stop.
WELL_FORMED = [
    {"ops-dev-hours": "default"},
    {"ops-dev-hours": "DEFAULT"},
    {"Ops-Dev-Hours": "Mon-Fri 08:00-19:00; tz=UTC"},
    {"ops-dev-hours": "weekdays 09:00-17:30"},
    {"ops-dev-hours": "off=daily 20:00"},
    {"ops-dev-hours": "Mon-Fri 08:00-12:00,13:00-19:00; holidays=none"},
    {"ops-dev-hours": "mon-fri 8:00-18:00; TZ = europe/london"},
    {"ops-dev-hours": "default", "ops-keep-on-until": "2026-11-20T00:00Z"},  # expired: ignored
    {"ops-dev-hours": "default", "ops-keep-off-until": "2026-11-30"},  # keep off: still a stop
    {"ops-dev-hours": "default", "ops-keep-on-until": "2026-11-24T21:00+00:00",
     "ops-keep-off-until": "2026-12-01T08:00:00+01:00"},  # one expired, one in force
]

BAD_SCHEDULES = [
    "", " ", ";", "Mon-Fri 8-19", "Mon-Fri 08:00", "Mon-Fri", "08:00-19:00", "Funday 08:00-19:00",
    "Mon-Fri 08:00-19:00; tz=Mars/Olympus", "Mon-Fri 08:00-19:00; tz=", "Mon-Fri 08:00-19:00; tz=UTC; tz=UTC",
    "Mon-Fri 08:00-19:00; on=Mon 07:00", "on=Mon 08:00; off=Mon 08:00", "Mon-Fri 25:00-26:00",
    "Mon-Fri 08:00-08:00", "Mon-Fri 08:00-24:01", "Mon-Fri 08:00-19:00; holidays=XX",
    "Mon-Fri 08:00-19:00; holidays=US-XX", "Mon-Fri 08:00-19:00, Sat 10:00-12:00", "Mon-Fri 08:00-19:00 extra",
    "Mon-Fri 08:00-19:00; colour=red", "weekdays 8am to 6pm", "Mon-Fri 08:00-19:00\x00", "\u00a0Mon-",
    "Mon-Fri 08:00-19:00; tz=../../etc/passwd", "Mon-Fri 08:00-19:00; tz=Europe/London\x00",
    "x" * 256, "Mon-" * 100,
]
BAD_EXPIRIES = [
    "", " ", "tomorrow", "soon", "2026-13-01", "2026-02-30", "2026-11-27T25:00Z", "2026-11-27T22:00",
    "2026-11-27 22:00", "2026-11-27T22:00+24:00", "27/11/2026", "1732730400", "2026-11-27T22:00Z extra",
    # out of range: these overflowed the date arithmetic and stopped the whole run
    "9999-12-31", "9999-12-31T23:59-14:00", "0001-01-01T00:00+14:00", "0001-01-01", "1999-12-31",
    "2201-01-01T00:00Z", "9999-12-30T00:00Z",
]


def schedule_fault(text: str) -> str | None:
    try:
        parse_schedule(text, zone="Europe/London")
    except ScheduleError as exc:
        return str(exc)
    return None


def expiry_fault(text: str) -> str | None:
    try:
        parse_expiry(text, "Europe/London")
    except ValueError as exc:
        return str(exc)
    return None


@st.composite
def malformed_app_tags(draw) -> tuple[dict[str, str], str, str]:
    """(tags, how the failure names the tag at fault, the fault) for an app whose tags do not parse."""
    kind = draw(st.sampled_from(["schedule", "schedule", "expiry", "expiry", "both_overrides"]))
    if kind == "schedule":
        text = draw(st.one_of(st.sampled_from(BAD_SCHEDULES),
                              st.text(max_size=40).filter(lambda t: t.strip().lower() != "default"
                                                          and schedule_fault(t) is not None)))
        return {"ops-dev-hours": text}, "tag ops-dev-hours=", schedule_fault(text)
    if kind == "expiry":
        tag = draw(st.sampled_from(["ops-keep-on-until", "ops-keep-off-until"]))
        text = draw(st.one_of(st.sampled_from(BAD_EXPIRIES),
                              st.text(max_size=30).filter(lambda t: expiry_fault(t) is not None)))
        schedule = draw(st.sampled_from(["default", "Mon-Fri 08:00-19:00; tz=UTC"]))
        return {"ops-dev-hours": schedule, tag: text}, f"tag {tag}=", expiry_fault(text)
    return ({"ops-dev-hours": "default", "ops-keep-on-until": "2026-11-25",
             "ops-keep-off-until": "2026-11-26T08:00Z"}, "both ops-keep-on-until and ops-keep-off-until",
            "are in force; remove one")


@st.composite
def dev_hours_estates(draw):
    bad = draw(st.sets(st.integers(0, APPS - 1), min_size=1, max_size=APPS // 2))
    apps = []
    for i in range(APPS):
        if i in bad:
            apps.append(draw(malformed_app_tags()))
        else:
            apps.append((draw(st.sampled_from(WELL_FORMED)), None, None))
    return apps


def app_id(i: int) -> str:
    return f"{SCOPE}/providers/Microsoft.Web/sites/app{i:02d}-dev"


def check_dev_hours_report(report: dict, apps, done: str) -> None:
    by_target: dict[str, list[dict]] = {}
    for a in report["actions"]:
        by_target.setdefault(a["target"].lower(), []).append(a)
    assert report["errors"] == [], report["errors"]
    for i, (tags, fault_tag, fault) in enumerate(apps):
        actions = by_target.pop(app_id(i).lower(), [])
        if fault_tag is None:  # well formed: its marker, then its stop, nothing else
            assert [(a["kind"], a["status"]) for a in actions] == [("mark-site", done), ("stop-site", done)], \
                (tags, actions)
            continue
        assert [(a["kind"], a["status"]) for a in actions] == [("invalid", "failed")], (tags, actions)
        error = actions[0]["error"]
        assert f"app 'app{i:02d}-dev'" in error and fault_tag in error, error
        assert fault in error, (fault, error)
    assert by_target == {}, by_target  # nothing on the plans or anything else
    bad = sum(1 for _, fault_tag, _ in apps if fault_tag)
    assert report["summary"]["failed"] == bad and report["status"] == "failed"
    assert report["details"]["apps"]["invalid"] == bad


def configure_dev_hours(monkeypatch) -> None:
    monkeypatch.setenv("OPS_SUBSCRIPTIONS", SUB)
    monkeypatch.setenv("OPS_DEV_HOURS__TIMEZONE", "Europe/London")
    service.reset()


def test_malformed_dev_hours_tags_fail_by_name_and_every_other_app_is_still_stopped(world, app_env,
                                                                                     monkeypatch):
    configure_dev_hours(monkeypatch)

    @WORLD_SETTINGS
    @given(dev_hours_estates())
    def check(apps):
        world(estate([tags for tags, _, _ in apps]))
        report = service.run("dev-hours", trigger="cli", dry_run=True, now=NOW)
        check_dev_hours_report(report, apps, "planned")
        assert writes(app_env) == []

    check()


def test_a_real_dev_hours_run_stops_the_well_formed_apps_and_leaves_the_malformed_ones(world, app_env,
                                                                                       monkeypatch):
    configure_dev_hours(monkeypatch)
    apps = [(WELL_FORMED[i % len(WELL_FORMED)], None, None) for i in range(APPS)]
    for i, expiry in ((1, "9999-12-31"), (4, "0001-01-01T00:00+14:00"), (7, "2026-11-27T22:00")):
        apps[i] = ({"ops-dev-hours": "default", "ops-keep-off-until": expiry}, "tag ops-keep-off-until=",
                   expiry_fault(expiry))
    for i, text in ((2, "Mon-Fri 8-19"), (9, "")):
        apps[i] = ({"ops-dev-hours": text}, "tag ops-dev-hours=", schedule_fault(text))
    sandbox = world(estate([tags for tags, _, _ in apps]))

    report = service.run("dev-hours", trigger="cli", dry_run=False, now=NOW)

    check_dev_hours_report(report, apps, "succeeded")
    states = {r["name"]: r["properties"]["state"] for r in sandbox.snapshot()["resources"]
              if r["type"] == "Microsoft.Web/sites"}
    for i, (_, fault_tag, _) in enumerate(apps):
        assert states[f"app{i:02d}-dev"] == ("Running" if fault_tag else "Stopped")
    touched = {path.split("/sites/")[1].split("/")[0] for _, path, _ in writes(app_env) if "/sites/" in path}
    assert touched == {f"app{i:02d}-dev" for i, (_, fault_tag, _) in enumerate(apps) if not fault_tag}


# -- secret-rotation ----------------------------------------------------------------------------

REDIS = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Cache/Redis/cache1"
PG = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"
STORAGE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1"

BAD_TAG_SETS = [
    {"rotation-kind": "magic"},
    {"rotation-kind": ""},
    {"rotation-kind": "generated\x00"},
    {"rotation-period-days": "30"},  # no kind
    {"rotation-resource": REDIS, "rotation-credential": "primary"},  # no kind
    {"rotation-kind": "generated", "rotation-resource": REDIS},
    {"rotation-kind": "generated", "rotation-period-days": "0"},
    {"rotation-kind": "generated", "rotation-period-days": "3651"},
    {"rotation-kind": "generated", "rotation-period-days": "-1"},
    {"rotation-kind": "generated", "rotation-period-days": "1.5"},
    {"rotation-kind": "generated", "rotation-period-days": "thirty"},
    {"rotation-kind": "generated", "rotation-period-days": ""},
    {"rotation-kind": "generated", "rotation-consumers": "rg/app"},  # generated: needs full ids
    {"rotation-kind": "generated", "rotation-consumers": "not a site"},
    {"rotation-kind": "generated", **{f"extra-{i}": "x" for i in range(12)}},  # too many tags
    {"rotation-kind": "redis-key"},
    {"rotation-kind": "redis-key", "rotation-resource": "cache1", "rotation-credential": "primary"},
    {"rotation-kind": "redis-key", "rotation-resource": STORAGE, "rotation-credential": "primary"},
    {"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "tertiary"},
    {"rotation-kind": "redis-key", "rotation-resource": REDIS},
    {"rotation-kind": "redis", "rotation-resource": REDIS + "/../cache2", "rotation-credential": "primary"},
    {"rotation-kind": "storage-key", "rotation-resource": STORAGE, "rotation-credential": "key3"},
    {"rotation-kind": "storage", "rotation-resource": STORAGE, "rotation-credential": "key1",
     "rotation-roles": "a,b"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "bad role"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app; DROP ROLE x"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_a",
     "rotation-roles": "app_a,app_b"},  # roles without the admin secret
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_c",
     "rotation-roles": "app_a,app_b", "rotation-admin-secret": "pg-admin"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_a",
     "rotation-roles": "app_a,app_a", "rotation-admin-secret": "pg-admin"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_a",
     "rotation-admin-secret": "../pg-admin"},
    {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_a",
     "rotation-consumers": "rg/app,/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Sql/servers/x"},
    # bookkeeping edited by hand: ended the grace period at once, or (naive) stopped the whole plan
    {"rotation-kind": "generated", "rotation-previous-version": "0" * 32, "rotation-grace-until": "next week"},
    {"rotation-kind": "generated", "rotation-previous-version": "0" * 32,
     "rotation-grace-until": "2026-12-01T00:00:00"},
]
CONFIG_AND_BOOKKEEPING = list(T.CONFIG_TAGS) + list(T.BOOKKEEPING_TAGS)
TAG_VALUES = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["generated", "redis", "postgres", "storage", "primary", "key1", "app_a", "app_a,app_b",
                     REDIS, PG, STORAGE, "30", "0", "rg/app", "pg-admin", "2026-12-01T00:00:00Z"]),
)


def tag_fault(name: str, tags: dict[str, str]) -> str | None:
    try:
        T.parse(name, tags, 90)
    except T.TagError as exc:
        return exc.fault
    return None


@st.composite
def malformed_secret_tags(draw, name: str) -> tuple[dict[str, str], str]:
    tags = draw(st.one_of(
        st.sampled_from(BAD_TAG_SETS),
        st.dictionaries(st.sampled_from(CONFIG_AND_BOOKKEEPING), TAG_VALUES, min_size=1, max_size=6)
          .filter(lambda t: tag_fault(name, t) is not None),
    ))
    return dict(tags), tag_fault(name, tags)


def secret(name: str, tags: dict[str, str], created: str = "-100d") -> dict:
    return {"name": name, "value": f"Seed-Value-Of-{name}-0123456789", "content_type": "text/plain",
            "created": created, "tags": dict(tags)}


SECRETS = 10


@st.composite
def vaults(draw):
    bad = draw(st.sets(st.integers(0, SECRETS - 1), min_size=1, max_size=SECRETS // 2))
    entries = []
    for i in range(SECRETS):
        name = f"bad-tags-{i:02d}"
        if i in bad:
            tags, fault = draw(malformed_secret_tags(name))
            entries.append((name, tags, fault))
        else:  # due: 100 days old, period 30
            entries.append((name, {"rotation-kind": draw(st.sampled_from(["generated", "GENERATED", " generated "])),
                                   "rotation-period-days": "30"}, None))
    return entries


def vault_world(entries) -> dict:
    secrets = [secret(name, tags) for name, tags, _ in entries]
    secrets.append(secret("bad-tags-untagged", {}))  # not managed: left alone, no outcome
    return {"secrets": copy.deepcopy(secrets)}


def check_rotation_report(report: dict, entries, done: str) -> None:
    by_target: dict[str, list[dict]] = {}
    for a in report["actions"]:
        by_target.setdefault(a["target"], []).append(a)
    assert report["errors"] == [], report["errors"]
    for name, tags, fault in entries:
        actions = by_target.pop(name, [])
        if fault is None:
            assert [(a["kind"], a["status"]) for a in actions] == [("rotate-secret", done)], (tags, actions)
            continue
        assert [(a["kind"], a["status"]) for a in actions] == [("invalid-tags", "failed")], (tags, actions)
        assert actions[0]["error"] == f"tags: {fault}", (actions[0]["error"], fault)
    assert by_target == {}, by_target  # nothing for the untagged secret, nothing else
    rows = {r["secret"]: r["status"] for r in report["details"]["secrets"]}
    assert {n for n, s in rows.items() if s == "invalid"} == {n for n, _, f in entries if f}


def test_malformed_rotation_tags_fail_by_name_and_every_other_due_secret_is_still_planned(world, app_env):
    service.reset()

    @WORLD_SETTINGS
    @given(vaults())
    def check(entries):
        world(vault_world(entries))
        report = service.run("secret-rotation", trigger="cli", dry_run=True, now=datetime.now(timezone.utc))
        check_rotation_report(report, entries, "planned")
        assert writes(app_env) == []

    check()


def test_a_real_rotation_run_rotates_the_well_formed_secrets_and_touches_no_malformed_one(world, app_env,
                                                                                         monkeypatch):
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_DELAY_SECONDS", "0.05")
    service.reset()
    entries = []
    for i in range(SECRETS):
        name = f"bad-tags-{i:02d}"
        if i % 3 == 1:
            tags = BAD_TAG_SETS[(i * 7) % len(BAD_TAG_SETS)]
            entries.append((name, dict(tags), tag_fault(name, tags)))
        else:
            entries.append((name, {"rotation-kind": "generated", "rotation-period-days": "30"}, None))
    entries.append(("bad-tags-grace", dict(BAD_TAG_SETS[-1]), tag_fault("bad-tags-grace", BAD_TAG_SETS[-1])))
    world(vault_world(entries))

    report = service.run("secret-rotation", trigger="cli", dry_run=False)

    check_rotation_report(report, entries, "succeeded")
    touched = {path.split("/")[2].removesuffix("--pending") for _, path, _ in writes(app_env)
               if path.startswith("/secrets/")}
    assert touched == {name for name, _, fault in entries if fault is None}


def test_the_malformed_examples_are_all_malformed():
    assert [t for t in BAD_SCHEDULES if schedule_fault(t) is None] == []
    assert [t for t in BAD_EXPIRIES if expiry_fault(t) is None] == []
    assert [t for t in BAD_TAG_SETS if tag_fault("bad-tags-00", t) is None] == []


# -- the grammars, on any text ------------------------------------------------------------------

SCHEDULE_TOKENS = st.sampled_from(["Mon", "fri", "Sunday", "-", ",", ";", "08:00", "19:00", "24:00", "0:0",
                                   "tz=", "holidays=", "on=", "off=", "daily", "weekends", " ", "=",
                                   "Europe/London", "Pacific/Kiritimati", "Etc/GMT+12", "US-NY", "GB",
                                   "none", "XX-YY", "23:59", "99:99", "\u00a0", "\x00"])
schedule_texts = st.one_of(st.text(max_size=60), st.lists(SCHEDULE_TOKENS, max_size=14).map("".join),
                           st.lists(SCHEDULE_TOKENS, max_size=14).map(" ".join))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31),
                        timezones=st.just(timezone.utc))


@settings(max_examples=400, deadline=None, database=None)
@given(schedule_texts, instants)
def test_any_schedule_text_parses_or_fails_with_a_schedule_error(text, now):
    try:
        schedule = parse_schedule(text, zone="Europe/London")
    except ScheduleError as exc:
        assert str(exc).strip()
        return
    latest_transition(schedule, now)  # a schedule that parses can always be evaluated
    next_transitions(schedule, now, 7)


expiry_texts = st.one_of(
    st.text(max_size=40),
    st.datetimes().flatmap(lambda m: st.sampled_from(["", "Z", "+14:00", "-12:00", "+23:59", "-23:59"])
                           .map(lambda z: m.isoformat(timespec="minutes") + z)),
    st.dates().map(str),
)


@settings(max_examples=400, deadline=None, database=None)
@given(expiry_texts, st.sampled_from(["UTC", "Europe/London", "Pacific/Kiritimati", "Etc/GMT+12",
                                      "America/St_Johns"]), instants)
def test_any_override_expiry_parses_to_a_usable_instant_or_fails_with_a_value_error(text, zone, now):
    try:
        until = parse_expiry(text, zone)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert until.tzinfo is not None
    # what the job does with an expiry: shows it in the zone, compares it, and (keep-off)
    # looks at the schedule around it
    until.astimezone(ZoneInfo(zone)), until > now
    latest_transition(parse_schedule("Mon-Fri 08:00-19:00", zone=zone), until)


@settings(max_examples=600, deadline=None, database=None)
@given(st.text(min_size=1, max_size=20),
       st.dictionaries(st.one_of(st.sampled_from(CONFIG_AND_BOOKKEEPING), st.text(max_size=8)), TAG_VALUES,
                       max_size=8))
def test_any_rotation_tag_set_parses_or_fails_with_a_tag_error_naming_the_secret(name, tags):
    try:
        spec = T.parse(name, tags, 90)
    except T.TagError as exc:
        assert exc.secret == name and exc.fault.strip() and str(exc).startswith(f"{name}: ")
        return
    assert spec is None or spec.name == name
