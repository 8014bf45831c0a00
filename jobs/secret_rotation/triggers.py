"""Timer triggers of the secret-rotation job: the scheduled run (UTC schedule from the
OPS_SCHEDULE_SECRET_ROTATION app setting, daily by default) and the resume timer, every
five minutes, which resumes only rotations a crash left unfinished (a single-role
password between SET and PROMOTE locks consumers out until then)."""
import azure.functions as func

from jobs.timers import run_from_timer

bp = func.Blueprint()


@bp.function_name("timer_secret_rotation")
@bp.timer_trigger(arg_name="timer", schedule="%OPS_SCHEDULE_SECRET_ROTATION%", run_on_startup=False)
# No retry policy: a failed rotation is resumed by the next scheduled run, and
# repeated failures are counted by the job itself (it stops after N).
def secret_rotation_timer(timer: func.TimerRequest) -> None:
    run_from_timer("secret-rotation", timer)


@bp.function_name("timer_secret_rotation_resume")
# A literal: a %SETTING% the app lacks would stop the host from loading any function.
# Second 30, so it does not start together with a scheduled run on the minute.
@bp.timer_trigger(arg_name="timer", schedule="30 */5 * * * *", run_on_startup=False)
def secret_rotation_resume_timer(timer: func.TimerRequest) -> None:
    from jobs.secret_rotation.job import resume_from_timer
    resume_from_timer(timer)
