"""secret-rotation killed (SIGKILL) at a step boundary, then run again: every rotation
converges to the shape a never-crashed run leaves, and the value consumers read
authenticates against the real PostgreSQL and Redis servers and the sandbox's Storage data
plane at the kill point and after.

The complement of tests/secret_rotation/test_crash.py (which drives the protocol's step
functions in one process): here the job runs as its own process, rotating all six kinds of
tests/secret_rotation's world at once (a generated value, a PostgreSQL administrator, an app
role, alternate roles, a Redis key, a Storage key; their current versions made 40 days old,
so all are due), and is SIGKILLed when one secret's pending marker (the ``rotation-step`` tag of
``<name>--pending``, read from the sandbox's vault) reaches a step: created, set, tested,
promoted or finished. The other rotations are wherever they are at that moment. The short
form takes a few (secret, step) pairs, seeded; ``OPS_CRASH_RUNS=full`` takes all 30.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from jobs.secret_rotation import tags as T
from tests.resilience.crashing import (FULL, SEED, Crash, assert_nothing_lost, slow_writes)
from sandbox.world import load_world_file
from tests.secret_rotation.conftest import ROTATION_WORLD, Harness

JOB = "secret-rotation"
MODES = {"rot-generated": T.LOCAL, "rot-pg-admin": T.SINGLE_ROLE, "rot-pg-app": T.SINGLE_ROLE,
         "rot-pg-alt": T.ALTERNATE_ROLES, "rot-redis": T.DUAL, "rot-storage": T.DUAL}
LEFT_ALONE = ("rot-untagged", "rot-malformed")
STEPS = ("created", "set", "tested", "promoted", "finished")
ACTIVE = STEPS[:-1]
RESOURCES = ("psql-rotation", "redis-rotation", "strotation")
_reference: dict = {}

COMBOS = [(name, step) for name in MODES for step in STEPS]
if FULL:
    POINTS = [pytest.param(c, id=f"{c[0]}-{c[1]}", marks=pytest.mark.slow) for c in COMBOS]
else:
    POINTS = [pytest.param(c, id=f"{c[0]}-{c[1]}")
              for c in random.Random(f"{SEED}:{JOB}").sample(COMBOS, 3)]
FIRST = POINTS[0].values[0]


@pytest.fixture(autouse=True)
def _forget_key_vault_challenges():
    """As tests/secret_rotation/conftest.py: leave no cached vault challenge behind."""
    yield
    from azure.keyvault.secrets._shared import http_challenge_cache
    http_challenge_cache.clear()


@pytest.fixture
def crash(app_env, world, monkeypatch, proxy):
    from sandbox import databases
    missing = [k for k in ("postgres", "redis") if not any(db.kind == k for db in app_env.databases)]
    if missing:
        pytest.skip("; ".join(databases.UNAVAILABLE.get(k, f"{k} was not started") for k in missing))
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_ATTEMPTS", "3")
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_DELAY_SECONDS", "0.05")
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_MAX_DELAY_SECONDS", "0.2")
    c = Crash(app_env, proxy, monkeypatch)
    c.world = world
    return c


def now() -> str:
    """The vault stamps new versions with the wall clock: a run's ``now`` must be it too, or
    a version written a moment ago would look a month old."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def due_world() -> dict:
    data = load_world_file(ROTATION_WORLD)
    for secret in data["secrets"]:
        if secret["name"] in MODES:
            secret["created"] = "-40d"  # period 30 days
    return data


def seed(crash: Crash) -> Harness:
    """The rotation world, every tagged secret due; a dry run whose record must survive."""
    crash.world(due_world())
    crash.fresh_runs_container()
    slow_writes(crash.stack)
    report = crash.run_in_process(JOB, now(), dry_run=True)
    assert {a["target"] for a in report["actions"] if a["kind"] == "rotate-secret"} == set(MODES)
    return Harness(crash.stack)


def marker(stack, name: str) -> str | None:
    """The rotation-step of the latest version of <name>--pending, straight from the vault."""
    with stack.world.lock:
        store = (stack.world.sections.get("keyvault") or {}).get(f"{name}--pending")
        return store["versions"][-1]["tags"].get(T.STEP_TAG) if store else None


