"""The CLI as a user runs it: a subprocess with the sandbox's settings.
Exit codes: 0 ok, 1 failed, 2 usage or settings error, 3 already running."""
import json
import os
import subprocess
import sys

from jobs import service


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_list_names_every_job(app_env):
    out = cli("list")
    assert out.returncode == 0
    for name in ("dev-hours", "budget-check", "secret-rotation", "sla-snapshot"):
        assert name in out.stdout


def test_run_prints_a_table_or_the_report_json(app_env):
    out = cli("run", "sla-snapshot", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "sla-snapshot run" in out.stdout and "dry run" in out.stdout
    out = cli("run", "sla-snapshot", "--json", "--now", "2026-11-27T10:00:00Z")
    report = json.loads(out.stdout)
    assert report["trigger"] == "cli" and report["dry_run"] is False
    assert report["now"] == "2026-11-27T10:00:00Z"


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
        out = cli("run", "budget-check")
    assert out.returncode == 3 and "already running" in out.stderr
