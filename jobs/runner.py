"""observe -> plan -> (dry-run stops) -> apply -> report, for every job.

The runner owns what all jobs share: the one-real-run-per-job lock, concurrency and
ordering of actions, the rule that one target's failure never stops the others,
and storing the run report. Jobs own their decisions (``plan``, pure, with
``now`` passed in) and their side effects (``apply``, one change per action).
"""
from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from jobs import redact, registry
from jobs.model import Action, Outcome, RunReport

log = logging.getLogger(__name__)


class BadOptions(ValueError):
    """A run was asked for with options the job does not take."""


@dataclass
class RunContext:
    """What a job gets for one run. Built by the runner, never by a job."""

    job: str
    run_id: str
    now: datetime
    dry_run: bool
    settings: Any
    clients: Any
    store: Any
    options: dict[str, str] = field(default_factory=dict)
    notifier: Any = None

    def load_state(self, key: str) -> tuple[dict[str, Any], str | None]:
        return self.store.load_state(self.job, key)

    def save_state(self, key: str, data: dict[str, Any], etag: str | None) -> str:
        return self.store.save_state(self.job, key, data, etag)


class Job:
    """Base of every job. Subclasses override what they need."""

    name: str = ""
    concurrency: int = 4  # actions applied at once
    options: dict[str, str] = {}  # option name -> help, e.g. {"force": "secret to rotate now"}

    def observe(self, ctx: RunContext) -> Any:
        """Read the world (SDK calls only; no decisions)."""
        return None

    def plan(self, observed: Any, ctx: RunContext) -> list[Action]:
        """Decide, from observed state and ctx.now only. Never reads the clock."""
        return []

    def apply(self, action: Action, ctx: RunContext) -> str | None:
        """Carry out one action; return a short detail or raise on failure."""
        raise NotImplementedError(action.kind)

    def before_apply(self, observed: Any, actions: list[Action], ctx: RunContext) -> None:
        """Not in a dry run, before the first change: persist what a process killed during
        apply must not lose (a write-ahead record). If it raises, nothing is applied."""

    def finish(self, observed: Any, report: RunReport, ctx: RunContext) -> dict[str, Any]:
        """After apply: persist job state (not in dry-run) and return job-specific
        report details (tables, estimates). Outcomes are in report.outcomes."""
        return {}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def run_job(name: str, *, trigger: str, dry_run: bool, settings, clients, store,
            now: datetime | None = None, options: dict[str, str] | None = None,
            notifier=None, clock: Callable[[], datetime] = utcnow,
            job: Job | None = None) -> RunReport:
    """Run one job end to end. Raises AlreadyRunning when another real run holds the lock,
    UnknownJob and BadOptions for bad requests; every other failure is in the report.
    ``job`` replaces the registered job object (tests of the frame itself)."""
    job = job or registry.load(name)
    options = dict(options or {})
    check_options(name, options, job)
    started = clock()
    now = now or started
    if now.tzinfo is None:
        raise BadOptions("now must include a UTC offset, e.g. 2026-11-27T18:00:00Z")
    ctx = RunContext(job=name, run_id=uuid.uuid4().hex[:12], now=now.astimezone(timezone.utc),
                     dry_run=dry_run, settings=settings, clients=clients, store=store,
                     options=options, notifier=notifier)
    report = RunReport(job=name, run_id=ctx.run_id, trigger=trigger, dry_run=dry_run,
                       now=ctx.now, started_at=started)
    log.info("run %s of %s started (trigger=%s, dry_run=%s, now=%s)",
             ctx.run_id, name, trigger, dry_run, ctx.now.isoformat())
    # A dry run reads and plans only (its report goes to its own blob): it takes no lock,
    # so dry runs polled back to back can never hold off a timer's real run.
    with nullcontext() if dry_run else store.lock(name):
        _run(job, ctx, report)
        report.finished_at = clock()
        _store(report, store)
    log.info("run %s of %s %s: %s", ctx.run_id, name, report.status, report.summary)
    return report


def check_options(name: str, options: dict[str, str], job: Job | None = None) -> None:
    """BadOptions unless the job takes every option given."""
    job = job or registry.load(name)
    unknown = sorted(set(options) - set(job.options))
    if unknown:
        raise BadOptions(f"{name} takes no option {', '.join(unknown)}"
                         + (f" (it takes: {', '.join(job.options)})" if job.options else ""))


