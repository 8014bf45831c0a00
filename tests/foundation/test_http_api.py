"""The HTTP API, called as the Functions host would call it (func.HttpRequest
into the indexed functions), against the sandbox and Azurite. The host checks the
keys (FUNCTION or ADMIN level, see test_app.py); here each route is called directly."""
import json
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from jobs import service
from jobs.requests import BadRequest, check_now
from tests.app_functions import user_function


def call(function_name, method="GET", url="/api/jobs", body=b"", params=None, route=None):
    req = func.HttpRequest(method=method, url=url, body=body, params=params or {},
                           route_params=route or {}, headers={"Content-Type": "application/json"})
    resp = user_function(function_name)(req)
    return resp.status_code, json.loads(resp.get_body())


def run(name="budget-check", **kw):
    return call("http_run_job", "POST", f"/api/jobs/{name}/run", route={"name": name}, **kw)


def admin_run(name="budget-check", **kw):
    return call("http_run_job_admin", "POST", f"/api/privileged/jobs/{name}/run", route={"name": name},
                **kw)


def iso(instant):
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_list_jobs_shows_every_job_with_schedule_and_last_run(app_env):
    status, body = call("http_list_jobs")
    assert status == 200
    assert [j["name"] for j in body["jobs"]] == ["dev-hours", "budget-check", "secret-rotation",
                                                 "sla-snapshot"]
    assert body["jobs"][0]["schedule"] == "0 */15 * * * *"
    assert body["jobs"][0]["last_run"] is None
    run()
    _, body = call("http_list_jobs")
    assert body["jobs"][1]["last_run"]["trigger"] == "http"


def test_a_manual_run_is_dry_unless_dry_run_false_is_explicit(app_env):
    for call_route in (run, admin_run):
        status, report = call_route()
        assert status == 200 and report["dry_run"] is True and report["trigger"] == "http"
    status, report = admin_run(params={"dry_run": "false"})
    assert status == 200 and report["dry_run"] is False
    status, report = admin_run(body=b'{"dry_run": false}')
    assert status == 200 and report["dry_run"] is False


@pytest.mark.parametrize("name, kw", [
    ("budget-check", {"params": {"dry_run": "false"}}),
    ("budget-check", {"body": b'{"dry_run": false}'}),
    ("secret-rotation", {"body": b'{"force": "shopfront-session-secret"}'}),
    ("secret-rotation", {"params": {"force": "shopfront-session-secret", "dry_run": "false"}}),
    ("secret-rotation", {"body": b'{"force_revoke": "true"}'}),
])
def test_a_real_run_or_force_on_the_function_key_route_is_403_naming_the_admin_route(app_env, name, kw):
    status, body = run(name, **kw)
    assert status == 403 and body["error"]["code"] == "Forbidden"
    assert f"POST /api/privileged/jobs/{name}/run" in body["error"]["message"]
    assert "master key" in body["error"]["message"]
    assert service.latest(name) is None  # nothing ran
    assert [r for r in app_env.sandbox.request_log() if r["method"] != "GET"] == []


def test_the_admin_route_may_force_a_rotation(app_env):
    status, report = admin_run("secret-rotation", body=b'{"force": "shopfront-session-secret"}')
    assert status == 200 and report["dry_run"] is True
    assert "shopfront-session-secret" in {a["target"] for a in report["actions"]}


def test_a_real_run_takes_now_only_within_five_minutes_of_the_clock(app_env):
    clock = datetime.now(timezone.utc)
    for far in (clock + timedelta(days=330), clock - timedelta(minutes=6)):
        status, body = admin_run(body=json.dumps({"dry_run": False, "now": iso(far)}).encode())
        assert status == 400 and body["error"]["code"] == "BadRequest"
        assert "within 5 minutes of the clock" in body["error"]["message"], body
        assert service.latest("budget-check") is None  # nothing ran
    near = clock + timedelta(minutes=2)
    status, report = admin_run(body=json.dumps({"dry_run": False, "now": iso(near)}).encode())
    assert status == 200 and report["dry_run"] is False and report["now"] == iso(near)
    far = clock + timedelta(days=330)  # a what-if run may be at any time
    status, report = admin_run(body=json.dumps({"now": iso(far)}).encode())
    assert status == 200 and report["dry_run"] is True and report["now"] == iso(far)


