"""Key Vault secrets in the sandbox, through the real SecretClient."""
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

DB_SECRET = "shopfront-db-password"


def _log(app_env, path_prefix):
    return [(r["method"], r["path"], r["status"]) for r in app_env.sandbox.request_log()
            if r["path"].startswith(path_prefix)]


def _inner_code(err: HttpResponseError) -> str | None:
    return (err.response.json()["error"].get("innererror") or {}).get("code")


def test_the_first_request_gets_the_challenge_then_succeeds(app_env, clients):
    secret = clients.secrets.get_secret(DB_SECRET)
    assert secret.value == "BWOD4M4rAwK-i9fj_mKn__CG"
    assert _log(app_env, f"/secrets/{DB_SECRET}") == [("GET", f"/secrets/{DB_SECRET}/", 401),
                                                      ("GET", f"/secrets/{DB_SECRET}/", 200)]


def test_set_creates_versions_readable_latest_and_by_version(app_env, clients):
    kv = clients.secrets
    first = kv.set_secret("app-token", "one", tags={"owner": "ops"}, content_type="text/plain")
    second = kv.set_secret("app-token", "two")
    assert first.id == f"{app_env.sandbox.url}/secrets/app-token/{first.properties.version}"
    assert first.properties.version != second.properties.version
    assert len(first.properties.version) == 32
    assert kv.get_secret("app-token").value == "two"
    assert kv.get_secret("app-token", first.properties.version).value == "one"
    # Tags and content type belong to one version: a new version does not inherit them.
    assert kv.get_secret("app-token", first.properties.version).properties.tags == {"owner": "ops"}
    latest = kv.get_secret("app-token").properties
    assert (latest.tags, latest.content_type) == (None, None)
    assert latest.enabled is True
    assert latest.recovery_level == "Recoverable+Purgeable"
    assert latest.created_on is not None and latest.updated_on is not None


def test_list_secrets_gives_properties_only_and_pages(app_env, clients):
    listed = list(clients.secrets.list_properties_of_secrets())  # the sandbox pages by 5
    names = [p.name for p in listed]
    assert names == sorted(names, key=str.lower)
    assert {"shopfront-db-password", "shopfront-redis-key", "shopfront-storage-key",
            "shopfront-session-secret", "shopfront-smtp-password"} <= set(names)
    assert all(p.version is None for p in listed)  # ids without a version, as Key Vault lists them
    pages = [r for r in app_env.sandbox.request_log() if r["path"] == "/secrets" and r["status"] == 200]
    assert len(pages) == -(-len(listed) // 5) >= 2


def test_versions_are_paged_and_not_in_time_order(app_env, clients):
    kv = clients.secrets
    created = [kv.set_secret("many-versions", f"v{i}").properties.version for i in range(7)]
    app_env.sandbox.clear_log()
    listed = list(kv.list_properties_of_secret_versions("many-versions"))  # the sandbox pages by 5
    assert [p.version for p in listed] == sorted(created)  # version-id order, as Key Vault
    pages = _log(app_env, "/secrets/many-versions/versions")
    assert [status for _, _, status in pages] == [200, 200]
    assert sorted(listed, key=lambda p: (p.created_on, created.index(p.version)))[-1].version == created[-1]
    # A client may ask for smaller pages (maxresults).
    app_env.sandbox.clear_log()
    assert len(list(kv.list_properties_of_secret_versions("many-versions", max_page_size=2))) == 7
    assert len(_log(app_env, "/secrets/many-versions/versions")) == 4


def test_seeded_versions_keep_their_state(app_env, clients):
    versions = list(clients.secrets.list_properties_of_secret_versions(DB_SECRET))
    assert len(versions) == 3
    newest_first = sorted(versions, key=lambda p: p.created_on, reverse=True)
    assert [v.enabled for v in newest_first] == [True, False, False]
    assert newest_first[0].tags["rotation-kind"] == "postgres"
    near = clients.secrets.get_secret("shopfront-staging-db-password").properties
    assert timedelta(0) < near.expires_on - datetime.now(timezone.utc) < timedelta(days=5)


def test_update_properties(app_env, clients):
    kv = clients.secrets
    version = kv.set_secret("to-update", "x").properties.version
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    not_before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    updated = kv.update_secret_properties("to-update", version, enabled=True, tags={"a": "b"},
                                          expires_on=expires, not_before=not_before,
                                          content_type="application/json")
    assert (updated.tags, updated.content_type) == ({"a": "b"}, "application/json")
    assert (updated.expires_on, updated.not_before) == (expires, not_before)
    again = kv.get_secret("to-update").properties
    assert (again.tags, again.expires_on) == ({"a": "b"}, expires)
    # Without a version, the latest version is updated.
    kv.update_secret_properties("to-update", tags={"c": "d"})
    assert kv.get_secret("to-update").properties.tags == {"c": "d"}


def test_a_disabled_version_refuses_reads(app_env, clients):
    kv = clients.secrets
    old = kv.set_secret("with-disabled", "old").properties.version
    kv.set_secret("with-disabled", "new")
    kv.update_secret_properties("with-disabled", old, enabled=False)
    with pytest.raises(HttpResponseError) as err:
        kv.get_secret("with-disabled", old)
    assert err.value.status_code == 403
    assert err.value.error.code == "Forbidden"
    assert _inner_code(err.value) == "SecretDisabled"
    assert "not allowed on a disabled secret" in err.value.error.message
    assert kv.get_secret("with-disabled").value == "new"
    # The properties stay listable, and the version can be enabled again.
    listed = {p.version: p.enabled for p in kv.list_properties_of_secret_versions("with-disabled")}
    assert listed[old] is False
    kv.update_secret_properties("with-disabled", old, enabled=True)
    assert kv.get_secret("with-disabled", old).value == "old"


def test_a_disabled_latest_version_refuses_reads_of_the_secret(app_env, clients):
    kv = clients.secrets
    kv.set_secret("latest-disabled", "v1")
    kv.set_secret("latest-disabled", "v2", enabled=False)
    with pytest.raises(HttpResponseError) as err:
        kv.get_secret("latest-disabled")
    assert err.value.status_code == 403 and _inner_code(err.value) == "SecretDisabled"


def test_missing_secret_and_version(app_env, clients):
    with pytest.raises(ResourceNotFoundError) as err:
        clients.secrets.get_secret("no-such-secret")
    assert err.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) no-such-secret was not found in this key vault" in err.value.error.message
    with pytest.raises(ResourceNotFoundError):
        clients.secrets.get_secret(DB_SECRET, "0" * 32)


