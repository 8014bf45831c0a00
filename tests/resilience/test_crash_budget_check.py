"""budget-check killed (SIGKILL) mid-run, then run again: the budgets end in the shape a
never-crashed run leaves them, the alert state is the same, and every threshold alert
arrives at least once and at most twice.

The world is tests/budget_check/test_e2e.py's (three scopes; scope A's budget missing and
both its thresholds crossed, scope B's budget drifted). A run writes: the lock, budget A
(create), budget B (update in place), two webhook notifications, the alert state, the run
report. It is killed after its k-th write (Consumption, webhook or run store).

At most twice, not exactly once: an alert is remembered once its notification was
accepted, in the state saved after apply (budget_check/alerts.py). A kill after the webhook
accepted a message and before that state is saved loses the memory of it, so the rerun
sends it again (documented in the module and README: at least once, never lost). A kill
after the state was saved sends nothing twice; that case is asserted exactly once.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from tests.budget_check.test_e2e import A, EMAIL, NOW, SCOPE_A, SCOPE_B, SCOPE_RG, WORLD
from tests.resilience.crashing import (Crash, after_writes, assert_nothing_lost, delivered,
                                       points, sent_unsaved, slow_receiver, slow_writes)

SCENARIO = "budget-check"
NOW_ISO = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
FULL_WRITES = 10
STATE = "state/budget-check/alerts.json"
TITLES = {f"Budget 80% reached: subscription {A}", f"Forecast over 100% of budget: subscription {A}"}
_reference: dict = {}


@pytest.fixture
def crash(app_env, world, monkeypatch, proxy):
    receiver = slow_receiver()
    for key in list(os.environ):
        if key.startswith("OPS_BUDGET_CHECK__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPS_BUDGET_CHECK__SCOPES", f"{SCOPE_A}=600, {SCOPE_B}=400, {SCOPE_RG}=150")
    monkeypatch.setenv("OPS_BUDGET_CHECK__CONTACT_EMAILS", EMAIL)
    c = Crash(app_env, proxy, monkeypatch, receiver=receiver)
    c.world = world
    slow_writes(app_env)
    yield c
    receiver.stop()


def seed(crash: Crash) -> None:
    """The budget world; a dry run before (a run record that must survive, nothing sent)."""
    crash.world(WORLD)
    crash.fresh_runs_container()
    crash.run_in_process(SCENARIO, NOW_ISO, dry_run=True)


def budgets(stack) -> dict:
    """Each scope's ops-monthly budget as Azure holds it, but for its eTag (new on every write)."""
    out = {}
    for b in stack.world.section("budgets", []):
        if b["name"] == "ops-monthly":
            out[b["scope"].lower()] = {k: v for k, v in b.items() if k != "eTag"}
    return out


def alert_state(crash: Crash) -> dict | None:
    blob = crash.runs.get_blob_client(STATE)
    return json.loads(blob.download_blob().readall()) if blob.exists() else None


def reference(crash: Crash) -> dict:
    if not _reference:
        seed(crash)
        run = crash.run(SCENARIO, NOW_ISO)
        assert run.returncode == 0, run.describe()
        assert set(delivered(crash.receiver)) == TITLES
        _reference.update(writes=len(run.writes), budgets=budgets(crash.stack), state=alert_state(crash))
    return _reference


def budget_writes(run) -> Counter:
    """Budgets a run wrote (a request cut short by the kill is refused, not written)."""
    return Counter(w.target.rsplit("/providers/", 1)[0].lower() for w in run.writes
                   if w.source == "arm" and w.operation == "Microsoft.Consumption/budgets/write"
                   and w.status < 300)


@pytest.mark.parametrize("point", points(FULL_WRITES))
def test_killed_after_any_write_a_rerun_converges_and_alerts_at_most_twice(crash, point):
    ref = reference(crash)
    assert ref["writes"] <= FULL_WRITES, f"raise FULL_WRITES to {ref['writes']}"
    k = point.k(SCENARIO, ref["writes"])
    seed(crash)
    before = crash.stored()
    sent_before = len(crash.receiver.received)

    killed, blocked, rerun, _ = crash.kill_and_rerun(SCENARIO, NOW_ISO, trigger=after_writes(crash.watch, k),
                                                     wait_for_lease=point.full and point.first)
    story = f"killed after write {k} of {ref['writes']}:\n{killed.describe()}\nrerun:\n{rerun.describe()}"
    assert rerun.returncode == 0, story

    # The budgets are in the shape a never-crashed run leaves them; the alert state is the same.
    assert budgets(crash.stack) == ref["budgets"], story
    assert alert_state(crash) == ref["state"], story
    # Each budget was written once, by the killed run or by the rerun (which read it first).
    assert set(budget_writes(killed)) | set(budget_writes(rerun)) == {SCOPE_A.lower(), SCOPE_B.lower()}, story
    assert not set(budget_writes(killed)) & set(budget_writes(rerun)), story
    # The rerun's report says what it did: its budget writes and its notifications.
    report = rerun.report
    done = {a["kind"]: a for a in report["actions"] if a["status"] == "succeeded"}
    assert {a["target"].rsplit("/providers/", 1)[0].lower() for a in report["actions"]
            if a["kind"] in ("create-budget", "update-budget") and a["status"] == "succeeded"} == set(
        budget_writes(rerun)), story
    resent = [w.target for w in rerun.writes if w.source == "webhook"]
    assert sorted(a["reason"] for a in report["actions"] if a["kind"] == "notify"
                  and a["status"] == "succeeded") == sorted(resent), story
    assert done.keys() <= {"create-budget", "update-budget", "notify"}, story

    # Every alert arrived at least once and at most twice; twice only when the killed run
    # sent it and was killed before it saved the alert state.
    titles = delivered(crash.receiver, sent_before)
    assert set(titles) == TITLES, story
    for title, n in titles.items():
        assert n == 1 or (n == 2 and sent_unsaved(killed, title, STATE)), \
            f"{title!r} arrived {n} times\n{story}"

    # A later run the same day sends nothing and writes no budget.
    again = crash.run_in_process(SCENARIO, NOW_ISO)
    assert not [a for a in again["actions"] if a["status"] == "succeeded"], again["actions"]
    assert delivered(crash.receiver, sent_before) == titles

    crash.assert_no_leak(killed, blocked, rerun)
    assert_nothing_lost(before, crash.stored(), may_change=(f"latest/{SCENARIO}.json",))

