"""What every timer trigger does: one runner call, not dry-run (unless the
OPS_TIMER_DRY_RUN setting says so), and honest failure.

A run that ends failed raises, so the Functions host marks the invocation
failed (alerts fire; the job's retry policy, if any, applies). An overlapping
run is logged and skipped, not retried.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class RunFailed(Exception):
    pass


def run_from_timer(name: str, timer, options: dict[str, str] | None = None) -> dict | None:
    from jobs import service
    from jobs.store import AlreadyRunning
    if getattr(timer, "past_due", False):
        log.warning("%s timer is past due: running now to catch up", name)
    dry_run = service.environment().settings.timer_dry_run
    try:
        report = service.run(name, trigger="timer", dry_run=dry_run, options=options)
    except AlreadyRunning as exc:
        log.warning("%s: skipped this timer run: %s", name, exc)
        return None
    if report["status"] == "failed":
        failed = [a for a in report["actions"] if a["status"] == "failed"]
        raise RunFailed(f"{name} run {report['run_id']} failed: {len(failed)} action(s) failed, "
                        f"errors: {report['errors'][:3]}")
    return report
