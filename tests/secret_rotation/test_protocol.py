"""The protocol's rules over an in-memory vault and resource: retries and backoff
bounds, single-role rollback, a secret changed under a rotation, idempotent steps.
(The same steps against the real services: test_crash.py and test_rotation.py.)"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from jobs.secret_rotation import protocol as P
from jobs.secret_rotation import tags as T
from jobs.secret_rotation.config import SecretRotationSettings

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=timezone.utc)
PG = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql")
_ids = itertools.count(1)


class FakeVault:
    def __init__(self, name, value, tags):
        self.secrets: dict[str, list[dict]] = {}
        self._add(name, value, tags)

    def _add(self, name, value, tags, enabled=True):
        version = f"v{next(_ids)}"
        self.secrets.setdefault(name, []).append({"version": version, "value": value, "tags": dict(tags),
                                                  "enabled": enabled})
        return version

    def _find(self, name, version):
        return next(v for v in self.secrets[name] if v["version"] == version)

    def current(self, name):
        v = self.secrets[name][-1]
        assert v["enabled"]
        return P.Current(v["version"], v["value"], dict(v["tags"]), None, NOW, None)

    def pending(self, name):
        versions = self.secrets.get(T.pending_name(name))
        if not versions or not versions[-1]["enabled"]:
            return None
        v = versions[-1]
        return P.Pending(v["version"], None if v["value"] == P.PLACEHOLDER else v["value"], dict(v["tags"]))

    def write_pending(self, name, value, tags):
        version = self._add(T.pending_name(name), value, tags)
        return P.Pending(version, None if value == P.PLACEHOLDER else value, dict(tags))

    def mark_pending(self, name, version, tags, *, enabled=True):
        v = self._find(T.pending_name(name), version)
        v["tags"], v["enabled"] = dict(tags), enabled

    def write_current(self, name, value, tags, content_type, expires_on):
        return self._add(name, value, tags)

    def enabled_versions(self, name):
        return [v["version"] for v in self.secrets.get(name, []) if v["enabled"]]

    def disable(self, name, version):
        self._find(name, version)["enabled"] = False

    def set_tags(self, name, version, tags):
        self._find(name, version)["tags"] = dict(tags)


class FakeRole:
    """One PostgreSQL role: a password, and a delay before a new one is accepted."""

    description = "fake server"

    def __init__(self, password, accept_after=0, refuse=False):
        self.password, self.accept_after, self.refuse = password, accept_after, refuse
        self.tries, self.applied = 0, []

    def check_current(self, spec, current):
        pass

    def new_value(self):
        return f"new-password-{next(_ids):04d}"

    def apply(self, credential, value):
        self.applied.append(value)
        self.password, self.tries = value, 0
        return value

    def authenticate(self, credential, value):
        self.tries += 1
        if self.refuse or value != self.password or self.tries <= self.accept_after:
            raise P.AuthFailed("refused")


def rotation(resource, tags=None, **config):
    tags = tags or {"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app",
                    "rotation-admin-secret": "admin"}
    vault = FakeVault("db", resource.password, tags)
    spec = T.parse("db", tags)
    sleeps = []
    r = P.Rotation(spec, vault, resource, SecretRotationSettings(**config), NOW, "rid-1", sleep=sleeps.append)
    return r, vault, sleeps


def test_the_test_step_retries_with_bounded_backoff():
    role = FakeRole("old-password-0001", accept_after=4)
    r, vault, sleeps = rotation(role, test_attempts=5, test_delay_seconds=1, test_max_delay_seconds=3)
    result = P.run(r)
    assert sleeps == [1, 2, 3, 3]  # doubling, capped; 5 attempts in all
    assert vault.current("db").value == role.password and result.rotation_id == "rid-1"


def test_single_role_test_failure_puts_the_old_password_back():
    role = FakeRole("old-password-0001", refuse=False)
    r, vault, sleeps = rotation(role, test_attempts=2, test_delay_seconds=0)
    P.create(r)
    P.set_credential(r)
    role.refuse = True  # the new password is set but never accepted
    with pytest.raises(P.RotationError) as err:
        P.test(r)
    assert "did not authenticate against fake server after 2 attempts" in str(err.value)
    assert "previous password was put back" in str(err.value)
    assert role.password == "old-password-0001"  # consumers' value works again
    assert vault.pending("db").step == "created"  # the next run sets and tests again
    assert vault.current("db").value == "old-password-0001"
    assert "new-password" not in str(err.value)
    role.refuse = False
    P.run(r)
    assert vault.current("db").value == role.password != "old-password-0001"


def test_a_secret_written_by_hand_meanwhile_abandons_the_rotation():
    role = FakeRole("old-password-0001")
    r, vault, _ = rotation(role)
    for step in (P.create, P.set_credential, P.test):
        step(r)
    vault._add("db", "written-by-a-person", {"rotation-kind": "postgres"})
    with pytest.raises(P.RotationError, match="got a new version .* abandoned"):
        P.promote(r)
    assert vault.current("db").value == "written-by-a-person"
    assert vault.pending("db") is None  # not resumed again


def test_steps_are_idempotent_and_a_run_resumes_where_the_marker_says():
    role = FakeRole("old-password-0001")
    r, vault, _ = rotation(role)
    first = P.create(r)
    assert P.create(r).version == first.version  # never a second rotation
    P.set_credential(r)
    P.set_credential(r)  # no-op: the marker says set
    assert role.applied == [first.value]
    result = P.run(r)
    assert result.resumed_from == "set" and role.applied == [first.value]
    assert vault.pending("db") is None
    assert vault.enabled_versions("db") == [vault.current("db").version]  # single-role: no grace


def test_messages_never_hold_a_value():
    role = FakeRole("old-password-0001", refuse=True)
    r, vault, _ = rotation(role, test_attempts=1)
    with pytest.raises(P.RotationError) as err:
        P.run(r)
    for version in vault.secrets[T.pending_name("db")]:
        assert version["value"] not in str(err.value)
    assert "old-password-0001" not in str(err.value)


def test_end_grace_is_idempotent_and_never_disables_the_current_version():
    tags = {"rotation-kind": "generated"}
    vault = FakeVault("g", "value-0001-abcdefghijklmnop", tags)
    spec = T.parse("g", tags)
    r = P.Rotation(spec, vault, _Generated(), SecretRotationSettings(), NOW, "rid-2")
    previous = vault.current("g").version
    P.run(r)
    current = vault.current("g")
    assert current.tags[T.PREVIOUS_TAG] == previous and previous in vault.enabled_versions("g")
    assert P.end_grace(vault, "g", previous) == f"previous version {previous} disabled"
    assert vault.enabled_versions("g") == [current.version]
    assert T.PREVIOUS_TAG not in vault.current("g").tags and T.GRACE_TAG not in vault.current("g").tags
    assert P.end_grace(vault, "g", previous).startswith("nothing to do")


class _Generated:
    description = "format check"

    def check_current(self, spec, current):
        pass

    def new_value(self):
        return "generated-value-abcdefghijklmnop"

    def apply(self, credential, value):
        return value

    def authenticate(self, credential, value):
        if not value:
            raise P.AuthFailed("empty")
