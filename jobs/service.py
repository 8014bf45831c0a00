"""What timers, HTTP and the CLI share: build the process's settings, clients,
run store and notifier once, and run a job by name.

Everything here is lazy: importing this module imports no Azure SDK.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from jobs import registry

log = logging.getLogger(__name__)

_lock = threading.Lock()
_env: "Environment | None" = None


class Environment:
    """Settings, clients, run store and notifier of this process."""

    def __init__(self, settings):
        from jobs.clients import Clients
        from jobs.notify import Notifier
        from jobs.store import RunStore
        self.settings = settings
        self.clients = Clients(settings)
        self.store = RunStore(self.clients.blob_service, settings.runs_container,
                              lock_seconds=settings.lock_seconds)
        self.notifier = Notifier.from_settings(settings)


def environment() -> Environment:
    """Built on first use; raises SettingsError naming any bad setting."""
    global _env
    with _lock:
        if _env is None:
            from jobs.settings import load_settings
            from jobs import redact
            _env = Environment(load_settings())
            redact.install()
        return _env


def reset() -> None:
    """Forget the built environment (settings changed, e.g. in tests)."""
    global _env
    with _lock:
        _env = None


def run(name: str, *, trigger: str, dry_run: bool, now: datetime | None = None,
        options: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a job and return its (scrubbed) report JSON.
    Raises UnknownJob, BadOptions, SettingsError, AlreadyRunning."""
    from jobs.runner import report_json, run_job
    registry.spec(name)
    env = environment()
    report = run_job(name, trigger=trigger, dry_run=dry_run, now=now, options=options,
                     settings=env.settings, clients=env.clients, store=env.store,
                     notifier=env.notifier)
    return report_json(report)


def latest(name: str) -> dict[str, Any] | None:
    registry.spec(name)
    return environment().store.latest(name)


def list_jobs(with_last_run: bool = True) -> list[dict[str, Any]]:
    settings = environment().settings if with_last_run else None
    rows = []
    for spec in registry.JOBS.values():
        row: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "schedule": settings.schedule(spec.name) if settings else spec.default_schedule,
            "schedule_setting": spec.schedule_setting,
            "retry_on_failure": spec.retry_safe,
        }
        if with_last_run:
            row["last_run"] = _last_run_summary(spec.name)
        rows.append(row)
    return rows


def _last_run_summary(name: str) -> dict[str, Any] | None:
    try:
        report = latest(name)
    except Exception as exc:  # noqa: BLE001 - a listing must not fail on storage
        log.warning("could not read the last run of %s: %s", name, type(exc).__name__)
        return {"error": f"could not read the last run: {type(exc).__name__}"}
    if not report:
        return None
    return {k: report.get(k) for k in ("run_id", "trigger", "dry_run", "status", "started_at",
                                        "finished_at", "summary")}
