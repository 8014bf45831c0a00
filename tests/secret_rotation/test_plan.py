"""plan(): which secrets a run rotates, resumes, holds or reports. Pure, table-driven."""
from datetime import datetime, timedelta, timezone

import pytest

from jobs.secret_rotation.config import SecretRotationSettings
from jobs.secret_rotation.plan import (BLOCKED, END_GRACE, INVALID, ROTATE, Failure, SecretInfo, iso,
                                       plan)

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=timezone.utc)
CONFIG = SecretRotationSettings()
SUB = "00000000-0000-0000-0000-000000000001"
REDIS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Cache/Redis/cache"
PG = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql"
GEN = {"rotation-kind": "generated", "rotation-period-days": "30"}
RED = {"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "primary",
       "rotation-period-days": "30"}


def secret(name="s", tags=GEN, age_days=1.0, expires_in=None, enabled=True):
    return SecretInfo(name, dict(tags), enabled, NOW - timedelta(days=age_days),
                      NOW + timedelta(days=expires_in) if expires_in is not None else None)


def pending(of="s", step="set", enabled=True, rid="r-1"):
    return SecretInfo(f"{of}--pending", {"rotation-of": of, "rotation-step": step, "rotation-id": rid},
                      enabled, NOW - timedelta(hours=1))


def one(secrets, failures=None, force=None, now=NOW, force_revoke=None):
    planned = plan(secrets, failures or {}, now, CONFIG, force, force_revoke)
    return planned.actions, {r["secret"]: r for r in planned.rows}


@pytest.mark.parametrize("kwargs, kind, verdict, reason", [
    ({"age_days": 29}, None, None, None),
    ({"age_days": 30.5}, ROTATE, None, "due: 30 days old (period 30 days)"),
    ({"age_days": 1, "expires_in": 13}, ROTATE, None, "due: expires 2026-12-10T02:30:00Z, within 14 days"),
    ({"age_days": 1, "expires_in": 15}, None, None, None),
    ({"age_days": 1, "expires_in": -1}, ROTATE, None, "due: expired 2026-11-26T02:30:00Z"),
    ({"enabled": False}, INVALID, "failed", "its current version is disabled"),
    ({"tags": {"rotation-kind": "generated", "rotation-period-days": "monthly"}}, INVALID, "failed",
     "tags: rotation-period-days must be a whole number"),
])
def test_due_or_not(kwargs, kind, verdict, reason):
    actions, rows = one([secret(**kwargs)])
    if kind is None:
        assert actions == [] and rows["s"]["status"] == "ok"
        return
    (action,) = actions
    assert (action.kind, action.verdict) == (kind, verdict)
    assert action.reason.startswith(reason)


def test_default_period_is_90_days_and_untagged_secrets_are_not_listed():
    tags = {"rotation-kind": "generated"}
    actions, rows = one([secret("a", tags, age_days=89), secret("b", tags, age_days=91),
                         secret("plain", {"owner": "x"}, age_days=900)])
    assert [a.target for a in actions] == ["b"]
    assert set(rows) == {"a", "b"} and rows["a"]["next_due"] == iso(NOW + timedelta(days=1))


def test_an_unfinished_rotation_is_resumed_even_when_not_due():
    actions, rows = one([secret(age_days=0), pending(step="tested")])
    (action,) = actions
    assert (action.kind, action.reason) == (ROTATE, "resume rotation r-1 after step tested")
    assert action.params["resume"] is True and rows["s"]["status"] == "resuming"
    # a finished (disabled) pending secret is history, not a rotation to resume
    assert one([secret(age_days=0), pending(step="finished", enabled=False)])[0] == []


def test_force_rotates_now_and_names_what_cannot_be_forced():
    actions, _ = one([secret(age_days=0)], force="S")
    assert [(a.kind, a.target, a.reason, a.verdict) for a in actions] == [(ROTATE, "s", "forced", None)]
    actions, _ = one([secret(age_days=0), secret("plain", {"owner": "x"})], force="plain")
    assert actions[0].verdict == "failed" and "not tagged for rotation" in actions[0].reason
    actions, _ = one([secret(age_days=0)], force="missing")
    assert actions[0].verdict == "failed" and "no secret named missing" in actions[0].reason


@pytest.mark.parametrize("force, force_revoke, error", [
    ("s", "maybe", "option force_revoke must be true or false, got 'maybe'"),
    (None, "true", "option force_revoke goes with force NAME (the secret to rotate now)"),
])
def test_force_revoke_is_checked(force, force_revoke, error):
    actions, _ = one([secret(age_days=40)], force=force, force_revoke=force_revoke)
    # only the fault: not even the due rotation runs on a request that is not clear
    assert [(a.target, a.verdict, a.reason) for a in actions] == [("force_revoke", "failed", error)]
    assert one([secret(age_days=0)], force="s", force_revoke="false")[0][0].reason == "forced"


