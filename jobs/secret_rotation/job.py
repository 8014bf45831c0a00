"""The secret-rotation job: rotates the Key Vault secrets whose tags say how
(tags.py), with a crash-safe, resumable protocol (protocol.py) that never
leaves consumers with a value the resource does not accept.

Thin: azure_io observes and applies, plan.py decides, protocol.py rotates.
This module wires them into the runner: each rotation runs inside a per-secret
blob lease (``locks/secret-rotation/<name>``, besides the job-wide run lock),
and ``finish`` keeps the failure counters (state ``failures``), notifies on
failures and words the report's details. It never handles a value itself.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from jobs.model import Action, RunReport
from jobs.runner import Job, RunContext
from jobs.secret_rotation import azure_io
from jobs.secret_rotation.plan import (BLOCKED, END_GRACE, ROTATE, Failure, failure_applies,
                                       interrupted, iso, plan as plan_run)

log = logging.getLogger(__name__)

FINISHED, FAILED, BUSY = "finished", "failed", "busy"


def lock_name(secret: str) -> str:
    return f"secret-rotation/{secret.lower()}"


class SecretRotationJob(Job):
    name = "secret-rotation"
    concurrency = 4  # rotations of different secrets at once; each holds its own lease
    options = {"force": "rotate this secret now (its Key Vault name), even if it is not due",
               "force_revoke": "with force: true also rotates a dual credential whose previous value "
                               "is in its grace period, revoking that value now (default false: wait)",
               "resume_only": "true: only resume rotations a crash or kill left unfinished (what the "
                              "resume timer runs)"}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[str, dict[str, str]] = {}  # run id -> secret -> finished/failed/busy

    def observe(self, ctx: RunContext) -> azure_io.Observed:
        return azure_io.observe(ctx)

    def plan(self, observed: azure_io.Observed, ctx: RunContext) -> list[Action]:
        planned = plan_run(observed.secrets, observed.failures, ctx.now, ctx.settings.secret_rotation,
                           ctx.options.get("force"), ctx.options.get("force_revoke"),
                           ctx.options.get("resume_only"))
        observed.rows = planned.rows
        return planned.actions

    def apply(self, action: Action, ctx: RunContext) -> str | None:
        if action.kind not in (ROTATE, END_GRACE):
            raise NotImplementedError(action.kind)
        from jobs.store import AlreadyRunning
        try:
            with ctx.store.lock(lock_name(action.target)):
                if action.kind == END_GRACE:
                    return azure_io.end_grace(ctx, action.target, action.params["version"])
                detail = azure_io.rotate(ctx, action.target, action.params)
        except AlreadyRunning:
            self._record(ctx, action.target, BUSY)
            raise
        except Exception:
            if action.kind == ROTATE:
                self._record(ctx, action.target, FAILED)
            raise
        self._record(ctx, action.target, FINISHED)
        return detail

    def _record(self, ctx: RunContext, secret: str, result: str) -> None:
        with self._lock:
            self._results.setdefault(ctx.run_id, {})[secret] = result

    def finish(self, observed: azure_io.Observed, report: RunReport, ctx: RunContext) -> dict[str, Any]:
        with self._lock:
            results = self._results.pop(ctx.run_id, {})
        config = ctx.settings.secret_rotation
        secrets = {s.name: s for s in observed.secrets}
        active = observed.active_pending()
        failures = dict(observed.failures)
        messages: list[tuple[str, str, dict[str, str]]] = []
        for outcome in report.outcomes:
            action = outcome.action
            if action.kind != ROTATE or action.verdict:
                continue
            result = results.get(action.target)
            if outcome.status == "succeeded" and result == FINISHED:
                failures.pop(action.target, None)
            elif outcome.status == "failed" and result == FAILED:
                secret = secrets.get(action.target)
                before = failures.get(action.target)
                counts = before is not None and (
                    secret is not None and (failure_applies(before, secret)
                                            or action.target.lower() in active))
                attempts = (before.attempts if counts else 0) + 1
                failures[action.target] = Failure(attempts, outcome.error or "", iso(ctx.now),
                                                  iso(secret.created_on) if secret else None)
                messages.append(_failure_message(action.target, outcome.error or "", attempts,
                                                 config.max_failed_attempts))
        managed = {row["secret"] for row in observed.rows}
        failures = {n: f for n, f in failures.items() if n in managed}
        if not ctx.dry_run:
            if failures != observed.failures:
                from jobs.store import StateConflict
                try:
                    azure_io.save_failures(ctx, failures, observed.etag)
                except StateConflict as exc:
                    report.errors.append(f"failure counters not saved: {exc}")
            self._notify(ctx, report, messages)
        return details(observed, report, failures, config)

    @staticmethod
    def _notify(ctx: RunContext, report: RunReport, messages) -> None:
        if ctx.notifier is None:
            return
        for title, text, facts in messages:
            try:
                ctx.notifier.send(title, text, facts, severity="error")
            except Exception as exc:  # noqa: BLE001 - reported, the rotation outcome stands
                log.warning("could not send a notification: %s", type(exc).__name__)
                report.errors.append(f"could not notify ({title}): {exc}")


def _failure_message(secret: str, error: str, attempts: int, limit: int) -> tuple[str, str, dict[str, str]]:
    facts = {"secret": secret, "attempt": f"{attempts} of {limit}"}
    if attempts >= limit:
        return (f"Secret rotation stopped for {secret}",
                f"{secret} failed {attempts} times in a row and is not retried any more: {error}. "
                f"Fix the cause, then run `python -m jobs run secret-rotation --force {secret}`.", facts)
    return (f"Secret rotation failed for {secret}",
            f"{error}. The next scheduled run retries (attempt {attempts} of {limit}).", facts)


def details(observed: azure_io.Observed, report: RunReport, failures: dict[str, Failure], config
            ) -> dict[str, Any]:
    """Per managed secret: kind, credential in use, age, next due date, what this run did."""
    outcome_of = {o.action.target.lower(): o for o in report.outcomes
                  if o.action.kind in (ROTATE, BLOCKED, "invalid-tags")}
    rows = []
    for row in observed.rows:
        outcome = outcome_of.get(row["secret"].lower())
        row = dict(row, attempts=failures[row["secret"]].attempts if row["secret"] in failures else 0,
                   outcome=outcome.status if outcome else None)
        rows.append(row)
    blocked = sorted(n for n, f in failures.items() if f.attempts >= config.max_failed_attempts)
    table = [[r["secret"], r["kind"] or "?", r["credential"] or "", _num(r["age_days"]),
              (r["next_due"] or "")[:10], r["status"] + (f" ({r['outcome']})" if r["outcome"] else "")]
             for r in rows]
    result: dict[str, Any] = {"secrets": rows, "blocked": blocked,
                              "failed_attempts": {n: f.attempts for n, f in sorted(failures.items())}}
    if table:
        result["tables"] = [{"title": "Secrets tagged for rotation",
                             "columns": ["secret", "kind", "in use", "age (days)", "next due", "status"],
                             "rows": table}]
    return result


def _num(value) -> str:
    return "?" if value is None else str(value)


JOB = SecretRotationJob()


def resume_from_timer(timer) -> dict | None:
    """The resume timer: runs the job for the rotations a crash or kill left unfinished, so
    they do not wait for the daily run; when there is none, a cheap look (the vault's
    listing and the failure counters) and nothing else: no lock, no run record."""
    from jobs import service
    from jobs.timers import run_from_timer
    env = service.environment()
    if not env.settings.keyvault_url:  # the job is not used here; its scheduled run says so
        return None
    state, _ = env.store.load_state(JOB.name, azure_io.STATE_KEY)
    stopped = interrupted(azure_io.list_secrets(env.clients.secrets), azure_io.failures_of(state))
    if not stopped:
        return None
    log.info("%s: resuming interrupted rotations of %s", JOB.name, ", ".join(sorted(stopped)))
    return run_from_timer(JOB.name, timer, options={"resume_only": "true"})