def pending_value(stack, name: str) -> tuple[str | None, str | None]:
    with stack.world.lock:
        latest = stack.world.sections["keyvault"][f"{name}--pending"]["versions"][-1]
        return latest["value"], latest["tags"].get(T.CREDENTIAL_TAG)


def at_marker(stack, name: str, step: str):
    def trigger() -> str | None:
        return f"{name} at {step}" if marker(stack, name) == step else None
    return trigger


def vault(stack) -> dict[str, list[tuple[str, str, bool]]]:
    """name -> [(version, value, enabled)] of every secret, in creation order."""
    with stack.world.lock:
        return {name: [(v["version"], v["value"], v["enabled"]) for v in s["versions"]]
                for name, s in stack.world.sections["keyvault"].items()}


def shape(h: Harness) -> dict:
    """What a rotation leaves, without its values and version ids."""
    out = {}
    for name in list(MODES) + list(LEFT_ALONE):
        current = h.current(name)
        tags = current.properties.tags or {}
        pending = [p for p in h.versions(name + "--pending")] if name in MODES else []
        out[name] = {"versions": len(h.versions(name)), "enabled": len(h.enabled_versions(name)),
                     "credential": tags.get(T.CREDENTIAL_TAG), "tags": sorted(tags),
                     "content_type": current.properties.content_type,
                     "expires": current.properties.expires_on is not None,
                     "pending": h.pending(name) if name in MODES else None,
                     "pending_versions": len(pending), "pending_enabled": sum(p.enabled for p in pending)}
    return out


def diff(got: dict, want: dict) -> dict:
    return {name: {k: (v, want[name][k]) for k, v in fields.items() if v != want[name][k]}
            for name, fields in got.items() if fields != want[name]}


def reference(crash: Crash) -> dict:
    if not _reference:
        h = seed(crash)
        run = crash.run(JOB, now())
        assert run.returncode == 1, run.describe()  # rot-malformed's tags, every run
        rotated = {a["target"] for a in run.report["actions"]
                   if a["kind"] == "rotate-secret" and a["status"] == "succeeded"}
        assert rotated == set(MODES), run.report["actions"]
        _reference.update(shape=shape(h))
    return _reference


def rotating(path: str) -> bool:
    """A write to a rotating secret (or its pending companion) or to a rotated resource."""
    parts = path.strip("/").split("/")
    if parts[0] == "secrets":
        return parts[1].removesuffix("--pending") in MODES
    return any(resource in parts for resource in RESOURCES)


