"""Crash after any step, run the job again: the rotation converges, and the value
consumers read (the secret's current version) authenticates against the real
PostgreSQL and Redis servers and the sandbox's Storage data plane at every step
boundary; single-role PostgreSQL only between SET and PROMOTE, the documented
window, where the pending value is the one that works.

"Crash after step k" is honest: the steps are driven one by one through the
protocol's own functions, then the process state is dropped and the whole job
runs again; the only state it finds is what the steps persisted (Key Vault, the
resources). Nothing is monkeypatched.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.secret_rotation import protocol
from jobs.secret_rotation import tags as T
from tests.secret_rotation.conftest import actions

MODES = {
    "rot-generated": T.LOCAL,
    "rot-pg-admin": T.SINGLE_ROLE,  # the server administrator, through the flexible server PATCH
    "rot-pg-app": T.SINGLE_ROLE,  # an app role, ALTER ROLE as the administrator
    "rot-pg-alt": T.ALTERNATE_ROLES,
    "rot-redis": T.DUAL,
    "rot-storage": T.DUAL,
}
STEPS = ["create", "set", "test", "promote", "finish"]
MARKERS = {"create": "created", "set": "set", "test": "tested", "promote": "promoted", "finish": "finished"}


def in_window(mode: str, step: str) -> bool:
    """Single-role: after SET and TEST, only the pending value authenticates."""
    return mode == T.SINGLE_ROLE and step in ("set", "test")


def check_boundary(rot, rotation, name: str, mode: str, step: str) -> None:
    consumers_ok = rot.authenticates(name)
    assert consumers_ok is (not in_window(mode, step)), f"after {step}: consumers' value"
    if step in ("set", "test") and mode != T.LOCAL:
        pending = rotation.vault.pending(name)
        assert rot.authenticates(name, pending.value, pending.credential), f"after {step}: pending value"
    state = rot.pending(name)
    assert state == (MARKERS[step], step != "finish"), f"after {step}: marker {state}"


def snapshot(rot, name: str) -> dict:
    current = rot.current(name)
    return {"value": current.value, "version": current.properties.version,
            "credential": (current.properties.tags or {}).get(T.CREDENTIAL_TAG),
            "versions": {p.version for p in rot.versions(name)}}


def assert_converged(rot, name: str, mode: str, before: dict) -> None:
    current = rot.current(name)
    tags = current.properties.tags
    assert current.value != before["value"]
    assert rot.authenticates(name), "consumers' value after the rotation"
    assert rot.pending(name) == ("finished", False)
    # exactly one new version: the rotation was resumed, never started twice
    new = {p.version for p in rot.versions(name)} - before["versions"]
    assert new == {current.properties.version}
    assert tags[T.ID_TAG] and tags["application"] == "rotation-test"  # carried forward
    flipped = {T.DUAL: True, T.ALTERNATE_ROLES: True}.get(mode, False)
    if flipped:
        assert tags[T.CREDENTIAL_TAG] != before["credential"]
    else:
        assert tags.get(T.CREDENTIAL_TAG) == before["credential"]
    enabled = rot.enabled_versions(name)
    if mode == T.SINGLE_ROLE:
        assert enabled == {current.properties.version}
        assert not rot.authenticates(name, before["value"], before["credential"])
        assert T.PREVIOUS_TAG not in tags
    else:
        assert enabled == {current.properties.version, before["version"]}  # older ones disabled
        assert tags[T.PREVIOUS_TAG] == before["version"] and tags[T.GRACE_TAG]
        if mode != T.LOCAL:  # the previous value still works during its grace period
            assert rot.authenticates(name, before["value"], before["credential"])
    assert current.properties.expires_on is not None


@pytest.mark.parametrize("crash_after", range(len(STEPS) + 1), ids=lambda k: f"after-{k}-steps")
@pytest.mark.parametrize("name", list(MODES))
def test_crash_after_any_step_then_a_run_converges(rot, name, crash_after):
    mode = MODES[name]
    before = snapshot(rot, name)
    assert rot.authenticates(name)
    rotation = rot.rotation(name)
    for step in STEPS[:crash_after]:
        protocol.STEP_FUNCTIONS[step](rotation)
        check_boundary(rot, rotation, name, mode, step)
    del rotation  # the crash: only what the steps persisted survives

    report = rot.run(force=name if crash_after == 0 else None)
    rotated = actions(report, "rotate-secret")
    if crash_after == len(STEPS):
        assert name not in rotated  # finished already, and not due
    else:
        assert rotated[name]["status"] == "succeeded", rotated[name]
        if crash_after:
            marker = MARKERS[STEPS[crash_after - 1]]
            assert rotated[name]["reason"].endswith(f"after step {marker}")
            assert f"resumed after step {marker}" in rotated[name]["detail"]
    assert_converged(rot, name, mode, before)
    # and nothing else in the vault was touched
    assert rot.pending("rot-untagged") is None


# -- crashes inside a step (work done, marker not yet written) ----------------------------------

def test_dual_key_regenerated_but_not_recorded(rot):
    name = "rot-redis"
    before = snapshot(rot, name)
    rotation = rot.rotation(name)
    protocol.create(rotation)
    rotation.resource.apply(rotation.spec.next_credential(), None)  # then the process dies
    assert rot.authenticates(name)  # the key in use was not touched
    assert rot.pending(name) == ("created", True)
    rot.run()
    assert_converged(rot, name, T.DUAL, before)


def test_single_role_password_set_but_not_recorded(rot):
    name = "rot-pg-app"
    before = snapshot(rot, name)
    rotation = rot.rotation(name)
    pending = protocol.create(rotation)
    rotation.resource.apply(pending.credential, pending.value)  # then the process dies
    assert not rot.authenticates(name)  # the single-role window
    assert rot.authenticates(name, pending.value, pending.credential)
    rot.run()
    assert_converged(rot, name, T.SINGLE_ROLE, before)
    assert rot.current(name).value == pending.value  # the value that was set, not a new one


def test_promoted_but_not_recorded(rot):
    name = "rot-storage"
    before = snapshot(rot, name)
    rotation = rot.rotation(name)
    for step in ("create", "set", "test"):
        protocol.STEP_FUNCTIONS[step](rotation)
    pending = rotation.vault.pending(name)
    current = rotation.vault.current(name)
    rotation.vault.write_current(name, pending.value, protocol.promoted_tags(rotation, current, pending),
                                 current.content_type, rotation.now + timedelta(days=30))  # then it dies
    assert rot.pending(name) == ("tested", True)
    assert rot.authenticates(name)
    rot.run()
    assert_converged(rot, name, T.DUAL, before)


def test_a_second_rotation_flips_back_and_revokes_the_oldest_key(rot):
    name = "rot-redis"
    first = snapshot(rot, name)
    rot.run(force=name)
    second = snapshot(rot, name)
    assert second["credential"] == "secondary"
    rot.run(force=name, force_revoke=True)  # the first key's grace period is cut short
    assert_converged(rot, name, T.DUAL, second)
    assert rot.current(name).properties.tags[T.CREDENTIAL_TAG] == "primary"
    assert not rot.authenticates(name, first["value"], "primary")  # regenerated
    assert first["version"] not in rot.enabled_versions(name)
