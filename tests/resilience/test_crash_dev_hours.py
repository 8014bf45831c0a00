"""dev-hours killed (SIGKILL) mid-run, then run again: it converges to the end state of a run
that never crashed, and keeps converging at the next transition.

Two scenarios over the week estate of tests/dev_hours/test_e2e.py (24 apps, 3
subscriptions, production among them): the Monday evening run (16 stops, a start, 4
scale-downs) and the Tuesday morning catch-up (4 restores, then 17 starts and a stop), each
killed after its k-th write (Resource Manager or run store). After the rerun at the same
``now`` the apps, slots, plans, plan tags and the job's state equal the never-crashed run's;
then the next transition (Tuesday morning, resp. evening) is run on both and must agree
again: an app the job stopped before the kill is started by it, one a person stopped is not.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.dev_hours.test_e2e import PRODUCTION, PROD, WORLD, configure, written
from tests.resilience.crashing import Crash, after_writes, assert_nothing_lost, points

MON, MON_OFF, TUE, TUE_OFF, WED = ("2026-11-30T09:00:00Z", "2026-11-30T19:15:00Z", "2026-12-01T10:30:00Z",
                                   "2026-12-01T19:15:00Z", "2026-12-02T10:30:00Z")
SCENARIOS = {
    # name: (earlier runs, the run killed, the next transition after it)
    "first-evening": ((MON,), MON_OFF, TUE),  # nothing recorded for the plans yet
    "morning": ((MON, MON_OFF), TUE, TUE_OFF),  # restores, then starts
    "evening": ((MON, MON_OFF, TUE), TUE_OFF, WED),  # the plans' records of Monday's period
}
FULL_WRITES = {"first-evening": 43, "morning": 43, "evening": 46}  # each run's writes (full form)
VERB = {"stop-site": "stop", "stop-slot": "stop", "start-site": "start", "start-slot": "start",
        "scale-down-plan": "plan", "restore-plan": "plan", "mark-site": "tag", "unmark-site": "tag"}
SHORT = 2  # kill points per scenario in the short form
_references: dict[str, dict] = {}


@pytest.fixture
def crash(app_env, world, monkeypatch, proxy):
    from tests.resilience.crashing import slow_writes
    c = Crash(app_env, proxy, monkeypatch)
    c.world = world
    slow_writes(app_env)
    return c


def seed(crash: Crash, earlier: tuple[str, ...]) -> None:
    """The estate as the e2e test seeds it, and the runs before the one that is killed."""
    crash.world(WORLD)
    crash.fresh_runs_container()
    configure(crash.monkeypatch)
    for now in earlier:
        crash.run_in_process("dev-hours", now, trigger="timer")


def estate(stack) -> dict:
    """Every app's and slot's state, every plan's SKU and tags."""
    snapshot = stack.world.snapshot()
    return {
        "apps": {r["name"]: r["properties"]["state"] for r in snapshot["resources"]
                 if r["type"] in ("Microsoft.Web/sites", "Microsoft.Web/sites/slots")},
        "plans": {r["name"]: (r["sku"]["name"], r["sku"]["capacity"], r["sku"].get("tier"),
                              dict(r.get("tags") or {}))
                  for r in snapshot["resources"] if r["type"] == "Microsoft.Web/serverfarms"},
    }


def state(crash: Crash) -> dict:
    return json.loads(crash.runs.download_blob("state/dev-hours/state.json").readall())


def reference(crash: Crash, scenario: str) -> dict:
    """The same runs, never crashed: the write count and every end state to compare with."""
    if scenario not in _references:
        earlier, now, after = SCENARIOS[scenario]
        seed(crash, earlier)
        run = crash.run("dev-hours", now)
        assert run.returncode == 1, run.describe()  # app-bad-dev's malformed tag, every run
        end = {"estate": estate(crash.stack), "state": state(crash),
               "writes": [written_by(w) for w in landed(run)]}
        crash.run_in_process("dev-hours", after, trigger="timer")
        _references[scenario] = {"writes": len(run.writes), "end": end,
                                 "after": {"estate": estate(crash.stack), "state": state(crash)}}
    return _references[scenario]


def landed(run) -> list:
    """A run's Resource Manager writes that took effect (a request cut short is refused)."""
    return [w for w in run.writes if w.source == "arm" and w.status < 300]


def written_by(write) -> tuple[str, str]:
    return written({"path": write.target})


def done_by_report(report: dict) -> Counter:
    """(verb, app or plan) of every write the report says succeeded."""
    out: Counter = Counter()
    for a in report["actions"]:
        if a["status"] == "succeeded" and a["kind"] in VERB:
            out[(VERB[a["kind"]], _name(a["target"]))] += 1
    return out


def _name(target: str) -> str:
    parts = target.split("/providers/Microsoft.Web/", 1)[1].split("/")
    return parts[1] + (f"/{parts[3]}" if len(parts) > 3 else "")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("point", points(max(FULL_WRITES.values()), short=SHORT))
def test_killed_after_any_write_a_rerun_converges(crash, scenario, point):
    ref = reference(crash, scenario)
    assert ref["writes"] <= FULL_WRITES[scenario], f"raise FULL_WRITES[{scenario!r}] to {ref['writes']}"
    k = point.k(f"dev-hours-{scenario}", ref["writes"], SHORT)
    earlier, now, after = SCENARIOS[scenario]
    seed(crash, earlier)
    before = crash.stored()

    killed, blocked, rerun, _ = crash.kill_and_rerun(
        "dev-hours", now, trigger=after_writes(crash.watch, k),
        wait_for_lease=point.first and scenario == "evening")
    assert not [a for a in rerun.report["actions"] if "changed by hand" in a["reason"]], rerun.report
    story = f"killed after write {k} of {ref['writes']}:\n{killed.describe()}\nrerun:\n{rerun.describe()}"

    # The rerun converges to the never-crashed end state, the job's memory included.
    assert estate(crash.stack) == ref["end"]["estate"], story
    assert state(crash) == ref["end"]["state"], story
    # Its report is honest: it says it did exactly the writes it made (and only those).
    report = rerun.report
    assert done_by_report(report) == Counter(written_by(w) for w in landed(rerun)), story
    assert [a["target"].rsplit("/", 1)[-1] for a in report["actions"] if a["status"] == "failed"] == [
        "app-bad-dev"], story
    # Between them the two runs made the reference's writes, each once: the rerun redid nothing.
    both = Counter(written_by(w) for w in landed(killed) + landed(rerun))
    assert sorted(both.elements()) == sorted(ref["end"]["writes"]), story
    # No production resource was ever written.
    touched = {name.split("/")[0] for _, name in both}
    assert not touched & set(PRODUCTION)
    assert not any(f"/subscriptions/{PROD}" in w.target for w in killed.writes + rerun.writes)
    # Nothing stored before was lost; only the state and the latest report moved on.
    crash.assert_no_leak(killed, blocked, rerun)
    assert_nothing_lost(before, crash.stored(), may_change=("state/dev-hours/state.json",
                                                             "latest/dev-hours.json"))

    # The next transition: the same as after a run that never crashed.
    crash.run_in_process("dev-hours", after, trigger="timer")
    assert estate(crash.stack) == ref["after"]["estate"], story
    assert state(crash) == ref["after"]["state"], story
    apps = estate(crash.stack)["apps"]
    assert apps["app-admin-dev"] == apps["app-preview-dev/pr2"] == "Stopped"  # stopped by people
