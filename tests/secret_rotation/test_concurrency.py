"""One rotation per secret at a time: two runs at once, exactly one rotates."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

from jobs import service
from jobs.runner import RunContext
from jobs.secret_rotation.job import JOB
from jobs.store import AlreadyRunning
from sandbox.world import load_world_file
from tests.secret_rotation.conftest import ROTATION_WORLD

NAME = "rot-redis"


def _due_world(world) -> None:
    data = load_world_file(ROTATION_WORLD)
    for secret in data["secrets"]:
        if secret["name"] == NAME:
            secret["created"] = "-40d"  # due: period 30 days
    world(data)


def _together(n: int, target) -> list:
    """Start n calls at the same moment; their results (or exceptions), in any order."""
    barrier = threading.Barrier(n)
    results: list = []
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait()
        try:
            outcome = target(i)
        except Exception as exc:  # noqa: BLE001 - collected for the test
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_job_runs_at_once_rotate_a_due_secret_exactly_once(rot, world):
    _due_world(world)
    versions = len(rot.versions(NAME))
    results = _together(2, lambda i: rot.run())
    reports = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, AlreadyRunning)]
    assert len(reports) + len(refused) == 2, results
    rotated = [a for r in reports for a in r["actions"]
               if a["target"] == NAME and a["kind"] == "rotate-secret" and a["status"] == "succeeded"]
    assert len(rotated) == 1
    assert len(rot.versions(NAME)) == versions + 1
    assert rot.pending(NAME) == ("finished", False) and rot.authenticates(NAME)


def test_two_applies_of_one_secret_at_once_exactly_one_rotates(rot, world):
    """Below the job-wide run lock: the per-secret lease (and the re-check under it)."""
    _due_world(world)
    env = service.environment()
    now = datetime.now(timezone.utc)

    def context() -> RunContext:
        return RunContext(job="secret-rotation", run_id=uuid.uuid4().hex[:12], now=now, dry_run=False,
                          settings=env.settings, clients=env.clients, store=env.store,
                          options={"force": NAME})

    planning = context()
    (action,) = [a for a in JOB.plan(JOB.observe(planning), planning) if a.target == NAME]
    versions = len(rot.versions(NAME))
    results = _together(2, lambda i: JOB.apply(action, context()))
    finished = [r for r in results if isinstance(r, str) and "finished" in r]
    others = [r for r in results if r not in finished]
    assert len(finished) == 1, results
    (other,) = others
    assert isinstance(other, AlreadyRunning) or other.startswith("nothing to do: another run rotated"), other
    assert len(rot.versions(NAME)) == versions + 1
    assert rot.authenticates(NAME)
