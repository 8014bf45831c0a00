"""The runner's promises, with small jobs of the test's own against Azurite:
one target's failure never stops the others, prerequisites are honoured,
dry-run applies nothing, every run is stored, one run per job at a time."""
import threading
from datetime import datetime, timezone

import pytest

from jobs.model import Action
from jobs.runner import BadOptions, Job, run_job
from jobs.store import AlreadyRunning, RunStore

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=timezone.utc)


class Scripted(Job):
    """Applies by recording; fails the targets it is told to fail."""

    name = "dev-hours"
    options = {"force": "a target"}

    def __init__(self, actions, failing=()):
        self.actions, self.failing, self.applied = actions, set(failing), []

    def plan(self, observed, ctx):
        assert ctx.now == NOW
        return self.actions

    def apply(self, action, ctx):
        if action.target in self.failing:
            raise RuntimeError(f"{action.target} refused")
        self.applied.append(action.target)
        return "done"


@pytest.fixture
def frame(app_env, clients):
    store = RunStore(clients.blob_service, "ops-runs-test")

    def run(job, **kw):
        kw.setdefault("dry_run", False)
        return run_job("dev-hours", trigger="cli", settings=None, clients=clients, store=store,
                       now=NOW, job=job, **kw)
    run.store = store
    return run


def test_one_failure_never_stops_the_others_and_fails_the_run(frame):
    job = Scripted([Action("stop", "a", "r"), Action("stop", "b", "r"), Action("stop", "c", "r")],
                   failing={"b"})
    report = frame(job)
    assert sorted(job.applied) == ["a", "c"]
    assert [o.status for o in report.outcomes] == ["succeeded", "failed", "succeeded"]
    assert "b refused" in report.outcomes[1].error
    assert report.status == "failed"
    assert report.summary == {"succeeded": 2, "failed": 1, "skipped": 0, "planned": 0}


def test_an_action_waits_for_its_prerequisite_and_is_skipped_when_it_fails(frame):
    restore = Action("restore-plan", "plan", "r")
    start = Action("start", "app", "r", after=(restore.key,))
    job = Scripted([start, restore], failing={"plan"})
    report = frame(job)
    assert job.applied == []
    by_target = {o.action.target: o for o in report.outcomes}
    assert by_target["app"].status == "skipped"
    assert "restore-plan:plan" in by_target["app"].error


def test_prerequisites_run_first(frame):
    restore = Action("restore-plan", "plan", "r")
    starts = [Action("start", f"app{i}", "r", after=(restore.key,)) for i in range(3)]
    job = Scripted(starts + [restore])
    frame(job)
    assert job.applied[0] == "plan" and sorted(job.applied[1:]) == ["app0", "app1", "app2"]


def test_dry_run_applies_nothing_and_reports_planned(frame):
    job = Scripted([Action("stop", "a", "r"), Action.skip("prod", "production is never touched"),
                    Action.fail("bad", "tag ops-dev-hours on bad: expected a day")])
    report = frame(job, dry_run=True)
    assert job.applied == []
    assert [o.status for o in report.outcomes] == ["planned", "skipped", "failed"]
    assert report.status == "failed"  # a malformed tag fails the run, dry or not


def test_every_run_is_stored_with_a_latest_record(frame):
    report = frame(Scripted([Action("stop", "a", "r")]))
    stored = frame.store.list_reports("dev-hours")
    assert any(report.run_id in path for path in stored)
    assert stored[-1].startswith("runs/dev-hours/")
    latest = frame.store.latest("dev-hours")
    assert latest["run_id"] == report.run_id and latest["schema_version"] == 1
    assert latest["actions"][0] == {"kind": "stop", "target": "a", "reason": "r",
                                    "status": "succeeded", "error": None, "detail": "done"}
    for key in ("job", "run_id", "trigger", "dry_run", "now", "started_at", "finished_at",
                "status", "summary"):
        assert key in latest


def test_an_overlapping_run_does_not_start(frame):
    job = Scripted([Action("stop", "a", "r")])
    with frame.store.lock("dev-hours"):
        with pytest.raises(AlreadyRunning):
            frame(job)
    assert job.applied == []
    frame(job)  # the lock is free again once released
    assert job.applied == ["a"]


def test_a_dry_run_takes_no_lock_so_it_never_holds_off_a_real_run(frame):
    class Slow(Scripted):
        def observe(self, ctx):  # a dashboard's dry run, still reading
            reading.set()
            release.wait(30)

    reading, release = threading.Event(), threading.Event()
    dry = threading.Thread(target=frame, args=(Slow([Action("stop", "a", "r")]),),
                           kwargs={"dry_run": True})
    dry.start()
    try:
        assert reading.wait(30)
        real = Scripted([Action("stop", "b", "r")])
        frame(real)  # AlreadyRunning if the dry run held the lock
        assert real.applied == ["b"]
    finally:
        release.set()
        dry.join()
    with frame.store.lock("dev-hours"):  # and a real run in progress does not stop a dry one
        report = frame(Scripted([Action("stop", "c", "r")]), dry_run=True)
    assert [o.status for o in report.outcomes] == ["planned"]


def test_unknown_options_are_refused_before_anything_runs(frame):
    job = Scripted([Action("stop", "a", "r")])
    with pytest.raises(BadOptions, match="no option colour"):
        frame(job, options={"colour": "red"})
    assert job.applied == []


def test_a_failure_to_observe_fails_the_run_with_a_reason(frame):
    class Broken(Scripted):
        def observe(self, ctx):
            raise ConnectionError("management endpoint unreachable")

    report = frame(Broken([]))
    assert report.status == "failed"
    assert "management endpoint unreachable" in report.errors[0]
