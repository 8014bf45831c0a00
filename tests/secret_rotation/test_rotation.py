"""The job against the sandbox and the real servers: failures leave consumers'
value working and end as failed outcomes that notify; N failures stop the
retries until someone acts; dry runs change nothing; grace periods end;
consumers are refreshed (never production unless allowed); HTTP and CLI."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from jobs import service
from jobs.secret_rotation import tags as T
from sandbox.webhook import WebhookReceiver
from sandbox.world import load_world_file
from tests.app_functions import user_function
from tests.secret_rotation.conftest import ROTATION_WORLD, actions

WRITES = ("PUT", "PATCH", "POST", "DELETE")
CACHE = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-rotation/providers/"
         "Microsoft.Cache/Redis/redis-rotation")


def rotation_world(keep: set[str], **tag_changes: dict) -> dict:
    """The rotation world with only some secrets, tags changed per secret."""
    data = load_world_file(ROTATION_WORLD)
    data["secrets"] = [s for s in data["secrets"] if s["name"] in keep]
    for secret in data["secrets"]:
        secret["tags"].update(tag_changes.get(secret["name"].replace("-", "_"), {}))
    return copy.deepcopy(data)


def writes(stack) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in stack.sandbox.request_log()
            if r["method"] in WRITES and not r["path"].startswith("/_sandbox")]


@pytest.fixture
def hook(monkeypatch):
    receiver = WebhookReceiver()
    monkeypatch.setenv("OPS_NOTIFY_KIND", "webhook")
    monkeypatch.setenv("OPS_NOTIFY_URL", receiver.url)
    service.reset()
    yield receiver
    receiver.stop()


def test_a_dry_run_plans_and_changes_nothing(rot):
    rot.stack.sandbox.clear_log()
    report = rot.run(dry_run=True, force="rot-redis")
    assert report["dry_run"] is True
    assert actions(report)["rot-redis"]["status"] == "planned"
    assert actions(report)["rot-malformed"]["status"] == "failed"
    assert "rot-untagged" not in actions(report)
    assert writes(rot.stack) == []
    reads = [r["path"] for r in rot.stack.sandbox.request_log() if r["path"].startswith("/secrets/")]
    assert reads == []  # a dry run lists properties; it reads no value


def test_untagged_left_alone_malformed_named_with_its_fault(rot):
    before = rot.current("rot-untagged").properties.version
    report = rot.run()
    assert report["status"] == "failed"
    bad = actions(report)["rot-malformed"]
    assert (bad["kind"], bad["status"]) == ("invalid-tags", "failed")
    assert bad["error"] == ("tags: rotation-kind 'mysql-password' is not one of generated, "
                            "postgres-password, redis-key, storage-key")
    assert "rot-untagged" not in actions(report)
    assert rot.current("rot-untagged").properties.version == before
    assert {r["secret"] for r in report["details"]["secrets"]} >= {"rot-malformed", "rot-redis"}


def test_a_refused_test_step_leaves_consumers_working_then_resumes(rot, monkeypatch):
    """Dual key: SET regenerated the unused key, TEST cannot reach the data plane."""
    monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT",
                       f"{rot.stack.sandbox.url}/_storage/missing-{{account}}")
    service.reset()
    before = rot.current("rot-storage")
    report = rot.run(force="rot-storage")
    failed = actions(report)["rot-storage"]
    assert failed["status"] == "failed"
    assert "test: the new key2 did not authenticate against storage account strotation after 3 attempts" \
        in failed["error"]
    assert rot.current("rot-storage").value == before.value and rot.authenticates("rot-storage")
    assert rot.pending("rot-storage") == ("set", True)
    monkeypatch.delenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT")
    monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", rot.env["OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT"])
    service.reset()
    report = rot.run()
    resumed = actions(report)["rot-storage"]
    assert resumed["status"] == "succeeded" and "resumed after step set" in resumed["detail"]
    assert rot.authenticates("rot-storage") and rot.current("rot-storage").value != before.value


def test_single_role_test_failure_rolls_the_password_back(rot, monkeypatch):
    monkeypatch.setenv("OPS_SECRET_ROTATION__POSTGRES_DATABASE", "no_such_database")
    service.reset()
    before = rot.current("rot-pg-admin").value
    report = rot.run(force="rot-pg-admin")
    error = actions(report)["rot-pg-admin"]["error"]
    assert "did not authenticate" in error and "previous password was put back" in error
    assert rot.current("rot-pg-admin").value == before
    assert rot.authenticates("rot-pg-admin")  # the consumers' value works again
    assert rot.pending("rot-pg-admin") == ("created", True)


def test_a_wrong_credential_tag_is_refused_before_anything_changes(rot, world):
    data = rotation_world({"rot-redis"}, rot_redis={"rotation-credential": "secondary"})
    world(data)
    report = rot.run(force="rot-redis")
    error = actions(report)["rot-redis"]["error"]
    assert "holds the primary key of Redis cache redis-rotation, but rotation-credential says secondary" in error
    assert [w for w in writes(rot.stack) if w[1].endswith("/regenerateKey")] == []
    assert rot.pending("rot-redis") is None and rot.authenticates("rot-redis", credential="primary")


def test_failures_notify_then_stop_after_n_attempts_until_someone_acts(rot, world, hook, monkeypatch):
    data = rotation_world({"rot-redis"}, rot_redis={"rotation-resource": CACHE.replace("redis-rotation",
                                                                                         "redis-gone")})
    data["secrets"][0]["created"] = "-40d"  # due
    world(data)
    for attempt in (1, 2, 3):
        report = rot.run()
        a = actions(report)["rot-redis"]
        assert (a["kind"], a["status"]) == ("rotate-secret", "failed")
        assert "redis-gone" in a["error"]
        assert report["details"]["failed_attempts"] == {"rot-redis": attempt}
    titles = [m["title"] for m in hook.received]
    assert titles == ["Secret rotation failed for rot-redis"] * 2 + ["Secret rotation stopped for rot-redis"]
    assert hook.received[0]["facts"] == {"secret": "rot-redis", "attempt": "1 of 3"}
    assert "is not retried any more" in hook.received[2]["text"]

    for _ in range(2):  # every later report says so, without trying again
        rot.stack.sandbox.clear_log()
        report = rot.run()
        blocked = actions(report)["rot-redis"]
        assert (blocked["kind"], blocked["status"]) == ("rotation-blocked", "failed")
        assert "stopped after 3 failed attempts" in blocked["error"] and "--force rot-redis" in blocked["error"]
        assert report["details"]["blocked"] == ["rot-redis"]
        assert not [r for r in rot.stack.sandbox.request_log() if "redis-gone" in r["path"]]
    assert len(hook.received) == 3  # no notification per blocked run

    # someone acts: fixes the tag (a new version, as the portal writes it) and forces a rotation
    current = rot.current("rot-redis")
    fixed = dict(current.properties.tags, **{"rotation-resource": CACHE})
    rot.kv.set_secret("rot-redis", current.value, tags=fixed)
    report = rot.run(force="rot-redis")
    assert actions(report)["rot-redis"]["status"] == "succeeded"
    assert report["details"]["failed_attempts"] == {} and report["details"]["blocked"] == []
    assert rot.authenticates("rot-redis")


def test_a_rotation_held_by_another_run_is_not_counted_as_a_failure(rot):
    store = service.environment().store
    with store.lock("secret-rotation/rot-generated"):
        report = rot.run(force="rot-generated")
    a = actions(report)["rot-generated"]
    assert a["status"] == "failed" and a["error"].startswith("AlreadyRunning")
    assert report["details"]["failed_attempts"] == {}
    assert rot.pending("rot-generated") is None
    assert actions(rot.run(force="rot-generated"))["rot-generated"]["status"] == "succeeded"


def test_the_grace_period_ends_in_a_later_run(rot):
    before = rot.current("rot-generated").properties.version
    rot.run(force="rot-generated")
    current = rot.current("rot-generated").properties
    assert rot.enabled_versions("rot-generated") == {current.version, before}
    later = datetime.now(timezone.utc) + timedelta(days=8)
    report = rot.run(now=later)
    ended = actions(report, "end-grace")["rot-generated"]
    assert ended["status"] == "succeeded" and ended["detail"] == f"previous version {before} disabled"
    assert rot.enabled_versions("rot-generated") == {current.version}
    tags = rot.current("rot-generated").properties.tags
    assert T.PREVIOUS_TAG not in tags and T.GRACE_TAG not in tags and tags[T.ID_TAG]
    assert "rot-generated" not in actions(rot.run(now=later), "end-grace")


@pytest.mark.parametrize("action, allow, operation", [
    ("refresh", False, "Microsoft.Web/sites/config/configreferences/appsettings/refresh"),
    ("restart", True, "Microsoft.Web/sites/restart"),
])
def test_consumers_are_refreshed_after_promotion_never_production_unless_allowed(
        rot, world, monkeypatch, action, allow, operation):
    data = rotation_world({"rot-redis"}, rot_redis={
        "rotation-consumers": "rg-rotation/app-rotation-dev,rg-rotation/app-rotation-prod"})
    world(data)
    monkeypatch.setenv("OPS_SECRET_ROTATION__CONSUMER_ACTION", action)
    monkeypatch.setenv("OPS_SECRET_ROTATION__CONSUMERS_ALLOW_PRODUCTION", str(allow).lower())
    service.reset()
    report = rot.run(force="rot-redis")
    detail = actions(report)["rot-redis"]["detail"]
    hits = [r["path"].split("/sites/")[1].split("/")[0] for r in rot.stack.sandbox.request_log()
            if r["operation"] == operation and r["status"] == 200]
    assert hits == (["app-rotation-dev", "app-rotation-prod"] if allow else ["app-rotation-dev"])
    assert "consumer rg-rotation/app-rotation-dev" in detail
    if not allow:
        assert "app-rotation-prod not refreshed: production" in detail
    # the promotion came first: consumers fetch the new, tested value
    assert rot.authenticates("rot-redis")


def test_consumers_are_off_by_default(rot, world):
    world(rotation_world({"rot-redis"}, rot_redis={"rotation-consumers": "rg-rotation/app-rotation-dev"}))
    rot.run(force="rot-redis")
    assert not [r for r in rot.stack.sandbox.request_log() if "/Microsoft.Web/" in r["path"]]


def test_http_run_with_force_rotates_and_defaults_to_a_dry_run(rot):
    def call(body: dict):
        req = func.HttpRequest(method="POST", url="/api/privileged/jobs/secret-rotation/run",
                               route_params={"name": "secret-rotation"}, params={},
                               body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        resp = user_function("http_run_job_admin")(req)  # force: the master-key route
        return resp.status_code, json.loads(resp.get_body())

    before = rot.current("rot-redis").value
    status, report = call({"force": "rot-redis"})
    assert status == 200 and report["dry_run"] and actions(report)["rot-redis"]["status"] == "planned"
    assert rot.current("rot-redis").value == before
    status, report = call({"force": "rot-redis", "dry_run": False})
    assert status == 200 and actions(report)["rot-redis"]["status"] == "succeeded"
    assert rot.current("rot-redis").value != before and rot.authenticates("rot-redis")


def test_cli_run_with_force(rot, capsys):
    from jobs.__main__ import main
    assert main(["run", "secret-rotation", "--apply", "--force", "rot-generated", "--json"]) == 1  # rot-malformed
    report = json.loads(capsys.readouterr().out)
    assert actions(report)["rot-generated"]["status"] == "succeeded"


def test_force_keeps_the_previous_values_grace_period_unless_force_revoke(rot):
    first = rot.current("rot-redis")
    assert actions(rot.run(force="rot-redis"))["rot-redis"]["status"] == "succeeded"
    second = rot.current("rot-redis")

    report = rot.run(force="rot-redis")  # within the grace period of the first key
    waiting = actions(report)["rot-redis"]
    assert waiting["status"] == "skipped" and "force_revoke=true revokes it now" in waiting["reason"]
    assert rot.current("rot-redis").properties.version == second.properties.version
    assert rot.authenticates("rot-redis", first.value, "primary")  # consumers still on it keep working

    report = rot.run(force="rot-redis", force_revoke=True)
    assert "cuts short" in actions(report)["rot-redis"]["reason"]
    assert actions(report)["rot-redis"]["status"] == "succeeded"
    assert not rot.authenticates("rot-redis", first.value, "primary")  # revoked, as asked
    assert rot.authenticates("rot-redis")