def test_blocked_after_n_failures_until_forced_or_rewritten():
    s = secret(age_days=40)
    failure = Failure(3, "RotationError: test: refused", iso(NOW - timedelta(days=1)), iso(s.created_on))
    actions, rows = one([s], {"s": failure})
    (action,) = actions
    assert (action.kind, action.verdict) == (BLOCKED, "failed")
    assert "stopped after 3 failed attempts" in action.reason and "--force s" in action.reason
    assert rows["s"]["status"] == "blocked"
    assert one([s], {"s": Failure(2, "x", None, iso(s.created_on))})[0][0].kind == ROTATE  # still retried
    assert one([s], {"s": failure}, force="s")[0][0].kind == ROTATE  # someone acts
    rewritten = secret(age_days=40.5)  # a new version written by hand: another created_on
    assert one([rewritten], {"s": failure})[0][0].kind == ROTATE
    # while a rotation is unfinished, its failures count whatever the current version
    assert one([rewritten, pending()], {"s": failure})[0][0].kind == BLOCKED


def test_dual_credentials_wait_for_the_previous_grace_period():
    grace = {**RED, "rotation-previous-version": "v0", "rotation-grace-until": iso(NOW + timedelta(days=2))}
    actions, rows = one([secret("r", grace, age_days=31)])
    assert actions[0].verdict == "skipped" and "waits until" in actions[0].reason
    # forced: the previous value keeps its grace period unless force_revoke says otherwise
    forced, rows = one([secret("r", grace, age_days=1)], force="r")
    assert forced[0].verdict == "skipped" and rows["r"]["status"] == "waiting"
    assert forced[0].reason == ("forced, but waits until 2026-11-29T02:30:00Z: the previous value stays "
                                "valid until then and this rotation would revoke it (force_revoke=true "
                                "revokes it now)")
    revoked, _ = one([secret("r", grace, age_days=1)], force="r", force_revoke="true")
    assert revoked[0].verdict is None and "cuts short" in revoked[0].reason
    # generated secrets keep the previous version too, but rotating does not revoke it
    gen = {**GEN, "rotation-previous-version": "v0", "rotation-grace-until": iso(NOW + timedelta(days=2))}
    assert one([secret("g", gen, age_days=31)])[0][0].verdict is None


def test_an_ended_grace_period_disables_the_previous_version():
    ended = {**RED, "rotation-previous-version": "v0", "rotation-grace-until": iso(NOW - timedelta(hours=1))}
    (action,) = one([secret("r", ended)])[0]
    assert (action.kind, action.params) == (END_GRACE, {"version": "v0"})
    running = {**RED, "rotation-previous-version": "v0", "rotation-grace-until": iso(NOW + timedelta(hours=1))}
    assert one([secret("r", running)])[0] == []


def test_app_role_rotations_run_after_their_administrator():
    admin = {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "admin",
             "rotation-period-days": "30"}
    app = {**admin, "rotation-credential": "app", "rotation-admin-secret": "db-admin"}
    actions, _ = one([secret("db-admin", admin, age_days=31), secret("db-app", app, age_days=31)])
    by = {a.target: a for a in actions}
    assert by["db-app"].after == ("rotate-secret:db-admin",) and by["db-admin"].after == ()
    actions, _ = one([secret("db-admin", admin, age_days=1), secret("db-app", app, age_days=31)])
    assert actions[0].after == ()  # the administrator is not rotated in this run


def test_pending_secrets_are_not_secrets_to_rotate():
    actions, rows = one([pending(step="finished", enabled=False)])
    assert actions == [] and rows == {}


def test_two_secrets_on_one_credential_are_both_refused():
    other = {**RED, "rotation-credential": "secondary"}
    actions, rows = one([secret("a", RED, age_days=31), secret("b", other, age_days=31),
                         secret("g", GEN, age_days=31)])
    by = {a.target: a for a in actions}
    assert (by["a"].kind, by["a"].verdict) == (INVALID, "failed")
    assert by["a"].reason == ("tags: b also rotates its keys on cache: one secret per credential, "
                              "or their rotations break each other")
    assert by["b"].verdict == "failed" and by["g"].kind == ROTATE
    alt = {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_a",
           "rotation-roles": "app_a,app_b", "rotation-admin-secret": "adm"}
    single = {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app_b",
              "rotation-admin-secret": "adm"}
    admin = {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "admin"}
    actions, _ = one([secret("alt", alt), secret("single", single), secret("adm", admin)])
    assert {a.target for a in actions if a.verdict == "failed"} == {"alt", "single"}


def test_resume_only_resumes_interrupted_rotations_and_nothing_else():
    secrets = [secret("a", age_days=0), pending("a", step="set"),        # interrupted
               secret("b", age_days=0), pending("b", step="tested"),     # failed: on record
               secret("c", age_days=40),                                 # due
               secret("d", {"rotation-kind": "nonsense"})]               # malformed
    failures = {"b": Failure(1, "RotationError: test: refused", iso(NOW), None)}
    planned = plan(secrets, failures, NOW, CONFIG, resume_only="true")
    assert [(a.kind, a.target) for a in planned.actions] == [(ROTATE, "a")]
    assert {r["secret"] for r in planned.rows} == {"a", "b", "c", "d"}  # the table stays whole
    everything = plan(secrets, failures, NOW, CONFIG)
    assert {a.target for a in everything.actions} == {"a", "b", "c", "d"}
    bad = plan(secrets, failures, NOW, CONFIG, resume_only="sometimes")
    assert [(a.target, a.verdict) for a in bad.actions] == [("resume_only", "failed")]
    assert {r["secret"] for r in bad.rows} == {"a", "b", "c", "d"}  # failure counters are kept
