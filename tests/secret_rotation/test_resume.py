"""A rotation a crash left unfinished is resumed within minutes, not at the next daily run:
a second timer (``timer_secret_rotation_resume``, every five minutes) looks at the vault and
the failure counters and runs the job, resuming only the interrupted rotations, when there
is one; otherwise it stores nothing and takes no lock. A single-role PostgreSQL administrator
crashed between SET and PROMOTE (the role's password already the pending one, so every
consumer is locked out) is the case that cannot wait a day."""
from __future__ import annotations

import copy
import json
import re
import uuid

from azure.functions.timer import TimerRequest

from jobs import service
from jobs.secret_rotation import protocol
from sandbox.world import load_world_file
from tests.app_functions import indexed, user_function
from tests.secret_rotation.conftest import ROTATION_WORLD, actions, pg_login

RESUME_TIMER = "timer_secret_rotation_resume"
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def minutes_between_firings(schedule: str) -> int:
    """For a six-field NCRONTAB firing every n minutes of every hour and day: n."""
    second, minute, *rest = schedule.split()
    assert re.fullmatch(r"\d+", second) and rest == ["*"] * 4, schedule
    every = re.fullmatch(r"(?:\*|\d+-59)/(\d+)|\*", minute)
    assert every, schedule
    return int(every[1] or 1)


def writes(stack) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in stack.sandbox.request_log()
            if r["method"] in WRITES and not r["path"].startswith("/_sandbox")]


def test_the_resume_timer_fires_every_few_minutes():
    trigger = json.loads(indexed()[RESUME_TIMER].get_function_json())["bindings"][0]
    assert trigger["type"] == "timerTrigger" and not trigger.get("runOnStartup")
    assert minutes_between_firings(trigger["schedule"]) <= 5


def test_a_crashed_single_role_admin_rotation_is_resumed_within_minutes(rot):
    name = "rot-pg-admin"
    before = rot.current(name).value
    rotation = rot.rotation(name)
    for step in ("create", "set"):
        protocol.STEP_FUNCTIONS[step](rotation)
    pending = rotation.vault.pending(name)
    del rotation  # the crash: the administrator's password is the pending one now
    assert not rot.authenticates(name)
    assert not pg_login(rot, "rotation_admin", before)

    user_function(RESUME_TIMER)(TimerRequest())

    report = service.latest("secret-rotation")
    assert report["trigger"] == "timer" and report["dry_run"] is False
    assert report["status"] == "succeeded"  # only the resumed rotation, not the malformed secret
    done = actions(report)
    assert list(done) == [name]
    assert done[name]["status"] == "succeeded" and "resumed after step set" in done[name]["detail"]
    assert rot.current(name).value == pending.value
    assert pg_login(rot, "rotation_admin", rot.current(name).value)  # consumers work again
    assert rot.pending(name) == ("finished", False)
    assert rot.authenticates("rot-pg-app")  # the app role, untouched, still logs in


def test_the_resume_timer_is_a_cheap_look_when_nothing_was_interrupted(rot, world, monkeypatch):
    data = copy.deepcopy(load_world_file(ROTATION_WORLD))
    for secret in data["secrets"]:
        secret["created"] = "-40d"  # all due: still the daily run's work, not the resume timer's
    world(data)
    monkeypatch.setenv("OPS_RUNS_CONTAINER", f"resume-{uuid.uuid4().hex[:12]}")  # a store of its own
    service.reset()
    user_function(RESUME_TIMER)(TimerRequest())
    assert service.latest("secret-rotation") is None  # no run, no record
    assert writes(rot.stack) == []
    runs = service.environment().clients.blob_service.get_container_client(
        service.environment().settings.runs_container)
    assert not runs.exists() or [b.name for b in runs.list_blobs()] == []  # no lock, no state


def test_a_failed_rotation_is_left_to_the_daily_run(rot, monkeypatch):
    """A recorded failure is retried by the scheduled run (and counted): retrying it every
    five minutes would spend its attempts, and notify, within a quarter of an hour."""
    endpoint = rot.env["OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT"]
    monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT",
                       f"{rot.stack.sandbox.url}/_storage/missing-{{account}}")
    service.reset()
    failed = rot.run(force="rot-storage")
    assert actions(failed)["rot-storage"]["status"] == "failed"
    assert rot.pending("rot-storage") == ("set", True)
    monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", endpoint)
    service.reset()
    rot.stack.sandbox.clear_log()

    user_function(RESUME_TIMER)(TimerRequest())
    assert service.latest("secret-rotation")["run_id"] == failed["run_id"]
    assert writes(rot.stack) == [] and rot.pending("rot-storage") == ("set", True)


def test_without_a_vault_the_resume_timer_stays_quiet(app_env, monkeypatch):
    """An app that does not use secret-rotation (no OPS_KEYVAULT_URL) gets no failed
    invocation every five minutes; its scheduled run still says what is missing."""
    monkeypatch.delenv("OPS_KEYVAULT_URL")
    service.reset()
    assert user_function(RESUME_TIMER)(TimerRequest()) is None
    assert service.latest("secret-rotation") is None