def assert_consumers_authenticate(h: Harness, stack, where: str) -> None:
    """The value consumers read works, except in the single-role window (PostgreSQL role
    password already changed, not promoted yet), where the pending value does."""
    for name, mode in MODES.items():
        if h.authenticates(name):
            continue
        step = marker(stack, name)
        assert mode == T.SINGLE_ROLE and step in ("created", "set", "tested"), \
            f"{where}: {name}'s value does not authenticate (marker {step})"
        value, credential = pending_value(stack, name)
        assert h.authenticates(name, value, credential), f"{where}: neither value of {name} works"


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_a_step_boundary_a_rerun_converges_and_consumers_keep_working(crash, point):
    name, step = point
    ref = reference(crash)
    h = seed(crash)
    before_vault, before_runs = vault(crash.stack), crash.stored()
    markers: dict[str, str | None] = {}

    def at_kill(killed):
        assert marker(crash.stack, name) in STEPS[STEPS.index(step):], killed.describe()
        markers.update({n: marker(crash.stack, n) for n in MODES})
        assert_consumers_authenticate(h, crash.stack, f"killed with {name} at {step}")

    killed, blocked, rerun, _ = crash.kill_and_rerun(
        JOB, now(), trigger=at_marker(crash.stack, name, step), wait_for_lease=point == FIRST,
        at_kill=at_kill)
    story = (f"killed with {name} at {step} (markers {markers}):\n{killed.describe()}\n"
             f"rerun:\n{rerun.describe()}")

    # Converged: the shape of a never-crashed run, every secret rotated exactly once.
    got = shape(h)
    assert got == ref["shape"], f"{diff(got, ref['shape'])}\n{story}"
    assert_consumers_authenticate(h, crash.stack, "after the rerun")
    for secret, mode in MODES.items():
        current = h.current(secret)
        previous = (current.properties.tags or {}).get(T.PREVIOUS_TAG)
        if mode in (T.DUAL, T.ALTERNATE_ROLES):  # the previous value works for its grace period
            old = h.kv.get_secret(secret, previous)
            credential = (old.properties.tags or {}).get(T.CREDENTIAL_TAG)
            assert h.authenticates(secret, old.value, credential), secret
        if mode == T.SINGLE_ROLE:
            old = before_vault[secret.lower()][-1]
            assert not h.authenticates(secret, old[1], current.properties.tags.get(T.CREDENTIAL_TAG))

    # The rerun's report is honest: each rotation the kill interrupted says where it resumed.
    rotated = {a["target"]: a for a in rerun.report["actions"] if a["kind"] == "rotate-secret"}
    for secret, at in markers.items():
        if at in ACTIVE:
            assert rotated[secret]["status"] == "succeeded", story
            assert f"resumed after step {at}" in rotated[secret]["detail"], story
        elif at == "finished":
            assert secret not in rotated, story  # done, and not due any more
        else:
            assert rotated[secret]["status"] == "succeeded", story
    assert not set(rotated) & set(LEFT_ALONE)

    # Nothing but the rotating secrets and their resources was written.
    touched = [w for w in killed.writes + rerun.writes if w.source == "arm"]
    stray = [str(w) for w in touched if not rotating(w.target)]
    assert not stray, stray

    # Nothing stored was lost: every earlier version keeps its value; earlier run records stay.
    after_vault = vault(crash.stack)
    for secret, versions in before_vault.items():
        kept = {v: value for v, value, _ in after_vault[secret]}
        assert all(kept.get(v) == value for v, value, _ in versions), secret
    assert_nothing_lost(before_runs, crash.stored(), may_change=(f"latest/{JOB}.json",))
    crash.assert_no_leak(killed, blocked, rerun)


def test_killed_in_the_single_role_window_the_resume_timer_completes_it_within_minutes(crash):
    """SIGKILLed once the server administrator's password is the pending one (every consumer
    of rot-pg-admin locked out): the resume timer, every five minutes, finishes it as soon as
    the killed run's lease lapses, instead of the next daily run."""
    from azure.functions.timer import TimerRequest
    from jobs import service
    from tests.app_functions import user_function
    from tests.resilience.crashing import LOCK_SECONDS, wait_for_locks_to_lapse
    resume = user_function("timer_secret_rotation_resume")
    h = seed(crash)
    killed = crash.run(JOB, now(), trigger=at_marker(crash.stack, "rot-pg-admin", "set"))
    assert killed.killed, killed.describe()
    assert marker(crash.stack, "rot-pg-admin") in ("set", "tested")
    assert not h.authenticates("rot-pg-admin")  # the single-role window, left open by the kill
    interrupted = {n for n in MODES if marker(crash.stack, n) in ACTIVE}

    resume(TimerRequest())  # the killed run's lease still holds: skipped, tried again next time
    assert service.latest(JOB) is None or service.latest(JOB)["trigger"] != "timer"
    wait_for_locks_to_lapse(crash.runs, LOCK_SECONDS + 5)
    resume(TimerRequest())

    report = service.latest(JOB)
    assert report["trigger"] == "timer" and report["status"] == "succeeded", report
    resumed = {a["target"]: a for a in report["actions"]}
    assert set(resumed) == interrupted, (resumed, killed.describe())
    assert all(a["status"] == "succeeded" and "resumed after step" in a["detail"]
               for a in resumed.values())
    assert_consumers_authenticate(h, crash.stack, "after the resume timer")
    assert h.authenticates("rot-pg-admin") and h.pending("rot-pg-admin") == ("finished", False)
    crash.assert_no_leak(killed)