def test_invalid_names_are_refused(app_env, clients):
    with pytest.raises(HttpResponseError) as err:
        clients.secrets.set_secret("not_valid", "x")
    assert (err.value.status_code, err.value.error.code) == (400, "BadParameter")


def test_soft_delete_recover_and_purge(app_env, clients):
    kv = clients.secrets
    kv.set_secret("short-lived", "v1", tags={"t": "1"})
    poller = kv.begin_delete_secret("short-lived")
    poller.wait()
    deleted = poller.result()
    assert deleted.recovery_id == f"{app_env.sandbox.url}/deletedsecrets/short-lived"
    assert deleted.deleted_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert ("GET", "/deletedsecrets/short-lived", 200) in _log(app_env, "/deletedsecrets")

    with pytest.raises(ResourceNotFoundError):
        kv.get_secret("short-lived")
    assert "short-lived" not in {p.name for p in kv.list_properties_of_secrets()}
    # A deleted name cannot be set again until purged (or recovered).
    with pytest.raises(ResourceExistsError) as err:
        kv.set_secret("short-lived", "v2")
    assert err.value.status_code == 409 and err.value.error.code == "Conflict"
    assert err.value.error.message.startswith(
        "Secret short-lived is currently in a deleted but recoverable state")
    assert _inner_code(err.value) == "ObjectIsDeletedButRecoverable"

    assert kv.get_deleted_secret("short-lived").properties.tags == {"t": "1"}
    assert "short-lived" in {d.name for d in kv.list_deleted_secrets()}
    kv.begin_recover_deleted_secret("short-lived").wait()
    assert kv.get_secret("short-lived").value == "v1"

    kv.begin_delete_secret("short-lived").wait()
    kv.purge_deleted_secret("short-lived")
    with pytest.raises(ResourceNotFoundError) as err:
        kv.get_deleted_secret("short-lived")
    assert err.value.error.message == "Deleted Secret not found: short-lived"
    assert kv.set_secret("short-lived", "fresh").value == "fresh"
    assert len(list(kv.list_properties_of_secret_versions("short-lived"))) == 1


def test_a_world_of_its_own(world, clients):
    world({"secrets": [{"name": "only-one", "value": "s3cret", "tags": {"k": "v"}, "created": "-2d",
                        "versions": [{"value": "older", "created": "-40d", "enabled": False}]}]})
    assert [p.name for p in clients.secrets.list_properties_of_secrets()] == ["only-one"]
    secret = clients.secrets.get_secret("only-one")
    assert (secret.value, secret.properties.tags) == ("s3cret", {"k": "v"})
    age = datetime.now(timezone.utc) - secret.properties.created_on
    assert timedelta(days=1, hours=23) < age < timedelta(days=2, minutes=1)
