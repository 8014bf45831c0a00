"""Timer trigger of the sla-snapshot job: UTC schedule from the OPS_SCHEDULE_SLA_SNAPSHOT app setting."""
import azure.functions as func

from jobs.timers import run_from_timer

bp = func.Blueprint()


@bp.function_name("timer_sla_snapshot")
@bp.timer_trigger(arg_name="timer", schedule="%OPS_SCHEDULE_SLA_SNAPSHOT%", run_on_startup=False)
@bp.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:02:00")  # reconcile is idempotent
def sla_snapshot_timer(timer: func.TimerRequest) -> None:
    run_from_timer("sla-snapshot", timer)