def _run(job: Job, ctx: RunContext, report: RunReport) -> None:
    try:
        observed = job.observe(ctx)
        actions = job.plan(observed, ctx)
    except Exception as exc:  # noqa: BLE001 - reported, the run ends failed
        log.exception("%s could not observe or plan", ctx.job)
        report.errors.append(f"could not observe or plan: {_describe(exc)}")
        return
    for action in actions:
        log.info("plan %s %s: %s", action.kind, action.target, action.reason)
    try:
        if not ctx.dry_run and any(not a.verdict for a in actions):
            job.before_apply(observed, actions, ctx)
    except Exception as exc:  # noqa: BLE001 - reported; nothing is changed, the next run retries
        log.exception("%s could not prepare to apply", ctx.job)
        why = f"could not record what it was about to do, so changed nothing: {_describe(exc)}"
        report.errors.append(why)
        report.outcomes = [Outcome(a, a.verdict, a.error) if a.verdict
                           else Outcome(a, "skipped", "not done: the run " + why) for a in actions]
    else:
        report.outcomes = apply_all(job, actions, ctx)
    try:
        report.details = job.finish(observed, report, ctx) or {}
    except Exception as exc:  # noqa: BLE001
        log.exception("%s could not summarise its run", ctx.job)
        report.errors.append(f"could not summarise the run: {_describe(exc)}")


def apply_all(job: Job, actions: list[Action], ctx: RunContext) -> list[Outcome]:
    """Apply every action, at most job.concurrency at once, each after the actions
    it names in ``after``; an action whose prerequisite did not succeed is skipped."""
    outcomes: dict[str, Outcome] = {}
    keys = {a.key for a in actions}
    pending = list(actions)
    running: dict[Future, Action] = {}

    def settle(action: Action, outcome: Outcome) -> None:
        outcomes[action.key] = outcome
        log.log(logging.WARNING if outcome.status == "failed" else logging.INFO,
                "%s %s %s%s", outcome.status, action.kind, action.target,
                f": {outcome.error}" if outcome.error else "")

    with ThreadPoolExecutor(max_workers=max(1, job.concurrency),
                            thread_name_prefix=ctx.job) as pool:
        while pending or running:
            for action in list(pending):
                blockers = [k for k in action.after if k in keys and k not in outcomes]
                if blockers:
                    continue
                pending.remove(action)
                failed_first = [k for k in action.after
                                if k in outcomes and outcomes[k].status not in ("succeeded",)]
                if action.verdict:
                    settle(action, Outcome(action, action.verdict, action.error))
                elif ctx.dry_run:
                    settle(action, Outcome(action, "planned"))
                elif failed_first:
                    settle(action, Outcome(action, "skipped",
                                           f"not done because {failed_first[0]} did not succeed"))
                else:
                    running[pool.submit(_apply_one, job, action, ctx)] = action
            if not running:
                if pending:  # prerequisites that are not in the plan: skip, never hang
                    for action in pending:
                        settle(action, Outcome(action, "skipped", "prerequisite never ran"))
                    pending.clear()
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                action = running.pop(future)
                settle(action, future.result())
    return [outcomes[a.key] for a in actions]


def _apply_one(job: Job, action: Action, ctx: RunContext) -> Outcome:
    try:
        return Outcome(action, "succeeded", detail=job.apply(action, ctx))
    except Exception as exc:  # noqa: BLE001 - one target's failure never stops the others
        log.warning("%s %s failed", action.kind, action.target, exc_info=True)
        return Outcome(action, "failed", _describe(exc))


def _describe(exc: BaseException) -> str:
    """A one-line, secret-free description of an exception for a report."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message.strip():
        text = message.strip().splitlines()[0]
    return redact.scrub(f"{type(exc).__name__}: {text}", limit=500) if text else type(exc).__name__


def _store(report: RunReport, store) -> None:
    try:
        store.save_report(report_json(report))
    except Exception as exc:  # noqa: BLE001 - the caller still gets the report
        log.error("could not store the run report of %s: %s", report.job, _describe(exc))
        report.errors.append(f"could not store the run report: {_describe(exc)}")


def report_json(report: RunReport) -> dict[str, Any]:
    """The report as JSON, scrubbed of every secret value the run handled."""
    return redact.scrub_data(json.loads(json.dumps(report.to_json(), default=str)))