def test_now_can_be_given_for_a_what_if_run(app_env):
    status, report = run(body=b'{"now": "2026-12-24T18:00:00+01:00"}')
    assert status == 200 and report["now"] == "2026-12-24T17:00:00Z"


CLOCK = datetime(2026, 12, 4, 21, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("now, dry_run, accepted", [
    (None, False, True),
    (CLOCK + timedelta(minutes=5), False, True),
    (CLOCK - timedelta(minutes=5), False, True),
    (CLOCK + timedelta(minutes=5, seconds=1), False, False),
    (CLOCK - timedelta(minutes=5, seconds=1), False, False),
    (CLOCK + timedelta(days=330), False, False),  # a budget starting 11 months ahead
    (datetime(2199, 1, 1, tzinfo=timezone.utc), False, False),
    (CLOCK + timedelta(days=330), True, True),  # a what-if dry run
    (datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=14))), True, True),
])
def test_now_is_checked_against_the_clock_only_for_real_runs(now, dry_run, accepted):
    if accepted:
        check_now(now, dry_run=dry_run, clock=CLOCK)
    else:
        with pytest.raises(BadRequest, match="within 5 minutes of the clock"):
            check_now(now, dry_run=dry_run, clock=CLOCK)


def test_latest_run_is_404_before_any_run_then_the_report(app_env):
    status, body = call("http_latest_run", url="/api/jobs/sla-snapshot/runs/latest",
                        route={"name": "sla-snapshot"})
    assert status == 404 and body["error"]["code"] == "NoRuns"
    _, report = run("sla-snapshot")
    status, body = call("http_latest_run", url="/api/jobs/sla-snapshot/runs/latest",
                        route={"name": "sla-snapshot"})
    assert status == 200 and body["run_id"] == report["run_id"]


@pytest.mark.parametrize("kw, status, fragment", [
    ({"params": {"dry_run": "maybe"}}, 400, "dry_run must be true or false"),
    ({"body": b"[1, 2]"}, 400, "must be a JSON object"),
    ({"body": b"{not json"}, 400, "must be a JSON object"),
    ({"body": b'{"now": "yesterday"}'}, 400, "now must be an ISO-8601"),
    ({"body": b'{"now": "2026-11-27T18:00:00"}'}, 400, "must include a UTC offset"),
    ({"body": b'{"now": "2026-11-27T18:00:00\\u0000Z"}'}, 400, "now must be an ISO-8601"),
    ({"body": b'{"dry_run": true}', "params": {"dry_run": "false"}}, 400, "given twice"),
    ({"body": b'{"colour": "red"}'}, 400, "takes no option colour"),
    ({"body": b'{"force": "../../etc/passwd"}'}, 400, "must be a short plain string"),
    ({"body": b"{" + b" " * 70000 + b"}"}, 413, "larger than"),
    ({"body": b'{"dry_run": false, "colour": "red"}'}, 400, "takes no option colour"),
])
@pytest.mark.parametrize("route", [run, admin_run], ids=["function", "admin"])
def test_bad_requests_get_a_json_4xx_and_run_nothing(app_env, route, kw, status, fragment):
    got, body = route(**kw)
    assert got == status
    assert fragment in body["error"]["message"]
    assert service.latest("budget-check") is None  # nothing ran


def test_an_unknown_job_is_404(app_env):
    status, body = run("../dev-hours")
    assert status == 404 and "unknown job" in body["error"]["message"]


def test_a_wrong_method_is_405(app_env):
    status, body = call("http_run_job", "GET", "/api/jobs/dev-hours/run", route={"name": "dev-hours"})
    assert status == 405


def test_an_overlapping_run_is_409(app_env):
    store = service.environment().store
    with store.lock("budget-check"):
        status, body = admin_run(params={"dry_run": "false"})
    assert status == 409 and body["error"]["code"] == "AlreadyRunning"


def test_invalid_settings_are_a_json_error_naming_the_setting(app_env, monkeypatch):
    monkeypatch.setenv("OPS_RUNS_CONTAINER", "x")
    monkeypatch.setenv("OPS_SCHEDULE_SLA_SNAPSHOT", "hourly")
    service.reset()
    status, body = run()
    assert status == 500 and "OPS_SCHEDULE_SLA_SNAPSHOT" in body["error"]["message"]
    assert "Traceback" not in json.dumps(body)
