"""Timer handlers: a real run with trigger=timer; an overlapping run is skipped, not failed."""
import logging

from azure.functions.timer import TimerRequest

from jobs import service
from tests.app_functions import user_function


def timer(name):
    return user_function(name)


def test_a_timer_runs_its_job_for_real_and_stores_the_report(app_env, caplog):
    caplog.set_level(logging.WARNING)
    timer("timer_budget_check")(TimerRequest(past_due=True))
    report = service.latest("budget-check")
    assert report["trigger"] == "timer" and report["dry_run"] is False
    assert "past due" in caplog.text


def test_timers_can_be_made_dry_by_a_setting(app_env, monkeypatch):
    monkeypatch.setenv("OPS_TIMER_DRY_RUN", "true")
    service.reset()
    timer("timer_sla_snapshot")(TimerRequest())
    assert service.latest("sla-snapshot")["dry_run"] is True


def test_an_overlapping_timer_run_is_logged_and_skipped(app_env, caplog):
    caplog.set_level(logging.WARNING)
    with service.environment().store.lock("secret-rotation"):
        timer("timer_secret_rotation")(TimerRequest())
    assert "skipped this timer run" in caplog.text
    assert service.latest("secret-rotation") is None
