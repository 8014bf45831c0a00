"""End to end on the demo world: its due secrets rotate, forced ones too, every
new value authenticates against the real servers; the untagged secret is left
alone and the malformed one is a failed outcome naming the fault."""
from __future__ import annotations

import pytest

from tests.secret_rotation.conftest import actions

DUE = {  # secret -> why it is due in the demo world
    "shopfront-db-password": "due: expires",  # 20 days old, expires in 10 (near-expiry window 14)
    "shopfront-staging-db-password": "due: expires",
    "shopfront-redis-key": "due: 35 days old (period 30 days)",
    "shopfront-storage-key": "due: 62 days old (period 60 days)",
    "shopfront-app-db-password": "due: 70 days old (period 60 days)",
    "shopfront-reporting-db-password": "due: 95 days old (period 90 days)",
}
UNTAGGED, MALFORMED, NOT_DUE = "shopfront-smtp-password", "shopfront-search-api-key", "shopfront-session-secret"


def test_the_demo_world_rotates(demo):
    before = {name: demo.current(name) for name in [*DUE, UNTAGGED, NOT_DUE]}
    for name in DUE:
        assert demo.authenticates(name), name

    report = demo.run()
    got = actions(report)
    for name, why in DUE.items():
        assert got[name]["status"] == "succeeded", got[name]
        assert got[name]["reason"].startswith(why)
        assert demo.current(name).value != before[name].value
        assert demo.authenticates(name), name
    assert got[MALFORMED]["status"] == "failed"
    assert got[MALFORMED]["error"] == ("tags: rotation-period-days must be a whole number of days from "
                                       "1 to 3650, got 'every month'")
    assert UNTAGGED not in got and NOT_DUE not in got
    assert demo.current(UNTAGGED).properties.version == before[UNTAGGED].properties.version
    # dual credentials switched to the other key / role; single roles kept their name
    tags = {n: demo.current(n).properties.tags for n in DUE}
    assert tags["shopfront-redis-key"]["rotation-credential"] == "secondary"
    assert tags["shopfront-storage-key"]["rotation-credential"] == "key2"
    assert tags["shopfront-reporting-db-password"]["rotation-credential"] == "shopfront_report_b"
    assert tags["shopfront-db-password"]["rotation-credential"] == "shopfrontadmin"

    forced = demo.run(force=NOT_DUE)
    assert actions(forced)[NOT_DUE]["status"] == "succeeded"
    assert demo.current(NOT_DUE).value != before[NOT_DUE].value

    # then forcing each of the others once more (grace periods cut short): all converge again
    for name in DUE:
        again = demo.run(force=name, force_revoke=True)
        assert actions(again)[name]["status"] == "succeeded", actions(again)[name]
        assert demo.authenticates(name), name
    assert demo.current("shopfront-redis-key").properties.tags["rotation-credential"] == "primary"

    quiet = demo.run()
    assert [(a["target"], a["status"]) for a in quiet["actions"]] == [(MALFORMED, "failed")]


@pytest.mark.parametrize("name", [UNTAGGED, "no-such-secret"])
def test_forcing_what_cannot_be_rotated_is_a_failed_outcome(demo, name):
    report = demo.run(force=name)
    (failed,) = [a for a in report["actions"] if a["target"] == name]
    assert failed["status"] == "failed" and failed["error"].startswith("cannot force")
