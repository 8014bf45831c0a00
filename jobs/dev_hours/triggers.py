"""Timer trigger of the dev-hours job: UTC schedule from the OPS_SCHEDULE_DEV_HOURS app setting."""
import azure.functions as func

from jobs.timers import run_from_timer

bp = func.Blueprint()


@bp.function_name("timer_dev_hours")
@bp.timer_trigger(arg_name="timer", schedule="%OPS_SCHEDULE_DEV_HOURS%", run_on_startup=False)
@bp.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:02:00")  # reconcile is idempotent
def dev_hours_timer(timer: func.TimerRequest) -> None:
    run_from_timer("dev-hours", timer)
