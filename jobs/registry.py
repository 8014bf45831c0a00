"""Job name -> job. Drives timers, HTTP and the CLI alike.

Importing this module is cheap: job modules (and the SDKs they use) are
imported only when a job is loaded to run.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class JobSpec:
    name: str
    module: str  # exposes JOB, an instance of jobs.runner.Job
    schedule_setting: str  # app setting holding the six-field NCRONTAB (UTC)
    default_schedule: str
    description: str
    retry_safe: bool  # a failed timer run may be retried at once


JOBS: dict[str, JobSpec] = {spec.name: spec for spec in (
    JobSpec("dev-hours", "jobs.dev_hours.job", "OPS_SCHEDULE_DEV_HOURS", "0 */15 * * * *",
            "Stops dev/staging App Service apps and scales their plans down outside working hours; "
            "brings them back.", retry_safe=True),
    JobSpec("budget-check", "jobs.budget_check.job", "OPS_SCHEDULE_BUDGET_CHECK", "0 0 7,19 * * *",
            "Month-to-date cost by service, forecast, budget thresholds and alerts; keeps the "
            "Azure budget in shape.", retry_safe=True),
    JobSpec("secret-rotation", "jobs.secret_rotation.job", "OPS_SCHEDULE_SECRET_ROTATION",
            "0 30 2 * * *",
            "Rotates tagged Key Vault secrets (PostgreSQL, Redis, Storage, generated) without "
            "breaking a consumer.", retry_safe=False),
    JobSpec("sla-snapshot", "jobs.sla_snapshot.job", "OPS_SCHEDULE_SLA_SNAPSHOT", "0 5 * * * *",
            "Availability, latency percentiles, error budget and cache hit ratio from Azure "
            "Monitor, stored as snapshots in Blob Storage.", retry_safe=True),
)}


class UnknownJob(KeyError):
    def __str__(self) -> str:
        return f"unknown job {self.args[0]!r}; jobs are: {', '.join(JOBS)}"


def spec(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(name) from None


def load(name: str):
    """The job object for ``name`` (imports its module)."""
    return importlib.import_module(spec(name).module).JOB
