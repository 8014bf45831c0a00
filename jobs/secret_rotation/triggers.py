"""Timer trigger of the secret-rotation job: UTC schedule from the OPS_SCHEDULE_SECRET_ROTATION app setting."""
import azure.functions as func

from jobs.timers import run_from_timer

bp = func.Blueprint()


@bp.function_name("timer_secret_rotation")
@bp.timer_trigger(arg_name="timer", schedule="%OPS_SCHEDULE_SECRET_ROTATION%", run_on_startup=False)
# No retry policy: a failed rotation is resumed by the next scheduled run, and
# repeated failures are counted by the job itself (it stops after N).
def secret_rotation_timer(timer: func.TimerRequest) -> None:
    run_from_timer("secret-rotation", timer)
