"""Timer handlers: a real run with trigger=timer; an overlapping run is skipped, not failed."""
import logging
import threading

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


def test_dry_runs_polled_in_a_loop_never_starve_a_timer_run(app_env, caplog):
    """A dashboard polling dry runs back to back (each slowed to ~1 s by the sandbox) while
    the timer fires: the timer run proceeds, and no poll is refused either."""
    from tests.foundation.test_http_api import run as http_run
    caplog.set_level(logging.WARNING)
    app_env.sandbox.faults.configure({"seed": 1, "rules": [{"operation": "*", "latency_ms": 150}]})
    stop, answers = threading.Event(), []

    def poll():
        while not stop.is_set():
            answers.append(http_run("sla-snapshot")[0])

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for p in pollers:
        p.start()
    try:
        while not answers:  # the dashboard is polling
            threading.Event().wait(0.05)
        for _ in range(2):
            timer("timer_sla_snapshot")(TimerRequest())
    finally:
        stop.set()
        for p in pollers:
            p.join()
    store = service.environment().store
    reports = [store.read(path) for path in store.list_reports("sla-snapshot")]
    assert sum(r["trigger"] == "timer" and not r["dry_run"] for r in reports) == 2
    assert "skipped this timer run" not in caplog.text
    assert answers and set(answers) == {200}
