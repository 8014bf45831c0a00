"""The CLI as a user runs it: a subprocess with the sandbox's settings.
Exit codes: 0 ok, 1 failed, 2 usage or settings error, 3 already running."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from jobs import service


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_list_names_every_job(app_env):
    out = cli("list")
    assert out.returncode == 0
    for name in ("dev-hours", "budget-check", "secret-rotation", "sla-snapshot"):
        assert name in out.stdout


def iso(instant):
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_run_prints_a_table_or_the_report_json(app_env):
    out = cli("run", "sla-snapshot", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "sla-snapshot run" in out.stdout and "dry run" in out.stdout
    out = cli("run", "sla-snapshot", "--json", "--now", "2026-11-27T10:00:00Z")
    report = json.loads(out.stdout)
    assert report["trigger"] == "cli" and report["dry_run"] is True
    assert report["now"] == "2026-11-27T10:00:00Z"


def test_run_is_a_dry_run_unless_apply_is_given(app_env):
    out = cli("run", "budget-check", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dry_run"] is True
    assert [r for r in app_env.sandbox.request_log() if r["method"] in ("PUT", "PATCH", "DELETE")] == []
    out = cli("run", "budget-check", "--apply", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dry_run"] is False
    out = cli("run", "budget-check", "--apply", "--dry-run")
    assert out.returncode == 2 and "not allowed with argument" in out.stderr
    assert "--apply" in cli("run", "--help").stdout


def test_a_real_run_takes_now_only_within_five_minutes_of_the_clock(app_env):
    clock = datetime.now(timezone.utc)
    out = cli("run", "budget-check", "--apply", "--now", iso(clock + timedelta(days=330)))
    assert out.returncode == 2 and "within 5 minutes of the clock" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert service.latest("budget-check") is None  # nothing ran
    near = clock - timedelta(minutes=2)
    out = cli("run", "budget-check", "--apply", "--json", "--now", iso(near))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dry_run"] is False and report["now"] == iso(near)


def test_usage_errors_exit_2_with_a_message(app_env):
    for args, fragment in [(("run", "nope"), "invalid choice"),
                           (("run", "dev-hours", "--now", "tomorrow"), "now must be an ISO-8601"),
                           (("run", "dev-hours", "--option", "novalue"), "KEY=VALUE"),
                           (("run", "budget-check", "--force", "x"), "takes no option force")]:
        out = cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert fragment in out.stderr and "Traceback" not in out.stderr


def test_settings_errors_exit_2_naming_the_setting(app_env):
    out = cli("run", "dev-hours", env={"OPS_SCHEDULE_DEV_HOURS": "often"})
    assert out.returncode == 2 and "OPS_SCHEDULE_DEV_HOURS" in out.stderr


def test_a_run_while_another_holds_the_lock_exits_3(app_env):
    with service.environment().store.lock("budget-check"):
        out = cli("run", "budget-check", "--apply")
    assert out.returncode == 3 and "already running" in out.stderr
