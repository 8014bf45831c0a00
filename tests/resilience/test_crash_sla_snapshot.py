"""sla-snapshot killed (SIGKILL) mid-run, then run again: the snapshot container ends
byte-identical to a never-crashed run's, the alert state is the same, and every alert
arrives at least once and at most twice.

The estate is tests/sla_snapshot's (5 apps, 2 subscriptions, 2 workspaces, 2 caches), with
an outage of app-shop in the last hour of a month. The run killed is the first of the new
month: it writes 5 snapshots and 5 rollups, the month's 5 final reports (JSON and HTML),
the burn-rate alerts of app-shop and its missed monthly objectives (webhook), the alert
state and its run report; it is killed after its k-th write (Azurite or webhook). An
earlier run (the hour before) has written snapshots that must survive unchanged.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from tests.resilience.crashing import (Crash, after_writes, assert_nothing_lost, blobs,
                                       delivered, points, sent_unsaved, slow_receiver, slow_writes)
from tests.sla_snapshot.estate import Estate, estate_world, iso, month_boundary

SCENARIO = "sla-snapshot"
FULL_WRITES = 35
STATE = "state/sla-snapshot/alerts.json"
MINUTE = timedelta(minutes=1)
BOUNDARY = month_boundary()
EARLIER, NOW = iso(BOUNDARY - 55 * MINUTE), iso(BOUNDARY + 5 * MINUTE)
_reference: dict = {}


@pytest.fixture
def crash(app_env, world, monkeypatch, proxy):
    receiver = slow_receiver()
    c = Crash(app_env, proxy, monkeypatch, receiver=receiver)
    c.world = world
    yield c
    receiver.stop()


def seed(crash: Crash) -> Estate:
    """The estate with app-shop's outage, its own snapshot container and run store, and the
    run of the month's second-last hour."""
    outage = {"start": BOUNDARY - 40 * MINUTE, "minutes": 40, "error_rate": 0.5}
    estate = Estate(crash.stack, crash.world, crash.monkeypatch, estate_world({"app-shop": [outage]}))
    crash.fresh_runs_container()
    slow_writes(crash.stack)
    report = crash.run_in_process(SCENARIO, EARLIER)
    assert report["status"] == "succeeded", report["actions"]
    return estate


def snapshots(estate: Estate) -> dict[str, bytes]:
    return blobs(estate._container)


def alert_state(crash: Crash) -> dict | None:
    blob = crash.runs.get_blob_client(STATE)
    return json.loads(blob.download_blob().readall()) if blob.exists() else None


def policy(estate: Estate) -> str:
    """The account's lifecycle rules, this estate's container name left out."""
    return json.dumps(estate.policy_rules(), sort_keys=True).replace(estate.container, "<container>")


def reference(crash: Crash) -> dict:
    if not _reference:
        estate = seed(crash)
        run = crash.run(SCENARIO, NOW)
        assert run.returncode == 0, run.describe()
        titles = Counter(w.target for w in run.writes if w.source == "webhook")
        assert any("missed" in t for t in titles) and any("burning" in t for t in titles), titles
        _reference.update(writes=len(run.writes), snapshots=snapshots(estate), state=alert_state(crash),
                          titles=titles, policy=policy(estate))
    return _reference


@pytest.mark.parametrize("point", points(FULL_WRITES))
def test_killed_after_any_write_a_rerun_writes_the_same_bytes_and_alerts_at_most_twice(crash, point):
    ref = reference(crash)
    assert ref["writes"] <= FULL_WRITES, f"raise FULL_WRITES to {ref['writes']}"
    k = point.k(SCENARIO, ref["writes"])
    estate = seed(crash)
    before, stored_before = snapshots(estate), crash.stored()
    sent_before = len(crash.receiver.received)

    killed, blocked, rerun, _ = crash.kill_and_rerun(SCENARIO, NOW, trigger=after_writes(crash.watch, k),
                                                     wait_for_lease=point.full and point.first)
    story = f"killed after write {k} of {ref['writes']}:\n{killed.describe()}\nrerun:\n{rerun.describe()}"
    assert rerun.returncode == 0, story

    # Byte-identical snapshots, rollups and final reports; no conflict blob; the same alert state.
    after = snapshots(estate)
    assert sorted(after) == sorted(ref["snapshots"]), story
    assert [n for n in after if after[n] != ref["snapshots"][n]] == [], story
    assert alert_state(crash) == ref["state"], story
    assert policy(estate) == ref["policy"]
    # The rerun's report says what it wrote, and it wrote only what was left.
    report = rerun.report
    wrote = {w.target for w in rerun.writes if w.source == "storage" and w.container == estate.container
             and w.status < 300}
    assert {a["target"] for a in report["actions"] if a["status"] == "succeeded"
            and a["kind"].startswith("write-")} == wrote, story
    first = {w.target for w in killed.writes if w.source == "storage" and w.container == estate.container
             and w.status < 300}
    assert not wrote & first, story  # nothing written twice
    assert not [w for w in killed.writes + rerun.writes if w.source == "arm"], story  # nothing in Azure

    # Every alert at least once, at most twice; twice only if the killed run sent it and died
    # before it saved the alert state.
    titles = delivered(crash.receiver, sent_before)
    assert set(titles) == set(ref["titles"]), story
    for title, n in titles.items():
        assert n == 1 or (n == 2 and sent_unsaved(killed, title, STATE)), \
            f"{title!r} arrived {n} times\n{story}"
    sent = sorted(w.target for w in rerun.writes if w.source == "webhook")
    assert sorted(a["reason"] for a in report["actions"] if a["kind"] == "notify"
                  and a["status"] == "succeeded") == sent, story

    # The next run writes nothing and sends nothing.
    again = crash.run_in_process(SCENARIO, iso(BOUNDARY + 9 * MINUTE))
    assert [a for a in again["actions"] if a["status"] == "succeeded"] == [], again["actions"]

    crash.assert_no_leak(killed, blocked, rerun)
    assert_nothing_lost(before, after, may_change=[n for n in before if n.startswith("rollups/")])
    assert_nothing_lost(stored_before, crash.stored(), may_change=(f"latest/{SCENARIO}.json", STATE))
